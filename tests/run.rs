//! `polymr run` and `polymr reduce` end to end: reducers in every language and API, the
//! memory-bounded shuffle, combiners, partitions, retries and resume.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

/// Parses `KEY<sep>COUNT` lines.
fn sums(output: &str, sep: char) -> BTreeMap<String, u64> {
    output
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(sep)
                .unwrap_or_else(|| panic!("no separator in {l:?}"));
            (
                k.to_string(),
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("not a count: {l:?}")),
            )
        })
        .collect()
}

fn three_inputs(t: &TestContext) -> BTreeMap<String, u64> {
    t.compress("in/a.xz", records(300, "a").as_bytes(), "xz");
    t.compress("in/b.gz", records(200, "b").as_bytes(), "gzip");
    t.compress("in/c.zst", records(101, "c").as_bytes(), "zstd");
    let mut want = BTreeMap::new();
    for n in [300, 200, 101] {
        for (k, v) in expected_counts(n) {
            *want.entry(k).or_insert(0) += v;
        }
    }
    want
}

#[test]
fn python_original_form_runs_mapper_and_reducer() {
    let t = TestContext::new();
    t.write("custom-mappers/os.py", PY_OS_MAPPER);
    t.write(
        "custom-reducers/reducer.py",
        "def reduce(key, values):\n    return \"%s %d\" % (key, sum(int(v) for v in values))\n",
    );
    t.write(
        "analysis-tools.yml",
        "language: python\nscript: os.py\narguments: []\n",
    );
    let want = three_inputs(&t);
    t.cmd().args(["run", "in"]).assert().success();
    assert_eq!(sums(&t.read("result.txt"), ' '), want);
    let r = t.report("result.txt.report.json");
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["totals"]["records"], 601);
    assert_eq!(r["totals"]["output_records"], want.len() as u64);
}

#[test]
fn python_telemetry_api_map_and_reduce() {
    let t = TestContext::new();
    t.write(
        "job.py",
        "import json\ndef map(key, dims, value, context):\n    context.write(json.loads(value)['info']['OS'], 1)\n\ndef setup_reduce(context):\n    context.write('setup', 0)\n\ndef reduce(key, values, context):\n    context.write(key, sum(values))\n",
    );
    t.write(
        "c.yml",
        "mapper: {language: python, script: job.py}\nreducer: {language: python, script: job.py}\n",
    );
    let mut want = three_inputs(&t);
    want.insert("setup".into(), 0);
    t.cmd()
        .args(["run", "--config", "c.yml", "in"])
        .assert()
        .success();
    assert_eq!(sums(&t.read("result.txt"), '\t'), want);
}

#[test]
fn javascript_original_and_telemetry_reducers() {
    let t = TestContext::new();
    t.write(
        "m.js",
        "module.exports = { mapper: (uuid, file, js) => js.info.OS + ' 1\\n' };\n",
    );
    t.write(
        "r.js",
        "module.exports = { reduce: function (key, values) { return key + ' ' + values.reduce((a, v) => a + Number(v), 0); } };\n",
    );
    t.write("tm.js", "exports.map = (key, dims, value, context) => context.write(JSON.parse(value).info.OS, 1);\n");
    t.write(
        "tr.js",
        "exports.reduce = function (key, values, context) { let s = 0; for (const v of values) s += v; context.write(key, s); };\n",
    );
    t.write(
        "legacy.yml",
        "mapper: {language: javascript, script: m.js}\nreducer: {language: javascript, script: r.js}\nkey_separator: ' '\n",
    );
    t.write("modern.yml", "mapper: {language: javascript, script: tm.js}\nreducer: {language: javascript, script: tr.js}\n");
    let want = three_inputs(&t);
    t.cmd()
        .args(["run", "--config", "legacy.yml", "-o", "l.txt", "in"])
        .assert()
        .success();
    t.cmd()
        .args(["run", "--config", "modern.yml", "-o", "m.txt", "in"])
        .assert()
        .success();
    assert_eq!(sums(&t.read("l.txt"), ' '), want);
    assert_eq!(sums(&t.read("m.txt"), '\t'), want);
}

