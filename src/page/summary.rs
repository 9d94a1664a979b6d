//! The few lines `polymr report REPORT.json` prints: how the job or task ended, what it read
//! and wrote, and what it lost. Read from the JSON, so any report polymr wrote will do.

use serde_json::Value;

use crate::report::human_bytes;

/// The summary of a report, one fact a line; `None` when the JSON is not a polymr report.
pub fn text_summary(r: &Value) -> Option<String> {
    let kind = r.get("kind")?.as_str()?;
    let status = r.get("status")?.as_str()?;
    let t = r.get("totals")?;
    let mut out = Vec::new();
    let attempts = r
        .get("tasks")
        .and_then(Value::as_array)
        .map_or(1, |a| a.len());
    if kind == "run" {
        let total_ms = u(&r["timings"]["total_ms"]);
        out.push(format!(
            "job {}: {status} in {}",
            text(&r["job_id"]),
            seconds(total_ms)
        ));
        out.push(format!(
            "tasks: {} map ({} resumed), {} reduce; {attempts} attempts",
            u(&r["map_tasks"]),
            u(&r["map_tasks_resumed"]),
            u(&r["reducers"]),
        ));
    } else {
        out.push(format!(
            "{kind} task {}: {status} in {}",
            text(&r["attempt_id"]),
            seconds(u(&r["duration_ms"]))
        ));
    }
    out.push(format!(
        "inputs: {} ({} processed, {} failed, {} skipped); {} records ({} invalid); {} read",
        u(&t["files"]),
        u(&t["files_processed"]),
        u(&t["files_failed"]),
        u(&t["files_skipped"]),
        u(&t["records"]),
        u(&t["invalid_records"]),
        human_bytes(u(&t["bytes"])),
    ));
    let published = r["published"].as_bool().unwrap_or(false);
    let target = [&r["output"], &r["output_dir"]]
        .into_iter()
        .find_map(|v| v.as_str())
        .unwrap_or("-");
    out.push(format!(
        "output: {} lines, {}: {target} ({})",
        u(&t["output_records"]),
        human_bytes(u(&t["output_bytes"])),
        if published {
            "published"
        } else {
            "not published"
        }
    ));
    if let Some(e) = r["error"].as_str() {
        out.push(format!("error: {}", first_line(e)));
    }
    out.extend(lost_lines(r));
    let failed = r["tasks"].as_array().map_or(0, |a| {
        a.iter().filter(|t| t["status"] != "succeeded").count()
    });
    if failed > 0 {
        out.push(format!("failed attempts: {failed}"));
    }
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

/// One line per input the job or task did not use whole.
fn lost_lines(r: &Value) -> Vec<String> {
    if let Some(lost) = r["lost_inputs"].as_array() {
        return lost
            .iter()
            .map(|l| {
                format!(
                    "lost ({}): {} ({}): {}",
                    text(&l["status"]),
                    text(&l["name"]),
                    text(&l["task"]),
                    first_line(l["error"].as_str().unwrap_or(""))
                )
            })
            .collect();
    }
    r["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"] != "processed")
        .map(|i| {
            format!(
                "input {}: {}: {}",
                text(&i["status"]),
                text(&i["name"]),
                first_line(i["error"].as_str().unwrap_or(""))
            )
        })
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// Errors carry the child's stderr after their first line; the summary keeps it terse.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_that_is_no_report_has_no_summary() {
        assert!(text_summary(&serde_json::json!({"a": 1})).is_none());
        assert!(text_summary(&serde_json::json!([1, 2])).is_none());
    }

    #[test]
    fn a_job_summary_names_its_lost_inputs() {
        let r = serde_json::json!({
            "kind": "run", "status": "succeeded", "job_id": "j", "published": true,
            "output": "out.txt", "timings": {"total_ms": 1500}, "map_tasks": 2,
            "reducers": 1, "totals": {"files": 2, "files_processed": 1, "files_failed": 1},
            "lost_inputs": [{"name": "in/b.xz", "task": "map-00001", "status": "partial",
                             "records": 3, "error": "truncated\nmore"}],
            "tasks": [{"status": "failed"}, {"status": "succeeded"}]
        });
        let s = text_summary(&r).expect("a report");
        assert!(s.starts_with("job j: succeeded in 1.50s\n"), "{s}");
        assert!(
            s.contains("lost (partial): in/b.xz (map-00001): truncated\n"),
            "{s}"
        );
        assert!(s.contains("out.txt (published)"), "{s}");
        assert!(s.contains("failed attempts: 1"), "{s}");
    }
}
