//! `polymr spark-submit` on a real Apache Spark (pyspark from the test venv), in
//! `local-cluster[2,1,1024]`: two executor JVMs, Spark's own scheduling, retries and shuffle,
//! everything on 127.0.0.1. Each Spark application takes a while to start, so every test
//! checks several promises of one job, and the jobs run one at a time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::servers::*;
use crate::util::*;

/// One Spark application at a time: each starts three JVMs.
static SPARK: Mutex<()> = Mutex::new(());

/// spark-submit from pyspark in the test venv, or `None` (said loudly) when there is no Java.
fn spark_submit() -> Option<PathBuf> {
    if which::which("java").is_err() && std::env::var_os("JAVA_HOME").is_none() {
        eprintln!("SKIPPED: the Spark tests need Java (17 or 21), and there is none here");
        return None;
    }
    let bin = std::env::var("POLYMR_TEST_SPARK_SUBMIT")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            std::env::var("POLYMR_TEST_PYTHON")
                .ok()
                .and_then(|p| Path::new(&p).parent().map(|d| d.join("spark-submit")))
        })
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/spark-submit")
        });
    assert!(
        bin.is_file(),
        "{} is missing: run `make test-deps` (it installs pyspark into target/test-venv)",
        bin.display()
    );
    Some(bin)
}

/// Where local-cluster mode puts its executors' work directories (pyspark's own directory).
fn spark_work_dir(submit: &Path) -> Option<PathBuf> {
    let python = submit.parent()?.join("python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .ok()?;
    Some(PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()).join("work"))
}

/// What a Spark application left: its output, and everything it logged (the submitter's
/// stdout and stderr, the executors' logs, the event log), read before the executors' work
/// directories are removed.
struct SparkRun {
    code: i32,
    stderr: String,
    logs: Vec<u8>,
}

/// Runs `polymr spark-submit` in local-cluster mode with `run_args` after `--`.
fn spark(t: &TestContext, submit: &Path, env: &[(&str, &str)], run_args: &[&str]) -> SparkRun {
    spark_with(t, submit, env, &[], run_args)
}

/// `spark` with more options before `--`.
fn spark_with(
    t: &TestContext,
    submit: &Path,
    env: &[(&str, &str)],
    spark_opts: &[&str],
    run_args: &[&str],
) -> SparkRun {
    let _one = SPARK.lock().unwrap_or_else(|p| p.into_inner());
    let work = spark_work_dir(submit);
    let before: Vec<PathBuf> = list(work.as_deref());
    let events = t.path("spark-events");
    std::fs::create_dir_all(&events).expect("mkdir");
    let mut c = t.cmd();
    c.timeout(Duration::from_secs(900))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .envs(env.iter().copied())
        .args(spark_argv(submit, &events, spark_opts, run_args));
    let out = c.output().expect("run polymr spark-submit");
    let mut logs = out.stdout.clone();
    logs.extend_from_slice(&out.stderr);
    let new: Vec<PathBuf> = list(work.as_deref())
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    for dir in new.iter().chain(std::iter::once(&events)) {
        read_all(dir, &mut logs);
    }
    for dir in &new {
        let _ = std::fs::remove_dir_all(dir);
    }
    SparkRun {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        logs,
    }
}

/// `polymr spark-submit`'s arguments for local-cluster mode, with the event log in `events`.
fn spark_argv(submit: &Path, events: &Path, spark_opts: &[&str], run_args: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "spark-submit",
        "--spark-submit",
        &submit.display().to_string(),
        "--master",
        "local-cluster[2,1,1024]",
        "--conf",
        "spark.driver.host=127.0.0.1",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.executor.memory=768m",
        "--conf",
        "spark.eventLog.enabled=true",
        "--conf",
        &format!("spark.eventLog.dir=file://{}", events.display()),
        // Spark 4 compresses event logs by default; plain text is what is searched.
        "--conf",
        "spark.eventLog.compress=false",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(spark_opts.iter().map(|s| s.to_string()));
    a.push("--".into());
    a.extend(run_args.iter().map(|s| s.to_string()));
    a
}

fn list(dir: Option<&Path>) -> Vec<PathBuf> {
    dir.and_then(|d| std::fs::read_dir(d).ok())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn read_all(path: &Path, into: &mut Vec<u8>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            read_all(&e.path(), into);
        }
    } else if let Ok(b) = std::fs::read(path) {
        into.extend_from_slice(&b);
    }
}

