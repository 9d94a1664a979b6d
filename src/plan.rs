//! Planning a job: inputs → map tasks, as size-balanced batches of files. The plan is a
//! plain serializable value that does not know who will execute it: the local executor,
//! containers, or Spark all run the same plan.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::input::{Input, Location};

pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInput {
    pub name: String,
    /// A local path, when the input is a local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `s3://…` or `http(s)://…`, when the input is remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why the input cannot be read, when planning already knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapTaskPlan {
    pub index: usize,
    pub id: String,
    pub bytes: u64,
    pub inputs: Vec<PlannedInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub config: PathBuf,
    pub map_tasks: Vec<MapTaskPlan>,
    /// Reduce partitions; 0 for a map-only job.
    pub reducers: u32,
    pub total_bytes: u64,
    pub total_files: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// Map tasks that will run at once: the plan makes at least this many (files allowing).
    pub mappers: usize,
    /// A batch grows past this size only when it holds a single file.
    pub max_batch_bytes: u64,
    pub reducers: u32,
}

pub fn reduce_id(partition: u32) -> String {
    format!("reduce-{partition:05}")
}

impl PlannedInput {
    pub fn to_input(&self) -> Input {
        let location = match (&self.path, &self.url, &self.missing) {
            (_, _, Some(why)) => Location::Missing(why.clone()),
            (Some(p), _, None) => Location::Local(p.clone()),
            (None, Some(url), None) => return Input::from_url(&self.name, url, Some(self.size)),
            (None, None, None) => Location::Missing(format!("{}: no location", self.name)),
        };
        Input {
            name: self.name.clone(),
            location,
            size: Some(self.size),
        }
    }
}

/// Longest-processing-time-first: files by size, largest first, each into the lightest
/// batch. Within a batch, files keep the order the user gave.
pub fn plan(config: PathBuf, inputs: &[Input], opts: PlanOptions) -> Plan {
    let planned: Vec<PlannedInput> = inputs
        .iter()
        .map(|i| PlannedInput {
            name: i.name.clone(),
            path: i.local_path().map(|p| p.to_path_buf()),
            url: i.url(),
            missing: match &i.location {
                Location::Missing(why) => Some(why.clone()),
                _ => None,
            },
            size: i.size.unwrap_or(0),
        })
        .collect();
    let total_bytes: u64 = planned.iter().map(|p| p.size).sum();
    let by_size = total_bytes.div_ceil(opts.max_batch_bytes.max(1)) as usize;
    let tasks = opts.mappers.max(by_size).max(1).min(planned.len().max(1));

    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by(|&a, &b| planned[b].size.cmp(&planned[a].size).then(a.cmp(&b)));
    let mut batches: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); tasks];
    for i in order {
        let lightest = (0..tasks).min_by_key(|&t| (batches[t].0, t)).unwrap_or(0);
        batches[lightest].0 += planned[i].size;
        batches[lightest].1.push(i);
    }
    let map_tasks = batches
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .enumerate()
        .map(|(index, (bytes, mut files))| {
            files.sort_unstable();
            MapTaskPlan {
                index,
                id: format!("map-{index:05}"),
                bytes,
                inputs: files.into_iter().map(|i| planned[i].clone()).collect(),
            }
        })
        .collect();
    Plan {
        version: PLAN_VERSION,
        config,
        map_tasks,
        reducers: opts.reducers,
        total_bytes,
        total_files: planned.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, size: u64) -> Input {
        Input {
            name: name.into(),
            location: Location::Local(PathBuf::from(name)),
            size: Some(size),
        }
    }

    #[test]
    fn balances_by_size_and_keeps_order_within_batches() {
        let inputs = vec![
            input("a", 10),
            input("b", 70),
            input("c", 30),
            input("d", 40),
            input("e", 20),
        ];
        let p = plan(
            PathBuf::from("c.yml"),
            &inputs,
            PlanOptions {
                mappers: 2,
                max_batch_bytes: 1 << 30,
                reducers: 1,
            },
        );
        assert_eq!(p.map_tasks.len(), 2);
        let sizes: Vec<u64> = p.map_tasks.iter().map(|t| t.bytes).collect();
        assert_eq!(sizes, vec![90, 80]);
        let names: Vec<Vec<&str>> = p
            .map_tasks
            .iter()
            .map(|t| t.inputs.iter().map(|i| i.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["b", "e"], vec!["a", "c", "d"]]);
        let json = serde_json::to_string(&p).expect("serialize");
        assert_eq!(serde_json::from_str::<Plan>(&json).expect("deserialize"), p);
    }

    #[test]
    fn size_bound_makes_more_tasks_than_mappers() {
        let inputs: Vec<Input> = (0..10).map(|i| input(&format!("f{i}"), 100)).collect();
        let p = plan(
            PathBuf::from("c.yml"),
            &inputs,
            PlanOptions {
                mappers: 1,
                max_batch_bytes: 250,
                reducers: 0,
            },
        );
        assert_eq!(p.map_tasks.len(), 4);
        assert!(p.map_tasks.iter().all(|t| t.bytes <= 300));
        let p = plan(
            PathBuf::from("c.yml"),
            &inputs[..1],
            PlanOptions {
                mappers: 8,
                max_batch_bytes: 1,
                reducers: 0,
            },
        );
        assert_eq!(p.map_tasks.len(), 1);
    }
}
