//! The plan as a contract: what `polymr plan` prints is everything an executor needs, and
//! running a plan's tasks one by one gives what `polymr run` gives.

use crate::util::{records, TestContext};

const AWK_MAP: &str = "#!/bin/sh\nexec awk '{ i = index($0, \"\\\"OS\\\":\\\"\"); if (i) { r = substr($0, i + 6); print substr(r, 1, index(r, \"\\\"\") - 1) \"\\t1\" } }'\n";
const AWK_SUM: &str = "#!/bin/sh\nexec awk -F'\\t' 'NR > 1 && $1 != k { print k \"\\t\" s; s = 0 } { k = $1; s += $2 } END { if (NR) print k \"\\t\" s }'\n";
const CONFIG: &str =
    "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\n";

fn job(t: &TestContext) {
    t.write_exec("map.sh", AWK_MAP);
    t.write_exec("sum.sh", AWK_SUM);
    t.write("c.yml", CONFIG);
    for i in 0..5 {
        t.write(
            &format!("in/{i}.json"),
            records(200 + 50 * i, &format!("s{i}")),
        );
    }
}

#[test]
fn plan_json_round_trips_and_holds_the_whole_job() {
    let t = TestContext::new();
    job(&t);
    let out = t
        .cmd()
        .args([
            "plan",
            "--config",
            "c.yml",
            "--mappers",
            "2",
            "--reducers",
            "3",
            "--retries",
            "4",
            "--work",
            "w",
            "-o",
            "out.txt",
            "--format",
            "json",
            "in",
        ])
        .env("POLYMR_JOB_ID", "job_1_00001")
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).expect("utf-8");
    let plan: polymr::plan::Plan = serde_json::from_str(&text).expect("a polymr plan");
    let again = serde_json::to_string_pretty(&plan).expect("serialize") + "\n";
    assert_eq!(again, text, "the plan changed on a JSON round trip");

    assert_eq!(plan.job.id, "job_1_00001");
    assert_eq!(plan.job.config_contents, CONFIG);
    assert_eq!(plan.job.config_sha256.len(), 64);
    assert_eq!(plan.job.options.retries, 4);
    assert_eq!(plan.job.options.mappers, 2);
    assert_eq!(plan.map_tasks.len(), 2);
    let reduce: Vec<&str> = plan.reduce_tasks.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(reduce, ["reduce-00000", "reduce-00001", "reduce-00002"]);
    assert_eq!(plan.work.as_deref(), Some(t.path("w").as_path()));
    // Named absolutely, so that tasks and `finish` may run from any directory.
    assert_eq!(plan.output.as_deref(), Some(t.path("out.txt").as_path()));
}

/// The retry policy by class: a mapper that fails every time is retried `--retries` times,
/// then the job fails.
#[test]
fn a_mapper_that_always_fails_is_retried_then_the_job_fails() {
    let t = TestContext::new();
    t.write_exec(
        "m.sh",
        "#!/bin/sh\ncat >/dev/null\necho broken >&2\nexit 3\n",
    );
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.write("in/a", "x\n");
    t.cmd()
        .args(["run", "--config", "c.yml", "--retries", "2", "in"])
        .assert()
        .code(1);
    let r = t.report("result.txt.report.json");
    let attempts = r["tasks"].as_array().expect("tasks");
    assert_eq!(attempts.len(), 3, "{r}");
    for (n, a) in attempts.iter().enumerate() {
        assert_eq!(a["status"], "failed");
        assert_eq!(a["child"]["exit"]["code"], 3);
        assert!(a["attempt_id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&format!("_m_000000_{n}"))));
    }
    assert_eq!(r["status"], "failed");
}

/// The retry policy by class: an input that cannot be read under `--fail-fast` because it
/// is corrupt would be corrupt on every attempt, so it is not retried.
#[test]
fn a_corrupt_input_under_fail_fast_is_not_retried() {
    let t = TestContext::new();
    t.write_exec("m.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.write(
        "in/bad.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not gzip at all".as_slice(),
    );
    let out = t
        .cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--fail-fast",
            "--retries",
            "3",
            "in",
        ])
        .assert()
        .code(1);
    let r = t.report("result.txt.report.json");
    assert_eq!(r["tasks"].as_array().map(Vec::len), Some(1), "{r}");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("not retried"), "{stderr}");
}