const AWK_MAP: &str = "#!/bin/sh\nexec awk '{ i = index($0, \"\\\"OS\\\":\\\"\"); if (i) { r = substr($0, i + 6); print substr(r, 1, index(r, \"\\\"\") - 1) \"\\t1\" } }'\n";
/// A Hadoop Streaming reducer: finds key boundaries itself in sorted input.
const AWK_SUM: &str = "#!/bin/sh\nexec awk -F'\\t' 'NR > 1 && $1 != k { print k \"\\t\" s; s = 0 } { k = $1; s += $2 } END { if (NR) print k \"\\t\" s }'\n";

fn native_job(t: &TestContext, combiner: bool) {
    t.write_exec("map.sh", AWK_MAP);
    t.write_exec("sum.sh", AWK_SUM);
    let mut c =
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\n"
            .to_string();
    if combiner {
        c.push_str("combiner: {language: binary, script: sum.sh}\n");
    }
    t.write(if combiner { "comb.yml" } else { "c.yml" }, c);
}

#[test]
fn binary_reducer_gets_sorted_key_tab_value_lines() {
    let t = TestContext::new();
    t.write_exec(
        "map.sh",
        "#!/bin/sh\nexec awk -F'\\t' '{ print \"k\" (NR % 3) \" v\" NR }'\n",
    );
    // Records what it receives, untouched.
    t.write_exec("seen.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: seen.sh}\nkey_separator: ' '\n");
    t.write("in/a", "1\n2\n3\n4\n5\n6\n7\n");
    t.cmd()
        .args(["run", "--config", "c.yml", "in/a"])
        .assert()
        .success();
    let got = t.read("result.txt");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        vec!["k0\tv3", "k0\tv6", "k1\tv1", "k1\tv4", "k1\tv7", "k2\tv2", "k2\tv5"]
    );
}

#[test]
fn same_result_whatever_the_mappers_and_reducers() {
    let t = TestContext::new();
    native_job(&t, false);
    for i in 0..6 {
        t.compress(
            &format!("in/{i}.gz"),
            records(150 + i * 37, &format!("s{i}")).as_bytes(),
            "gzip",
        );
    }
    let mut results = Vec::new();
    for (m, r) in [(1, 1), (4, 1), (1, 4), (4, 4)] {
        let out = format!("out-{m}-{r}.txt");
        t.cmd()
            .args([
                "run",
                "--config",
                "c.yml",
                "--mappers",
                &m.to_string(),
                "--reducers",
                &r.to_string(),
                "-o",
                &out,
                "in",
            ])
            .assert()
            .success();
        let report = t.report(&format!("{out}.report.json"));
        assert_eq!(report["reducers"], r);
        results.push(sums(&t.read(&out), '\t'));
    }
    let want: u64 = (0..6).map(|i| 150 + i * 37).sum();
    assert_eq!(results[0].values().sum::<u64>(), want);
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");

    // With four reducers, every partition is published and a key lives in one of them only.
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--reducers",
            "4",
            "--output-dir",
            "parts",
            "in",
        ])
        .assert()
        .success();
    assert_eq!(
        t.listing("parts"),
        vec![
            "_SUCCESS",
            "part-00000",
            "part-00001",
            "part-00002",
            "part-00003",
            "report.html",
            "report.json"
        ]
    );
    let mut merged = BTreeMap::new();
    for p in 0..4 {
        for (k, v) in sums(&t.read(&format!("parts/part-{p:05}")), '\t') {
            assert!(
                merged.insert(k.clone(), v).is_none(),
                "key {k} in two partitions"
            );
        }
    }
    assert_eq!(merged, results[0]);
}

#[test]
fn combiner_changes_only_the_volume_shuffled() {
    let t = TestContext::new();
    native_job(&t, false);
    native_job(&t, true);
    for i in 0..3 {
        t.compress(
            &format!("in/{i}.xz"),
            records(400, &format!("c{i}")).as_bytes(),
            "xz",
        );
    }
    t.cmd()
        .args(["run", "--config", "c.yml", "-o", "plain.txt", "in"])
        .assert()
        .success();
    t.cmd()
        .args(["run", "--config", "comb.yml", "-o", "comb.txt", "in"])
        .assert()
        .success();
    assert_eq!(t.read("plain.txt"), t.read("comb.txt"));
    let plain = t.report("plain.txt.report.json");
    let comb = t.report("comb.txt.report.json");
    assert_eq!(plain["shuffle"]["shuffled_records"], 1200);
    assert_eq!(comb["shuffle"]["map_output_records"], 1200);
    let combined = comb["shuffle"]["shuffled_records"]
        .as_u64()
        .expect("number");
    assert!(
        (5..1200).contains(&combined),
        "combined to {combined} records"
    );
}

