//! Remote inputs and outputs against real servers on 127.0.0.1: an S3-compatible store
//! (moto), a proxy that breaks, refuses and stalls connections, and an HTTP artifact server.

use std::sync::atomic::Ordering;

use crate::servers::*;
use crate::util::*;

const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
];

fn s3_job(t: &TestContext) {
    t.write("custom-mappers/os.py", PY_OS_MAPPER);
    t.write(
        "custom-reducers/reducer.py",
        "def reduce(key, values):\n    return \"%s %d\" % (key, sum(int(v) for v in values))\n",
    );
    t.write("analysis-tools.yml", "language: python\nscript: os.py\n");
}

/// Three compressed inputs, written locally under in/ and uploaded under data/.
fn upload_inputs(
    t: &TestContext,
    rt: &tokio::runtime::Runtime,
    c: &aws_sdk_s3::Client,
    bucket: &str,
) {
    for (name, n, codec) in [
        ("a.xz", 400, "xz"),
        ("b.gz", 300, "gzip"),
        ("c.txt", 250, "none"),
    ] {
        let p = t.compress(&format!("in/{name}"), records(n, name).as_bytes(), codec);
        put(
            rt,
            c,
            bucket,
            &format!("data/{name}"),
            std::fs::read(p).expect("read"),
        );
    }
}

#[test]
fn map_and_run_over_s3_match_the_local_run() {
    let t = TestContext::new();
    s3_job(&t);
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "telemetry");
    upload_inputs(&t, &rt, &c, "telemetry");

    t.cmd()
        .args(["map", "-o", "local-map.txt", "in"])
        .assert()
        .success();
    t.cmd()
        .envs(AWS_ENV)
        .args([
            "map",
            "--s3-endpoint",
            &s3.endpoint(),
            "-o",
            "s3-map.txt",
            "s3://telemetry/data/",
        ])
        .assert()
        .success();
    let mut local: Vec<String> = t.read("local-map.txt").lines().map(String::from).collect();
    let mut remote: Vec<String> = t.read("s3-map.txt").lines().map(String::from).collect();
    local.sort();
    remote.sort();
    assert_eq!(local, remote);
    assert_eq!(remote.len(), 950);

    // Bare keys in the configured bucket, as the original took them.
    t.cmd()
        .envs(AWS_ENV)
        .args([
            "map",
            "--s3-endpoint",
            &s3.endpoint(),
            "--bucket",
            "telemetry",
            "-o",
            "bare.txt",
            "data/a.xz",
            "data/b.gz",
        ])
        .assert()
        .success();
    assert_eq!(t.read("bare.txt").lines().count(), 700);

    t.cmd()
        .args(["run", "-o", "local-run.txt", "in"])
        .assert()
        .success();
    t.cmd()
        .envs(AWS_ENV)
        .args([
            "run",
            "--s3-endpoint",
            &s3.endpoint(),
            "--output",
            "s3://telemetry/out/result.txt",
            "s3://telemetry/data/",
        ])
        .assert()
        .success();
    let uploaded = String::from_utf8(get(&rt, &c, "telemetry", "out/result.txt")).expect("utf8");
    assert_eq!(uploaded, t.read("local-run.txt"));
    let report: serde_json::Value =
        serde_json::from_slice(&get(&rt, &c, "telemetry", "out/result.txt.report.json"))
            .expect("report");
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["totals"]["records"], 950);
}

#[test]
fn broken_refused_and_stalled_downloads_are_retried_and_results_stay_exact() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: cat.sh}\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "bkt");
    // Plain text objects of ~1.5 MB: a cut half-way lands inside a record.
    let mut want = Vec::new();
    for i in 0..3 {
        let body = records(6000, &format!("f{i}"));
        want.extend(body.lines().map(String::from));
        put(&rt, &c, "bkt", &format!("logs/{i}.txt"), body.into_bytes());
    }
    let proxy = FaultProxy::start(s3.port);
    proxy.faults.refuse_first.store(2, Ordering::SeqCst);
    proxy.faults.cut_after.store(300_000, Ordering::SeqCst);
    proxy.faults.cut_next.store(3, Ordering::SeqCst);
    proxy.faults.stall_next.store(1, Ordering::SeqCst);
    proxy.faults.stall_ms.store(2_000, Ordering::SeqCst);

    t.cmd()
        .envs(AWS_ENV)
        .env("POLYMR_READ_TIMEOUT_MS", "700")
        .args([
            "map",
            "--config",
            "c.yml",
            "--s3-endpoint",
            &proxy.endpoint(),
            "--parallel-downloads",
            "1",
            "s3://bkt/logs/",
        ])
        .assert()
        .success();
    let got: Vec<String> = t.read("result.txt").lines().map(String::from).collect();
    assert_eq!(got.len(), want.len(), "a record was lost or duplicated");
    assert!(got == want, "records differ from the objects' content");
    let r = t.report("result.txt.report.json");
    let retries = r["totals"]["download_retries"].as_u64().expect("retries");
    assert!(retries >= 2, "the report shows {retries} retries");
    assert!(proxy.faults.connections.load(Ordering::SeqCst) > 3);
}

#[test]
fn a_download_that_never_succeeds_is_reported_and_the_rest_processed() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: cat.sh}\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "bkt");
    put(&rt, &c, "bkt", "ok.txt", b"fine\n".to_vec());
    t.cmd()
        .envs(AWS_ENV)
        .args([
            "map",
            "--config",
            "c.yml",
            "--s3-endpoint",
            &s3.endpoint(),
            "s3://bkt/missing.txt",
            "s3://bkt/ok.txt",
        ])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "fine\n");
    let r = t.report("result.txt.report.json");
    assert_eq!(r["inputs"][0]["status"], "failed");
    assert!(
        r["inputs"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing.txt")),
        "{}",
        r["inputs"][0]
    );
}

