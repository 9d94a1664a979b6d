//! Batching: inputs → map tasks, as size-balanced batches of files (longest processing time
//! first), so that the map tasks running at once finish at about the same time.

use super::{MapTaskPlan, PlannedInput};
use crate::input::{Input, Location};

/// Longest-processing-time-first: files by size, largest first, each into the lightest
/// batch. Within a batch, files keep the order the user gave.
pub fn batch(inputs: &[Input], mappers: usize, max_batch_bytes: u64) -> Batches {
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
    let by_size = total_bytes.div_ceil(max_batch_bytes.max(1)) as usize;
    let tasks = mappers.max(by_size).max(1).min(planned.len().max(1));

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
                id: super::map_id(index),
                bytes,
                inputs: files.into_iter().map(|i| planned[i].clone()).collect(),
            }
        })
        .collect();
    Batches {
        map_tasks,
        total_bytes,
        total_files: planned.len(),
    }
}

/// The map tasks of a job and what they read in all.
pub struct Batches {
    pub map_tasks: Vec<MapTaskPlan>,
    pub total_bytes: u64,
    pub total_files: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
        let p = batch(&inputs, 2, 1 << 30);
        assert_eq!(p.map_tasks.len(), 2);
        let sizes: Vec<u64> = p.map_tasks.iter().map(|t| t.bytes).collect();
        assert_eq!(sizes, vec![90, 80]);
        let names: Vec<Vec<&str>> = p
            .map_tasks
            .iter()
            .map(|t| t.inputs.iter().map(|i| i.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["b", "e"], vec!["a", "c", "d"]]);
    }

    #[test]
    fn size_bound_makes_more_tasks_than_mappers() {
        let inputs: Vec<Input> = (0..10).map(|i| input(&format!("f{i}"), 100)).collect();
        let p = batch(&inputs, 1, 250);
        assert_eq!(p.map_tasks.len(), 4);
        assert!(p.map_tasks.iter().all(|t| t.bytes <= 300));
        let p = batch(&inputs[..1], 8, 1);
        assert_eq!(p.map_tasks.len(), 1);
    }
}
