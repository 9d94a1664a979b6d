//! Batching: inputs → map tasks, as size-balanced batches of files (longest processing time
//! first), so that the map tasks running at once finish at about the same time.

use super::{MapTaskPlan, PlannedInput};
use crate::input::{Input, Location};

/// Longest-processing-time-first: files by size, largest first, each into the lightest
/// batch. Within a batch, files keep the order the user gave.
pub fn batch(inputs: &[Input], mappers: usize, max_batch_bytes: u64) -> Batches {
    batch_capped(inputs, mappers, max_batch_bytes, usize::MAX)
}

/// [`batch`] with at most `max_files` files per task (the original planner capped a task
/// at 50): enough tasks that the cap can hold every file, and each file goes into the
/// lightest batch that still has room, so the batches stay balanced by bytes.
pub fn batch_capped(
    inputs: &[Input],
    mappers: usize,
    max_batch_bytes: u64,
    max_files: usize,
) -> Batches {
    let max_files = max_files.max(1);
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
    let by_count = planned.len().div_ceil(max_files);
    let tasks = mappers
        .max(by_size)
        .max(1)
        .min(planned.len().max(1))
        .max(by_count);

    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by(|&a, &b| planned[b].size.cmp(&planned[a].size).then(a.cmp(&b)));
    let mut batches: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); tasks];
    for i in order {
        // tasks * max_files >= files, so some batch always has room.
        let lightest = (0..tasks)
            .filter(|&t| batches[t].1.len() < max_files)
            .min_by_key(|&t| (batches[t].0, t))
            .unwrap_or(0);
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

    #[test]
    fn the_file_cap_holds_and_bytes_stay_balanced() {
        // 120 small files and 3 big ones: a cap of 50 needs at least 3 tasks.
        let mut inputs: Vec<Input> = (0..120).map(|i| input(&format!("s{i}"), 1)).collect();
        inputs.extend((0..3).map(|i| input(&format!("b{i}"), 1000)));
        let p = batch_capped(&inputs, 1, 1 << 30, 50);
        assert_eq!(p.map_tasks.len(), 3);
        assert!(p.map_tasks.iter().all(|t| t.inputs.len() <= 50));
        let bytes: Vec<u64> = p.map_tasks.iter().map(|t| t.bytes).collect();
        assert_eq!(bytes, vec![1040, 1040, 1040]);
        assert_eq!(p.total_files, 123);
        // A cap of one file is one task per file.
        assert_eq!(batch_capped(&inputs[..7], 2, 1 << 30, 1).map_tasks.len(), 7);
        // No input, no task.
        assert!(batch_capped(&[], 2, 1 << 30, 50).map_tasks.is_empty());
    }
}