#[test]
fn keep_downloads_writes_the_original_layout() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: cat.sh}\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "bkt");
    let body = records(50, "k");
    put(
        &rt,
        &c,
        "bkt",
        "saved_session/Firefox/x.txt",
        body.clone().into_bytes(),
    );
    t.cmd()
        .envs(AWS_ENV)
        .args([
            "map",
            "--config",
            "c.yml",
            "--s3-endpoint",
            &s3.endpoint(),
            "--keep-downloads",
            "s3://bkt/saved_session/Firefox/x.txt",
        ])
        .assert()
        .success();
    assert_eq!(t.read("s3/saved_session/Firefox/x.txt"), body);
}

#[test]
fn reduce_over_input_task_ids_from_an_artifact_server() {
    let t = TestContext::new();
    s3_job(&t);
    t.write(
        "www/task/T1/artifacts/public/result.txt",
        "WINNT 1\nLinux 1\n",
    );
    t.write(
        "www/task/T2/artifacts/public/result.txt",
        "WINNT 1\nDarwin 1\n",
    );
    t.write("www/task/T3/artifacts/public/result.txt", "WINNT 1\n");
    let server = StaticServer::start(t.path("www"));
    let template = format!(
        "http://127.0.0.1:{}/task/{{taskId}}/artifacts/public/result.txt",
        server.port
    );
    t.cmd()
        .env("INPUT_TASK_IDS", "T1 T2 T3")
        .args(["reduce", "--artifact-url", &template])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "Darwin 1\nLinux 1\nWINNT 3\n");
    let r = t.report("result.txt.report.json");
    assert_eq!(r["totals"]["files"], 3);

    // A missing artifact is named in the report.
    t.cmd()
        .env("INPUT_TASK_IDS", "T1 NOPE")
        .args(["reduce", "--artifact-url", &template, "-o", "partial.txt"])
        .assert()
        .success();
    let r = t.report("partial.txt.report.json");
    assert_eq!(r["inputs"][1]["status"], "failed");
    assert!(
        r["inputs"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("404")),
        "{}",
        r["inputs"][1]
    );
}

/// Regression: the job report's totals dropped `download_retries` (a job added every
/// total of its map tasks but that one).
#[test]
fn job_totals_count_the_download_retries_of_its_map_tasks() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: cat.sh}\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "bkt");
    for i in 0..2 {
        let body = records(2000, &format!("f{i}"));
        put(&rt, &c, "bkt", &format!("logs/{i}.txt"), body.into_bytes());
    }
    let proxy = FaultProxy::start(s3.port);
    proxy.faults.cut_after.store(100_000, Ordering::SeqCst);
    proxy.faults.cut_next.store(2, Ordering::SeqCst);
    t.cmd()
        .envs(AWS_ENV)
        .args([
            "run",
            "--config",
            "c.yml",
            "--s3-endpoint",
            &proxy.endpoint(),
            "--parallel-downloads",
            "1",
            "--mappers",
            "1",
            "s3://bkt/logs/",
        ])
        .assert()
        .success();
    let r = t.report("result.txt.report.json");
    let per_task: u64 = r["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["status"] == "succeeded")
        .map(|t| t["totals"]["download_retries"].as_u64().unwrap_or(0))
        .sum();
    assert!(per_task >= 1, "the proxy's cuts caused no retry: {r}");
    assert_eq!(r["totals"]["download_retries"].as_u64(), Some(per_task));
}

/// Regression: the notifications were added to the local report after it had been uploaded,
/// so the report on S3 lacked them.
#[test]
fn the_report_uploaded_to_s3_holds_the_notifications() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: cat.sh}\n");
    t.write("in/a", "x\ny\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "bkt");
    let closed = free_port();
    t.cmd()
        .envs(AWS_ENV)
        .env("OWNER", "owner@example.com")
        .env("SMTP_URL", format!("smtp://127.0.0.1:{closed}"))
        .args([
            "run",
            "--config",
            "c.yml",
            "--s3-endpoint",
            &s3.endpoint(),
            "-o",
            "s3://bkt/out/result.txt",
            "in",
        ])
        .assert()
        .success();
    assert_eq!(get(&rt, &c, "bkt", "out/result.txt"), b"x\ny\n");
    let report: serde_json::Value =
        serde_json::from_slice(&get(&rt, &c, "bkt", "out/result.txt.report.json")).expect("report");
    assert_eq!(report["notifications"][0]["channel"], "email", "{report}");
    assert_eq!(report["notifications"][0]["ok"], false);
}

/// Regression: `polymr reduce` added the notifications to its report after uploading it.
#[test]
fn the_reduce_report_uploaded_to_s3_holds_the_notifications() {
    let t = TestContext::new();
    t.write_exec("sum.sh", "#!/bin/sh\nexec cat\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: sum.sh}\nreducer: {language: binary, script: sum.sh}\n",
    );
    t.write("in/a", "k\t1\n");
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "bkt");
    let closed = free_port();
    t.cmd()
        .envs(AWS_ENV)
        .env("OWNER", "owner@example.com")
        .env("SMTP_URL", format!("smtp://127.0.0.1:{closed}"))
        .args([
            "reduce",
            "--config",
            "c.yml",
            "--s3-endpoint",
            &s3.endpoint(),
            "-o",
            "s3://bkt/r/result.txt",
            "in/a",
        ])
        .assert()
        .success();
    assert_eq!(get(&rt, &c, "bkt", "r/result.txt"), b"k\t1\n");
    let report: serde_json::Value =
        serde_json::from_slice(&get(&rt, &c, "bkt", "r/result.txt.report.json")).expect("report");
    assert_eq!(report["notifications"][0]["channel"], "email", "{report}");
}