/// The seam between planning and executing: every task of a plan run as its own `polymr
/// task` process from a shell loop (map tasks out of order, one of them twice, then the
/// reduce tasks out of order), then `polymr finish`, gives what `polymr run` gives.
#[test]
fn tasks_run_one_by_one_from_a_shell_give_what_run_gives() {
    let t = TestContext::new();
    job(&t);
    t.write(
        "comb.yml",
        format!("{CONFIG}combiner: {{language: binary, script: sum.sh}}\n"),
    );
    let shape = [
        "--config",
        "comb.yml",
        "--mappers",
        "3",
        "--reducers",
        "3",
        "--sort-memory",
        "1MiB",
    ];
    t.cmd()
        .args(["run"])
        .args(shape)
        .args(["-o", "run/result.txt", "in"])
        .assert()
        .success();

    let out = t
        .cmd()
        .args(["plan"])
        .args(shape)
        .args([
            "--work",
            "w",
            "-o",
            "seam/result.txt",
            "--format",
            "json",
            "in",
        ])
        .assert()
        .success();
    t.write("plan.json", &out.get_output().stdout);
    let bin = assert_cmd::cargo::cargo_bin("polymr");
    let script = format!(
        "set -e\nfor t in map-00002 map-00000 map-00002 map-00001 reduce-00001 reduce-00002 reduce-00000; do\n  '{bin}' task --plan plan.json --task \"$t\"\ndone\n'{bin}' finish --plan plan.json\n",
        bin = bin.display()
    );
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(t.root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .status()
        .expect("sh");
    assert!(status.success(), "the shell loop failed: {status}");

    let run = std::fs::read(t.path("run/result.txt")).expect("run result");
    let seam = std::fs::read(t.path("seam/result.txt")).expect("seam result");
    assert!(!run.is_empty());
    assert!(run == seam, "the results differ");
    let a = t.report("run/result.txt.report.json");
    let b = t.report("seam/result.txt.report.json");
    for key in [
        "status",
        "published",
        "map_tasks",
        "reducers",
        "totals",
        "shuffle",
        "counters",
        "lost_inputs",
    ] {
        assert_eq!(a[key], b[key], "{key} differs");
    }
    assert!(a["shuffle"]["map_output_records"].as_u64() > Some(0));
}

/// `polymr finish` before the tasks ran publishes nothing and names what is missing.
#[test]
fn finish_before_the_tasks_ran_names_them_and_publishes_nothing() {
    let t = TestContext::new();
    job(&t);
    let out = t
        .cmd()
        .args(["plan", "--config", "c.yml", "--mappers", "2", "--work", "w"])
        .args(["-o", "out.txt", "--format", "json", "in"])
        .assert()
        .success();
    t.write("plan.json", &out.get_output().stdout);
    t.cmd()
        .args(["task", "--plan", "plan.json", "--task", "map-00000"])
        .assert()
        .success();
    let out = t
        .cmd()
        .args(["finish", "--plan", "plan.json"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("map-00001, reduce-00000"), "{stderr}");
    assert!(!t.path("out.txt").exists());
    assert_eq!(t.report("out.txt.report.json")["status"], "failed");
    // A task the plan does not have is bad usage.
    t.cmd()
        .args(["task", "--plan", "plan.json", "--task", "map-00009"])
        .assert()
        .code(2);
}

/// Tasks run elsewhere, from another directory: a failed attempt's report reaches the job
/// report that `finish` writes, `finish` removes only what polymr made in the work root, and
/// a second `finish` refuses instead of replacing the report with a failure.
#[test]
fn finish_reports_failed_attempts_of_tasks_run_elsewhere_and_cleans_the_work_root() {
    let t = TestContext::new();
    job(&t);
    // Fails its first attempt (the file is not there yet), then works.
    t.write_exec(
        "flaky.sh",
        &format!(
            "#!/bin/sh\nif [ ! -e '{m}' ]; then : > '{m}'; echo 'first attempt breaks' >&2; exit 7; fi\n{AWK}",
            m = t.path("tried").display(),
            AWK = AWK_MAP.trim_start_matches("#!/bin/sh\n")
        ),
    );
    t.write(
        "flaky.yml",
        "mapper: {language: binary, script: flaky.sh}\nreducer: {language: binary, script: sum.sh}\n",
    );
    t.write("w/notes.txt", "the user's own file\n");
    t.write("w/.polymr-workdir", "");
    let out = t
        .cmd()
        .args([
            "plan",
            "--config",
            "flaky.yml",
            "--mappers",
            "1",
            "--work",
            "w",
        ])
        .args(["-o", "out/result.txt", "--format", "json", "in"])
        .assert()
        .success();
    t.write("plan.json", &out.get_output().stdout);
    std::fs::create_dir_all(t.path("elsewhere")).expect("mkdir");
    let task = |id: &str, attempt: &str| {
        t.cmd()
            .current_dir(t.path("elsewhere"))
            .args([
                "task",
                "--plan",
                "../plan.json",
                "--task",
                id,
                "--attempt",
                attempt,
            ])
            .assert()
    };
    task("map-00000", "0").code(1);
    task("map-00000", "1").success();
    task("reduce-00000", "0").success();
    t.cmd()
        .current_dir(t.path("elsewhere"))
        .args(["finish", "--plan", "../plan.json"])
        .assert()
        .success();

    let r = t.report("out/result.txt.report.json");
    assert_eq!(r["status"], "succeeded", "{r}");
    let maps: Vec<&serde_json::Value> = r["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|a| a["kind"] == "map")
        .collect();
    assert_eq!(maps.len(), 2, "both attempts of the map task: {r}");
    assert_eq!(maps[0]["status"], "failed");
    assert_eq!(maps[0]["child"]["exit"]["code"], 7);
    assert!(maps[0]["attempt_id"]
        .as_str()
        .is_some_and(|i| i.ends_with("_m_000000_0")));
    assert_eq!(maps[1]["status"], "succeeded");
    assert!(maps[1]["attempt_id"]
        .as_str()
        .is_some_and(|i| i.ends_with("_m_000000_1")));
    let counts = t.read("out/result.txt");
    let total: u64 = counts
        .lines()
        .filter_map(|l| l.split('\t').nth(1)?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, 200 + 250 + 300 + 350 + 400, "{counts}");

    // Only polymr's entries were removed: the user's file stays, with the directory.
    let left: Vec<String> = std::fs::read_dir(t.path("w"))
        .expect("w")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["notes.txt".to_string()]);

    let again = t
        .cmd()
        .args(["finish", "--plan", "plan.json"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&again.get_output().stderr).to_string();
    assert!(stderr.contains("nothing to finish"), "{stderr}");
    assert_eq!(
        t.report("out/result.txt.report.json")["status"],
        "succeeded"
    );
}