#[test]
fn shuffle_ten_times_the_budget_matches_an_in_memory_sort() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: cat.sh}\nreducer: {language: binary, script: cat.sh}\n",
    );
    std::fs::create_dir_all(t.path("tmp")).expect("mkdir");
    // ~12 MiB of key/value lines, in 3 files, against a 1 MiB budget; keys repeat.
    let mut lines = Vec::new();
    for f in 0..3 {
        let mut s = String::new();
        for i in 0..70_000u64 {
            let key = (i * 7919 + f * 104_729) % 50_000;
            let line = format!(
                "key-{key:06}\tvalue {f} {i} {}",
                "p".repeat((i % 90) as usize)
            );
            s.push_str(&line);
            s.push('\n');
            lines.push(line);
        }
        s.push('\n'); // empty lines are dropped
        t.write(&format!("in/{f}.txt"), s);
    }
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(total > 10 << 20, "input is {total} bytes");
    t.cmd()
        .env("TMPDIR", t.path("tmp"))
        .args(["reduce", "--config", "c.yml", "--sort-memory", "1MiB", "in"])
        .assert()
        .success();
    // A stable sort by key: equal keys keep their input order (files in order).
    lines.sort_by(|a, b| {
        let ka = a.split_once('\t').expect("tab").0;
        let kb = b.split_once('\t').expect("tab").0;
        ka.cmp(kb)
    });
    let got = t.read("result.txt");
    assert_eq!(got.lines().count(), lines.len());
    assert!(
        got.lines().zip(lines.iter()).all(|(g, w)| g == w),
        "output differs from an in-memory sort"
    );
    assert!(
        t.listing("tmp").is_empty(),
        "spill files left: {:?}",
        t.listing("tmp")
    );
}

#[test]
fn reduce_task_over_mapper_outputs_with_the_original_reducer() {
    let t = TestContext::new();
    t.write("custom-mappers/os.py", PY_OS_MAPPER);
    t.write(
        "custom-reducers/reducer.py",
        "def reduce(key, values):\n    return \"%s %d\" % (key, len(values))\n",
    );
    t.write("analysis-tools.yml", "language: python\nscript: os.py\n");
    t.write(
        "mapperOutput/task1/result.txt",
        "WINNT 1\nLinux 1\n\nWINNT 1\n",
    );
    t.compress(
        "mapperOutput/task2/result.txt.gz",
        b"Linux 1\nDarwin 1\n",
        "gzip",
    );
    t.cmd().args(["reduce", "mapperOutput"]).assert().success();
    assert_eq!(t.read("result.txt"), "Darwin 1\nLinux 2\nWINNT 2\n");
    assert_eq!(t.report("result.txt.report.json")["kind"], "reduce");
}

#[test]
fn map_only_job_writes_the_concatenated_map_outputs() {
    let t = TestContext::new();
    t.write_exec("m.sh", "#!/bin/sh\nexec sed 's/^/seen /'\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: m.sh}\nrecord_format: lines\n",
    );
    t.write("in/1", "a\nb\n");
    t.write("in/2", "c\n");
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--mappers",
            "2",
            "--max-batch-size",
            "1",
            "in",
        ])
        .assert()
        .success();
    let mut got: Vec<String> = t.read("result.txt").lines().map(String::from).collect();
    got.sort();
    assert_eq!(got, vec!["seen a", "seen b", "seen c"]);
    assert_eq!(t.report("result.txt.report.json")["map_tasks"], 2);
}