fn sorted_lines(b: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
    v.sort();
    v
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The original-API Python job (the repository's analysis-tools.yml) over the bundled sample,
/// and the native C mapper with a combiner and 3 reducers: Spark gives byte for byte what
/// `polymr run` gives, and the job report counts what `run`'s does.
#[test]
fn sample_jobs_on_spark_give_what_run_gives() {
    let Some(submit) = spark_submit() else { return };
    let t = TestContext::new();
    let sample = repo("examples/data").display().to_string();
    // The original form: the config and its scripts, as a user's job directory holds them.
    t.write(
        "job/analysis-tools.yml",
        std::fs::read(repo("analysis-tools.yml")).expect("config"),
    );
    t.write(
        "job/custom-mappers/os_count.py",
        std::fs::read(repo("custom-mappers/os_count.py")).expect("mapper"),
    );
    t.write(
        "job/custom-reducers/reducer.py",
        std::fs::read(repo("custom-reducers/reducer.py")).expect("reducer"),
    );
    // The native job: `make native`'s compile, a combiner and 3 reducers.
    std::fs::create_dir_all(t.path("native/bin")).expect("mkdir");
    let cc = std::process::Command::new("cc")
        .args(["-O2", "-o"])
        .arg(t.path("native/bin/os_count_c"))
        .arg(repo("custom-mappers/os_count.c"))
        .status()
        .expect("cc (make test-deps)");
    assert!(cc.success());
    t.write_exec(
        "native/bin/sum.sh",
        &std::fs::read_to_string(repo("custom-reducers/sum.sh")).expect("sum.sh"),
    );
    // The config is in a directory of its own and names its scripts by `../bin/…`.
    t.write(
        "native/conf/native.yml",
        "mapper: {language: binary, script: ../bin/os_count_c}\ncombiner: {language: binary, script: ../bin/sum.sh}\nreducer: {language: binary, script: ../bin/sum.sh}\nrecord_format: telemetry\n",
    );

    t.cmd()
        .args([
            "run",
            "--config",
            "job/analysis-tools.yml",
            "-o",
            "py-run.txt",
            &sample,
        ])
        .assert()
        .success();
    t.cmd()
        .args([
            "run",
            "--config",
            "native/conf/native.yml",
            "--reducers",
            "3",
            "--output-dir",
            "c-run",
            &sample,
        ])
        .assert()
        .success();

    let py = spark(
        &t,
        &submit,
        &[],
        &[
            "--config",
            "job/analysis-tools.yml",
            "-o",
            "py-spark.txt",
            &sample,
        ],
    );
    assert_eq!(py.code, 0, "{}", py.stderr);
    assert_eq!(t.read("py-spark.txt"), t.read("py-run.txt"));
    assert_eq!(
        t.read("py-spark.txt"),
        std::fs::read_to_string(repo("examples/expected_os_counts.tsv"))
            .expect("expected")
            .replace('\t', " ")
    );
    let (sr, rr) = (
        t.report("py-spark.txt.report.json"),
        t.report("py-run.txt.report.json"),
    );
    assert_eq!(sr["status"], "succeeded");
    assert_eq!(sr["published"], true);
    for k in ["records", "invalid_records", "output_records", "files"] {
        assert_eq!(sr["totals"][k], rr["totals"][k], "totals.{k}: {sr}");
    }
    assert_eq!(
        sr["tasks"].as_array().map(Vec::len),
        rr["tasks"].as_array().map(Vec::len)
    );

    let c = spark(
        &t,
        &submit,
        &[],
        &[
            "--config",
            "native/conf/native.yml",
            "--reducers",
            "3",
            "--output-dir",
            "c-spark",
            &sample,
        ],
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    for p in 0..3 {
        let part = format!("part-{p:05}");
        assert_eq!(
            t.read(&format!("c-spark/{part}")),
            t.read(&format!("c-run/{part}")),
            "{part}"
        );
    }
    assert!(t.path("c-spark/_SUCCESS").is_file());
    let (sr, rr) = (
        t.report("c-spark/report.json"),
        t.report("c-run/report.json"),
    );
    assert_eq!(sr["reducers"], 3);
    assert_eq!(sr["status"], "succeeded");
    // The combiner ran in the map tasks on Spark as in `run`: the same records shuffled.
    assert_eq!(
        sr["shuffle"]["map_output_records"],
        rr["shuffle"]["map_output_records"]
    );
    assert_eq!(
        sr["shuffle"]["shuffled_records"],
        rr["shuffle"]["shuffled_records"]
    );
    assert!(
        sr["shuffle"]["shuffled_records"].as_u64() < sr["shuffle"]["map_output_records"].as_u64(),
        "the combiner did not combine: {sr}"
    );
}

/// Keys that are not UTF-8 cross Spark byte-exact; a map task whose first attempt fails is
/// retried by Spark and the job succeeds with exact counts, the failed attempt in the report
/// and its counters not added; a task that always fails fails the job with polymr's error
/// text, and nothing is published.
#[test]
fn bytes_retries_and_failures_on_spark() {
    let Some(submit) = spark_submit() else { return };
    let t = TestContext::new();
    let mark = t.path("failed-once");
    t.write_exec(
        "bin/map.sh",
        &format!(
            "#!/bin/sh\nif mkdir '{}' 2>/dev/null; then cat >/dev/null; echo 'first attempt fails on purpose' >&2; exit 3; fi\nexec awk '{{ print }} END {{ print \"reporter:counter:test,lines,\" NR > \"/dev/stderr\" }}'\n",
            mark.display()
        ),
    );
    t.write_exec(
        "bin/sum.sh",
        &std::fs::read_to_string(repo("custom-reducers/sum.sh")).expect("sum.sh"),
    );
    t.write_exec(
        "bin/boom.sh",
        "#!/bin/sh\ncat >/dev/null\necho 'boom: this mapper always fails' >&2\nexit 4\n",
    );
    t.write("c.yml", "mapper: {language: binary, script: bin/map.sh}\nreducer: {language: binary, script: bin/sum.sh}\nrecord_format: lines\n");
    t.write("boom.yml", "mapper: {language: binary, script: bin/boom.sh}\nreducer: {language: binary, script: bin/sum.sh}\nrecord_format: lines\n");
    let mut total = 0;
    for f in 0..4u8 {
        let mut data = Vec::new();
        for i in 0..300u32 {
            // Latin-1 bytes, a lone continuation byte, and plain keys.
            let key: &[u8] = match i % 4 {
                0 => b"caf\xe9",
                1 => b"\xff\xfe-bom",
                2 => b"\x80",
                _ => b"plain",
            };
            data.extend_from_slice(key);
            data.extend_from_slice(format!("\t{}\n", f as u32 + 1).as_bytes());
            total += 1;
        }
        t.write(&format!("in/{f}.txt"), data);
    }

    let run = spark(
        &t,
        &submit,
        &[],
        &[
            "--config",
            "c.yml",
            "--mappers",
            "2",
            "--reducers",
            "2",
            "-o",
            "spark.txt",
            "in",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(mark.exists(), "the first attempt did not run");
    // The marker now exists: `polymr run` never fails.
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--mappers",
            "2",
            "--reducers",
            "2",
            "-o",
            "run.txt",
            "in",
        ])
        .assert()
        .success();
    let spark_out = std::fs::read(t.path("spark.txt")).expect("spark.txt");
    assert_eq!(
        spark_out,
        std::fs::read(t.path("run.txt")).expect("run.txt")
    );
    assert_eq!(
        sorted_lines(&spark_out),
        sorted_lines(b"\x80\t750\n\xff\xfe-bom\t750\ncaf\xe9\t750\nplain\t750\n")
    );
    let r = t.report("spark.txt.report.json");
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["totals"]["records"], total, "{r}");
    assert_eq!(
        r["counters"]["test"]["lines"], total,
        "counted once per successful task: {r}"
    );
    let tasks = r["tasks"].as_array().expect("tasks");
    let failed: Vec<&serde_json::Value> =
        tasks.iter().filter(|a| a["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{r}");
    assert_eq!(failed[0]["child"]["exit"]["code"], 3, "{r}");
    assert_eq!(
        tasks.len(),
        2 + 2 + 1,
        "2 map tasks, 2 reduce tasks, 1 failed attempt: {r}"
    );

    let boom = spark(
        &t,
        &submit,
        &[],
        &[
            "--config",
            "boom.yml",
            "--retries",
            "1",
            "-o",
            "boom.txt",
            "in",
        ],
    );
    assert_ne!(boom.code, 0);
    assert!(
        boom.stderr.contains("boom: this mapper always fails") || boom.stderr.contains("exit"),
        "{}",
        boom.stderr
    );
    assert!(
        boom.stderr.contains("polymr task map-0000"),
        "{}",
        boom.stderr
    );
    assert!(
        !t.path("boom.txt").exists(),
        "a failed job published a result"
    );
    let r = t.report("boom.txt.report.json");
    assert_eq!(r["status"], "failed");
    assert_eq!(r["published"], false);
    let attempts = r["tasks"].as_array().expect("tasks").len();
    assert!(
        attempts >= 2,
        "both attempts of the failing task are in the report: {r}"
    );
}

/// Inputs on the S3 server, CREDENTIALS decrypted by polymr on the executors, the result
/// uploaded to S3; no secret in anything Spark logged (submitter, executors, event log).
#[test]
fn s3_inputs_with_credentials_on_spark_leak_no_secret() {
    let Some(submit) = spark_submit() else { return };
    let t = TestContext::new();
    t.write(
        "custom-mappers/os.py",
        std::fs::read(repo("custom-mappers/os_count.py")).expect("mapper"),
    );
    t.write(
        "custom-reducers/reducer.py",
        std::fs::read(repo("custom-reducers/reducer.py")).expect("reducer"),
    );
    t.write("analysis-tools.yml", "language: python\nscript: os.py\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "telemetry");
    for (name, n, codec) in [
        ("a.xz", 400, "xz"),
        ("b.gz", 300, "gzip"),
        ("c.txt", 250, "none"),
    ] {
        let p = t.compress(&format!("in/{name}"), records(n, name).as_bytes(), codec);
        put(
            &rt,
            &c,
            "telemetry",
            &format!("data/{name}"),
            std::fs::read(p).expect("read"),
        );
    }
    t.cmd()
        .args(["credentials", "keygen", "--out-dir", "keys"])
        .assert()
        .success();
    const SECRET: &str = "sEcReTkEy0123456789sparkNeverLogs";
    const TOKEN: &str = "SeSsIoNtOkEnSparkNeverLogs42";
    t.write(
        "creds.json",
        format!(r#"{{"accessKeyId":"AKIASPARKTEST","secretAccessKey":"{SECRET}","sessionToken":"{TOKEN}","region":"us-east-1"}}"#),
    );
    let enc = t
        .cmd()
        .args([
            "credentials",
            "encrypt",
            "--public-key",
            "keys/key.pub.pem",
            "--input",
            "creds.json",
        ])
        .assert()
        .success();
    let credentials = String::from_utf8(enc.get_output().stdout.clone())
        .expect("utf-8")
        .trim()
        .to_string();
    let key = t.path("keys/key.pem").display().to_string();

    t.cmd()
        .args(["run", "-o", "local.txt", "in"])
        .assert()
        .success();
    let run = spark(
        &t,
        &submit,
        &[("CREDENTIALS", &credentials)],
        &[
            "--private-key",
            &key,
            "--s3-endpoint",
            &s3.endpoint(),
            "--mappers",
            "2",
            "-o",
            "s3://telemetry/out/result.txt",
            "s3://telemetry/data/",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let uploaded = String::from_utf8(get(&rt, &c, "telemetry", "out/result.txt")).expect("utf8");
    assert_eq!(uploaded, t.read("local.txt"));
    let report: serde_json::Value =
        serde_json::from_slice(&get(&rt, &c, "telemetry", "out/result.txt.report.json"))
            .expect("report");
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["totals"]["records"], 950);
    assert!(
        run.logs.len() > 10_000,
        "the logs were not read ({} bytes)",
        run.logs.len()
    );
    let logs = String::from_utf8_lossy(&run.logs);
    assert!(
        logs.contains("SparkListenerEnvironmentUpdate"),
        "no event log was read"
    );
    for secret in [SECRET, TOKEN, credentials.as_str()] {
        assert!(
            !logs.contains(secret),
            "a secret is in Spark's logs: {}…",
            &secret[..8]
        );
    }
}

/// The bytes of the bundle Spark unpacked, from its log line "Unpacking an archive … (N bytes)".
fn unpacked_bundle_bytes(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("Unpacking an archive") && l.contains("bundle.tar.gz"))?;
    let (_, rest) = line.rsplit_once('(')?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `--no-bundle`: executors run the polymr already on their machines (the image's), the
/// bundle carries no binary, and a map-only job's outputs equal `run`'s. An executor polymr
/// that cannot run fails the job once, before any task, naming the executor and the reason,
/// and publishes nothing.
#[test]
fn no_bundle_uses_the_executors_polymr_and_checks_it_first() {
    let Some(submit) = spark_submit() else { return };
    let t = TestContext::new();
    t.write_exec("bin/upper.sh", "#!/bin/sh\nexec tr a-z A-Z\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: bin/upper.sh}\nrecord_format: lines\n",
    );
    for f in 0..3 {
        t.write(
            &format!("in/{f}.txt"),
            records(200 + f * 50, &format!("f{f}")),
        );
    }
    // No reducer: a map-only job, one output per map task.
    let map_only = ["--config", "c.yml", "--mappers", "3", "--output-dir"];
    t.cmd()
        .arg("run")
        .args(map_only)
        .args(["run-out", "in"])
        .assert()
        .success();
    let installed = assert_cmd::cargo::cargo_bin("polymr").display().to_string();
    let ok = spark_with(
        &t,
        &submit,
        &[],
        &["--no-bundle", "--executor-polymr", &installed],
        &[&map_only[..], &["spark-out", "in"]].concat(),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let bytes = unpacked_bundle_bytes(&ok.stderr).expect("Spark logged the bundle it unpacked");
    assert!(
        bytes < 1_000_000,
        "the bundle carries a binary: {bytes} bytes"
    );
    let mut parts = 0;
    for e in std::fs::read_dir(t.path("run-out"))
        .expect("run-out")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-m-") {
            assert_eq!(
                t.read(&format!("spark-out/{name}")),
                t.read(&format!("run-out/{name}"))
            );
            parts += 1;
        }
    }
    assert_eq!(parts, 3, "one output per map task");
    assert_eq!(t.report("spark-out/report.json")["status"], "succeeded");

    let missing = t.path("not-installed/polymr").display().to_string();
    let bad = spark_with(
        &t,
        &submit,
        &[],
        &["--no-bundle", "--executor-polymr", &missing],
        &[&map_only[..], &["bad-out", "in"]].concat(),
    );
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("polymr cannot run on executor"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains(&missing),
        "the path is not named: {}",
        bad.stderr
    );
    assert!(
        !bad.stderr.contains("polymr map:"),
        "a map task ran: {}",
        bad.stderr
    );
    assert!(
        !t.path("bad-out/_SUCCESS").exists(),
        "a failed job published"
    );
    let r = t.report("bad-out/report.json");
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["published"], false, "{r}");
}

/// Every process descended from `root`, from /proc's parent links.
fn descendants(root: i32) -> Vec<i32> {
    let mut parent = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses.
        if let Some(ppid) = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok())
        {
            parent.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Stopping `polymr spark-submit` (SIGTERM, as a scheduler or Ctrl-C would) while a mapper
/// hangs on an executor: polymr exits, and every process the job started, the JVMs, Python
/// workers, `polymr task` and the mapper included, is gone; nothing is published.
#[test]
fn a_stopped_spark_job_leaves_no_process_behind() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let Some(submit) = spark_submit() else { return };
    let _one = SPARK.lock().unwrap_or_else(|p| p.into_inner());
    let t = TestContext::new();
    let pid_file = t.path("mapper.pid");
    t.write_exec(
        "bin/hang.sh",
        &format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 600\n",
            pid_file.display()
        ),
    );
    t.write_exec("bin/cat.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: bin/hang.sh}\nreducer: {language: binary, script: bin/cat.sh}\nrecord_format: lines\n");
    t.write("in/a.txt", "x\n");
    let events = t.path("spark-events");
    std::fs::create_dir_all(&events).expect("mkdir");
    let work = spark_work_dir(&submit);
    let before = list(work.as_deref());
    let mut child = t
        .std_cmd()
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args(spark_argv(
            &submit,
            &events,
            &[],
            &["--config", "c.yml", "-o", "out.txt", "in"],
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn polymr spark-submit");
    let mapper = wait_for_pid(&pid_file, Duration::from_secs(300));
    let started = descendants(child.id() as i32);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let mapper = mapper.expect("the mapper did not start on Spark");
    assert!(
        started.contains(&mapper),
        "the mapper is not the job's: {started:?}"
    );
    assert!(
        started.len() >= 5,
        "JVMs, Python, polymr task, mapper: {started:?}"
    );
    assert!(!status.success(), "{status:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut alive: Vec<i32> = started.clone();
    while !alive.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        alive.retain(|p| pid_alive(*p));
    }
    let described: Vec<String> = alive
        .iter()
        .map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect();
    for p in &alive {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    for dir in list(work.as_deref()).iter().filter(|p| !before.contains(p)) {
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(alive.is_empty(), "outlived polymr: {described:#?}");
    assert!(!t.path("out.txt").exists(), "a stopped job published");
}

/// A `$TMPDIR` with a space and a `#` (the bundle's path goes to spark-submit as a URI), and
/// one with a comma, which spark-submit cannot carry at all: refused before anything starts,
/// with the reason, and nothing published.
#[test]
fn hostile_tmpdir_names_reach_spark_intact_or_are_refused() {
    let Some(submit) = spark_submit() else { return };
    let t = TestContext::new();
    let sample = repo("examples/data").display().to_string();
    let config = repo("analysis-tools.yml").display().to_string();
    let odd = t.path("tmp dir #1");
    std::fs::create_dir_all(&odd).expect("mkdir");
    t.cmd()
        .args(["run", "--config", &config, "-o", "run.txt", &sample])
        .assert()
        .success();
    let ok = spark(
        &t,
        &submit,
        &[("TMPDIR", &odd.display().to_string())],
        &["--config", &config, "-o", "spark.txt", &sample],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(t.read("spark.txt"), t.read("run.txt"));

    let comma = t.path("tmp,dir");
    std::fs::create_dir_all(&comma).expect("mkdir");
    let refused = t
        .cmd()
        .env("TMPDIR", &comma)
        .args([
            "spark-submit",
            "--spark-submit",
            &submit.display().to_string(),
            "--",
            "--config",
            &config,
            "-o",
            "comma.txt",
            &sample,
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(err.contains("comma") && err.contains("TMPDIR"), "{err}");
    assert!(!t.path("comma.txt").exists());
    assert_eq!(t.listing("tmp,dir"), Vec::<String>::new(), "left behind");
}

/// The README's way to ship a Python to the executors: the user's `--archives env.tar.gz#env`
/// arrives beside polymr's bundle (spark-submit keeps only the last `--archives` it is given),
/// and `spark.executorEnv.POLYMR_PYTHON=./env/bin/python` is the Python the mapper runs with.
#[test]
fn a_users_archive_ships_the_python_the_mappers_run_with() {
    let Some(submit) = spark_submit() else { return };
    let t = TestContext::new();
    let sample = repo("examples/data").display().to_string();
    let config = repo("analysis-tools.yml").display().to_string();
    let marker = t.path("env-python-ran");
    t.write_exec(
        "env/bin/python",
        &format!(
            "#!/bin/sh\necho ran >> '{}'\nexec python3 \"$@\"\n",
            marker.display()
        ),
    );
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(t.path("env.tar.gz"))
        .arg("-C")
        .arg(t.path("env"))
        .arg("bin")
        .status()
        .expect("tar");
    assert!(tar.success());
    t.cmd()
        .args(["run", "--config", &config, "-o", "run.txt", &sample])
        .assert()
        .success();
    let archive = format!("{}#env", t.path("env.tar.gz").display());
    let run = spark_with(
        &t,
        &submit,
        &[],
        &[
            "--archives",
            &archive,
            "--conf",
            "spark.executorEnv.POLYMR_PYTHON=./env/bin/python",
        ],
        &["--config", &config, "-o", "spark.txt", &sample],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.read("spark.txt"), t.read("run.txt"));
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        ran.lines().count() >= 2,
        "the shipped Python ran for {} of 2+ map tasks and the reducer",
        ran.lines().count()
    );
}

/// A Spark standalone cluster on 127.0.0.1 (a master and a worker, as `spark-class` starts
/// them), stopped with its executors when dropped.
struct Standalone {
    master: std::process::Child,
    worker: std::process::Child,
    url: String,
    work: PathBuf,
}

impl Standalone {
    fn start(t: &TestContext, submit: &Path) -> Standalone {
        use std::os::unix::process::CommandExt;
        let home = spark_work_dir(submit)
            .and_then(|w| w.parent().map(Path::to_path_buf))
            .expect("pyspark's directory");
        let class = home.join("bin/spark-class");
        let port = free_port();
        let url = format!("spark://127.0.0.1:{port}");
        let work = t.path("standalone-work");
        std::fs::create_dir_all(&work).expect("mkdir");
        let daemon = |args: &[String], log: &str| {
            let log = std::fs::File::create(t.path(log)).expect("log");
            std::process::Command::new(&class)
                .env("SPARK_HOME", &home)
                .env("SPARK_LOCAL_IP", "127.0.0.1")
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("spark-class")
        };
        let master = daemon(
            &[
                "org.apache.spark.deploy.master.Master".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--webui-port".into(),
                free_port().to_string(),
            ],
            "master.log",
        );
        let worker = daemon(
            &[
                "org.apache.spark.deploy.worker.Worker".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--webui-port".into(),
                free_port().to_string(),
                "--cores".into(),
                "2".into(),
                "--memory".into(),
                "2g".into(),
                "--work-dir".into(),
                work.display().to_string(),
                url.clone(),
            ],
            "worker.log",
        );
        let cluster = Standalone {
            master,
            worker,
            url,
            work,
        };
        let started = std::time::Instant::now();
        while !t
            .read("worker.log")
            .contains("Successfully registered with master")
        {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the standalone cluster did not start:\n{}\n{}",
                t.read("master.log"),
                t.read("worker.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        // The worker's group holds the executors it launched.
        for child in [&mut self.worker, &mut self.master] {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// On a standalone cluster the bundle (gzipped: the master is not local) reaches the
/// executors through Spark's own file server, and the job gives what `run` gives.
#[test]
fn a_standalone_cluster_runs_the_job_from_the_shipped_bundle() {
    let Some(submit) = spark_submit() else { return };
    let _one = SPARK.lock().unwrap_or_else(|p| p.into_inner());
    let t = TestContext::new();
    let sample = repo("examples/data").display().to_string();
    let config = repo("analysis-tools.yml").display().to_string();
    t.cmd()
        .args(["run", "--config", &config, "-o", "run.txt", &sample])
        .assert()
        .success();
    let cluster = Standalone::start(&t, &submit);
    let events = t.path("spark-events");
    std::fs::create_dir_all(&events).expect("mkdir");
    let out = t
        .cmd()
        .timeout(Duration::from_secs(600))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args(spark_argv(
            &submit,
            &events,
            &["--master", &cluster.url],
            &[
                "--config",
                &config,
                "--mappers",
                "2",
                "-o",
                "spark.txt",
                &sample,
            ],
        ))
        .output()
        .expect("polymr spark-submit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(t.read("spark.txt"), t.read("run.txt"));
    let mut executor_logs = Vec::new();
    read_all(&cluster.work, &mut executor_logs);
    let executor_logs = String::from_utf8_lossy(&executor_logs);
    assert!(
        executor_logs.contains("Fetching spark://") && executor_logs.contains("bundle.tar.gz"),
        "the executors did not fetch the bundle from the driver:\n{executor_logs}"
    );
    assert!(
        executor_logs.contains("polymr map: succeeded"),
        "no map task ran on the cluster's executors"
    );
}

/// A spark-submit that cannot be run is a usage error, said before any planning (the input
/// here does not exist, and is not what the error is about).
#[test]
fn a_missing_spark_submit_is_a_usage_error_before_planning() {
    let t = TestContext::new();
    let out = t
        .cmd()
        .args([
            "spark-submit",
            "--spark-submit",
            "/nonexistent/spark-submit",
            "--",
            "-o",
            "out.txt",
            "no-such-input",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("/nonexistent/spark-submit"), "{err}");
    assert!(!err.contains("no-such-input"), "planned first: {err}");
    assert!(!t.path("out.txt").exists());
}