#[test]
fn plan_prints_size_balanced_batches_as_json() {
    let t = TestContext::new();
    native_job(&t, false);
    for (i, n) in [5000, 100, 3000, 2500].iter().enumerate() {
        t.write(&format!("in/{i}"), "x".repeat(*n));
    }
    let out = t
        .cmd()
        .args([
            "plan",
            "--config",
            "c.yml",
            "--mappers",
            "2",
            "--format",
            "json",
            "in",
        ])
        .assert()
        .success();
    let plan: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("plan is JSON");
    let bytes: Vec<u64> = plan["map_tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["bytes"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(bytes, vec![5100, 5500]);
    assert_eq!(plan["reducers"], 1);
}

#[test]
fn a_task_that_fails_once_is_retried() {
    let t = TestContext::new();
    let flag = t.path("failed-once");
    t.write_exec(
        "m.sh",
        &format!("#!/bin/sh\nif [ ! -e {f} ]; then touch {f}; echo 'transient failure' >&2; exit 1; fi\nexec cat\n", f = flag.display()),
    );
    t.write(
        "c.yml",
        "mapper: {language: binary, script: m.sh}\nrecord_format: lines\n",
    );
    t.write("in/a", "x\ny\n");
    t.cmd()
        .args(["run", "--config", "c.yml", "in/a"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "x\ny\n");
    let r = t.report("result.txt.report.json");
    let tasks = r["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["status"], "failed");
    assert!(tasks[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("transient failure")));
    assert_eq!(tasks[1]["status"], "succeeded");
}

#[test]
fn a_task_that_always_fails_fails_the_job_and_names_its_inputs() {
    let t = TestContext::new();
    t.write_exec(
        "m.sh",
        "#!/bin/sh\nif grep -q poison; then echo 'poisoned' >&2; exit 4; fi\n",
    );
    t.write(
        "c.yml",
        "mapper: {language: binary, script: m.sh}\nrecord_format: lines\n",
    );
    t.write("in/good", "fine\n");
    t.write("in/bad", "poison\n");
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--mappers",
            "2",
            "--max-batch-size",
            "1",
            "--retries",
            "1",
            "in",
        ])
        .assert()
        .code(1);
    assert!(!t.path("result.txt").exists());
    let r = t.report("result.txt.report.json");
    assert_eq!(r["status"], "failed");
    let lost = r["lost_inputs"].as_array().expect("lost");
    assert_eq!(lost.len(), 1);
    assert!(lost[0]["name"]
        .as_str()
        .is_some_and(|n| n.ends_with("in/bad")));
    assert!(
        lost[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("poisoned") && e.contains("2 times")),
        "{}",
        lost[0]
    );
    assert!(
        r["workdir"].as_str().is_some(),
        "the work directory is kept for --resume"
    );
}

#[test]
fn resume_after_a_killed_run_redoes_only_unfinished_tasks() {
    let t = TestContext::new();
    let log = t.path("runs.log");
    let hang = t.path("hang");
    let hanging = t.path("hanging");
    t.write_exec(
        "m.sh",
        &format!(
            "#!/bin/sh\necho \"$mapreduce_task_attempt_id\" >> {log}\nexec awk -v flag={hang} '{{ if (index($0, \"hang-me\") && (getline x < flag) >= 0) system(\"touch {hanging}; sleep 300\"); print $1 \"\\t1\" }}'\n",
            log = log.display(),
            hang = hang.display(),
            hanging = hanging.display()
        ),
    );
    t.write_exec("sum.sh", AWK_SUM);
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n");
    t.write("in/big", "a\nb\na\nc\nthe first task is the biggest\n");
    t.write("in/small", "hang-me\na\n");
    t.write("hang", "");
    let args = [
        "run",
        "--config",
        "c.yml",
        "--mappers",
        "1",
        "--max-batch-size",
        "1",
        "--resume",
        "work",
        "in",
    ];
    let mut child = t.std_cmd().args(args).spawn().expect("spawn");
    assert!(
        wait_for_file(&hanging, Duration::from_secs(30)),
        "second task never started"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    assert_eq!(
        wait_with_deadline(&mut child, Duration::from_secs(30)).code(),
        Some(143)
    );
    assert!(t.path("work/map-00000/_SUCCESS").exists());
    assert!(!t.path("work/map-00001").exists());
    assert!(!t.path("result.txt").exists());

    std::fs::remove_file(&hang).expect("rm");
    std::fs::write(&log, "").expect("truncate");
    t.cmd().args(args).assert().success();
    let ran = t.read("runs.log");
    assert_eq!(ran.lines().count(), 1, "{ran}");
    assert!(ran.contains("_m_000001_"), "{ran}");
    assert_eq!(
        sums(&t.read("result.txt"), '\t'),
        BTreeMap::from([
            ("a".to_string(), 3),
            ("b".to_string(), 1),
            ("c".to_string(), 1),
            ("hang-me".to_string(), 1),
            ("the".to_string(), 1)
        ])
    );
    assert_eq!(t.report("result.txt.report.json")["map_tasks_resumed"], 1);
}
