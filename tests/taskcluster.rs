//! `polymr plan --emit taskcluster`: the original's task graph, checked against Taskcluster's
//! own published schemas (vendored in tests/fixtures/taskcluster, validated by Python's
//! `jsonschema`), the dependency structure, the container contract each task runs, and that
//! no credential is ever printed in clear.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::servers::{create_bucket, put, s3_client, S3Server, StaticServer};
use crate::util::{records, TestContext};

const CONFIG: &str =
    "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\n";
const MAP_ONLY: &str = "mapper: {language: binary, script: map.sh}\n";
const ROOT: &str = "https://tc.example.test";
/// The planner's own AWS secret (it lists the bucket): it must never reach the graph.
const PLANNER_SECRET: &str = "planner-secret-Zq81vXwK";
/// The secrets inside the encrypted CREDENTIALS: never in clear in the output.
const TASK_SECRET: &str = "task-secret-7fGm2LpQ9rTs";
const TASK_TOKEN: &str = "task-session-token-Hh3Kd0Ww";

/// Keys with what breaks naive command lines: spaces, a leading dash, quotes, unicode.
const KEYS: &[&str] = &[
    "saved_session/Firefox/release/30.0/20140101.20140601.v2.log.a.lzma",
    "saved_session/Firefox/release/30.0/20140101.20140601.v2.log.b.lzma",
    "saved_session/Firefox/beta/31.0/20140102.20140602.v2.log.c.lzma",
    "saved_session/Fennec/nightly/33.0a1/20140103.20140603.v2.log.d.lzma",
    "idle_daily/Firefox/aurora/32.0a2/20140104.20140604.v2.log.e.lzma",
    "odd/-rf",
    "odd/with space and 'quotes\"",
    "odd/ünïcødé/ключ",
    "odd/$(touch pwned)",
    "odd/x;y&z|w",
];

fn python() -> String {
    std::env::var("POLYMR_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/taskcluster")
}

/// Runs validate.py over `doc`; its violations (empty when valid).
fn validate(doc: &Value, payloads_only: bool) -> Vec<String> {
    let mut c = Command::new(python());
    c.arg(fixtures().join("validate.py"));
    if payloads_only {
        c.arg("--payloads-only");
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{}` (POLYMR_TEST_PYTHON): {e}", python()));
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        doc.to_string().as_bytes(),
    )
    .expect("write graph");
    let out = child.wait_with_output().expect("validate.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "validate.py needs jsonschema and PyYAML: run `make test-deps` or set POLYMR_TEST_PYTHON\n{stderr}"
    );
    match out.status.code() {
        Some(0) => vec![],
        Some(1) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect(),
        _ => panic!("validate.py failed: {stderr}"),
    }
}

/// The queue's slugid-pattern (a v4 UUID in URL-safe base64), and "nice": the first bit 0.
fn assert_slugid(id: &str) {
    let b = id.as_bytes();
    let url_safe = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
    assert!(
        b.len() == 22
            && b.iter().all(url_safe)
            && (b'Q'..=b'T').contains(&b[8])
            && b"CGKOSWaeimquy26-".contains(&b[10])
            && b"AQgw".contains(&b[21])
            && (b[0].is_ascii_uppercase() || (b'a'..=b'f').contains(&b[0])),
        "`{id}` is not a nice slugid"
    );
}

fn job(t: &TestContext, config: &str) {
    t.write_exec("map.sh", "#!/bin/sh\nexec cat\n");
    t.write_exec("sum.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", config);
}

/// A key pair, and credentials encrypted for it by `polymr credentials encrypt`.
fn encrypted_credentials(t: &TestContext) -> (PathBuf, String) {
    t.cmd()
        .args(["credentials", "keygen", "--out-dir", "keys"])
        .assert()
        .success();
    let clear = serde_json::json!({
        "accessKeyId": "ASIATASKKEY",
        "secretAccessKey": TASK_SECRET,
        "sessionToken": TASK_TOKEN,
        "region": "us-east-1",
    });
    t.write("clear.json", clear.to_string());
    let out = t
        .cmd()
        .args([
            "credentials",
            "encrypt",
            "--public-key",
            "keys/key.pub.pem",
            "--input",
            "clear.json",
        ])
        .assert()
        .success();
    let value = String::from_utf8(out.get_output().stdout.clone()).expect("utf-8");
    t.write("creds.enc", &value);
    (t.path("keys/key.pem"), value.trim().to_string())
}

/// A bucket holding every key of [`KEYS`], 1 KiB to 10 KiB each.
fn bucket() -> S3Server {
    let s3 = S3Server::start();
    let (rt, c) = s3_client(&s3.endpoint());
    create_bucket(&rt, &c, "tel");
    for (i, k) in KEYS.iter().enumerate() {
        put(
            &rt,
            &c,
            "tel",
            k,
            records(10 + 10 * i, k).into_bytes()[..1024 * (i + 1)].to_vec(),
        );
    }
    s3
}

fn plan_cmd(t: &TestContext, s3: &S3Server) -> assert_cmd::Command {
    let mut c = t.cmd();
    c.env("AWS_ACCESS_KEY_ID", "planner")
        .env("AWS_SECRET_ACCESS_KEY", PLANNER_SECRET)
        .env("AWS_REGION", "us-east-1")
        .args(["plan", "--config", "c.yml", "--s3-endpoint"])
        .arg(s3.endpoint())
        .args(["--mappers", "1", "--max-batch-size", "8KiB"]);
    c
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` to milliseconds since the epoch (days_from_civil).
fn millis(date: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 { date[r].parse().expect(date) };
    assert!(date.len() == 24 && date.ends_with('Z'), "{date}");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

#[test]
fn the_graph_is_a_map_task_per_batch_and_a_reduce_task_over_them_all() {
    let t = TestContext::new();
    job(&t, CONFIG);
    let s3 = bucket();
    let (key, encrypted) = encrypted_credentials(&t);

    let plain = plan_cmd(&t, &s3)
        .args(["--format", "json", "s3://tel/"])
        .assert()
        .success();
    let plan: Value = serde_json::from_slice(&plain.get_output().stdout).expect("plan JSON");
    let before = polymr::plan::taskcluster::rfc3339(std::time::SystemTime::now());
    let out = plan_cmd(&t, &s3)
        .args(["--emit", "taskcluster", "--owner", "owner@example.test"])
        .args([
            "--root-url",
            &format!("{ROOT}/"),
            "--credentials",
            "creds.enc",
        ])
        .args([
            "--deadline",
            "2d",
            "--max-run-time",
            "3h",
            "--expires",
            "30d",
        ])
        .arg("s3://tel/")
        .assert()
        .success();
    let after = polymr::plan::taskcluster::rfc3339(std::time::SystemTime::now());
    let stdout = String::from_utf8(out.get_output().stdout.clone()).expect("utf-8");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let graph: Value = serde_json::from_str(&stdout).expect("graph JSON");

    // Taskcluster's own schemas accept every task definition and every payload.
    assert_eq!(validate(&graph, false), Vec::<String>::new());

    let group = graph["taskGroupId"].as_str().expect("taskGroupId");
    assert_slugid(group);
    assert_eq!(graph["rootUrl"], ROOT);
    let ui = format!("{ROOT}/tasks/groups/{group}");
    assert_eq!(graph["taskGroupUrl"], ui.as_str());
    assert!(
        stderr.contains(&ui),
        "the task group's page on stderr: {stderr}"
    );

    let tasks = graph["tasks"].as_array().expect("tasks");
    let map_plans = plan["map_tasks"].as_array().expect("map_tasks");
    assert!(
        map_plans.len() >= 4,
        "the batch size makes several map tasks"
    );
    assert_eq!(
        tasks.len(),
        map_plans.len() + 1,
        "a map task per batch, one reduce"
    );
    let ids: Vec<&str> = tasks
        .iter()
        .map(|t| t["taskId"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().chain([group]).collect();
    assert_eq!(
        unique.len(),
        ids.len() + 1,
        "task ids and the group id are unique"
    );
    ids.iter().for_each(|id| assert_slugid(id));

    let (maps, reduce) = tasks.split_at(map_plans.len());
    let map_ids: Vec<String> = ids[..maps.len()].iter().map(|s| s.to_string()).collect();
    let mut every_url = Vec::new();
    for (task, planned) in maps.iter().zip(map_plans) {
        let def = &task["task"];
        assert_eq!(
            def["dependencies"],
            serde_json::json!([]),
            "map tasks wait for none"
        );
        let p = &def["payload"];
        let command = strings(&p["command"]);
        let dashes = command
            .iter()
            .position(|a| a == "--")
            .expect("`--` before the inputs");
        assert_eq!(command[0], "map");
        let urls: Vec<String> = planned["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["url"].as_str().expect("a remote input").to_string())
            .collect();
        assert_eq!(
            command[dashes + 1..],
            urls[..],
            "the map task reads its batch"
        );
        every_url.extend(urls);
        assert_eq!(p["env"]["CREDENTIALS"], encrypted.as_str());
        assert_eq!(p["maxRunTime"], 3 * 3600);
        assert_eq!(def["metadata"]["owner"], "owner@example.test");
        assert_eq!(def["extra"]["polymr"]["task"], planned["id"]);
    }
    let mut expected: Vec<String> = KEYS.iter().map(|k| format!("s3://tel/{k}")).collect();
    expected.sort();
    every_url.sort();
    assert_eq!(every_url, expected, "every key in exactly one map task");

    let r = &reduce[0]["task"];
    let reduce_id = reduce[0]["taskId"].as_str().unwrap();
    assert_eq!(
        strings(&r["dependencies"]),
        map_ids,
        "the reduce task waits for every map task"
    );
    assert_eq!(r["requires"], "all-completed");
    let env = &r["payload"]["env"];
    let inputs: Vec<String> = env["INPUT_TASK_IDS"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect();
    assert_eq!(inputs, map_ids);
    assert_eq!(env["REDUCER_ID"], reduce_id);
    assert_eq!(env["OWNER"], "owner@example.test");
    assert_eq!(
        env["POLYMR_ARTIFACT_URL"],
        format!("{ROOT}/api/queue/v1/task/{{taskId}}/artifacts/public/result.txt").as_str()
    );
    assert!(
        env.get("CREDENTIALS").is_none(),
        "the reduce task reads public artifacts only"
    );
    assert_eq!(strings(&r["payload"]["command"])[0], "reduce");

    for task in tasks {
        let def = &task["task"];
        assert_eq!(def["taskGroupId"], group);
        assert_eq!(def["payload"]["image"], "polymr:latest");
        let (created, deadline, expires) = (
            def["created"].as_str().unwrap(),
            def["deadline"].as_str().unwrap(),
            def["expires"].as_str().unwrap(),
        );
        assert!(
            before.as_str() <= created && created <= after.as_str(),
            "created now"
        );
        assert_eq!(millis(deadline) - millis(created), 2 * 86_400_000);
        assert_eq!(millis(expires) - millis(created), 30 * 86_400_000);
        let artifacts = def["payload"]["artifacts"].as_object().unwrap();
        for (name, path) in [
            ("public/result.txt", "/home/worker/result.txt"),
            (
                "public/result.txt.report.json",
                "/home/worker/result.txt.report.json",
            ),
        ] {
            assert_eq!(artifacts[name]["path"], path);
            assert_eq!(artifacts[name]["type"], "file");
            assert_eq!(
                artifacts[name]["expires"], expires,
                "artifacts live as long as the task"
            );
        }
        // The container contract writes result.txt and its report where the artifacts are.
        let command = strings(&def["payload"]["command"]);
        let output = command.iter().position(|a| a == "--output").unwrap();
        assert_eq!(command[output + 1], "/home/worker/result.txt");
    }

    // No secret in clear: not the task's (only its encrypted envelope), not the planner's.
    for secret in [TASK_SECRET, TASK_TOKEN, PLANNER_SECRET] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
    // What the map tasks get is the real thing: it decrypts with the task's key.
    let check = t
        .cmd()
        .env("CREDENTIALS", &encrypted)
        .args(["credentials", "decrypt-check", "--private-key"])
        .arg(&key)
        .assert()
        .success();
    let said = String::from_utf8_lossy(&check.get_output().stdout).into_owned();
    assert!(said.contains("ASIA"), "{said}");
}

#[test]
fn a_map_only_job_has_no_reduce_task_and_http_inputs_pass_through() {
    let t = TestContext::new();
    job(&t, MAP_ONLY);
    for i in 0..3 {
        t.write(&format!("www/part {i}.txt"), records(20, "h"));
    }
    let www = StaticServer::start(t.path("www"));
    let urls: Vec<String> = (0..3)
        .map(|i| format!("http://127.0.0.1:{}/part%20{i}.txt", www.port))
        .collect();
    let plain = t
        .cmd()
        .args([
            "plan",
            "--config",
            "c.yml",
            "--mappers",
            "3",
            "--format",
            "json",
        ])
        .args(&urls)
        .assert()
        .success();
    let plan: Value = serde_json::from_slice(&plain.get_output().stdout).expect("plan JSON");
    let out = t
        .cmd()
        .args(["plan", "--config", "c.yml", "--mappers", "3"])
        .args(["--emit", "taskcluster", "--owner", "o@example.test"])
        .args(&urls)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("no --credentials"), "warned: {stderr}");
    let graph: Value = serde_json::from_slice(&out.get_output().stdout).expect("graph JSON");
    assert_eq!(validate(&graph, false), Vec::<String>::new());
    let tasks = graph["tasks"].as_array().unwrap();
    let map_tasks = plan["map_tasks"].as_array().unwrap().len();
    assert!(map_tasks >= 1);
    assert_eq!(tasks.len(), map_tasks, "the map tasks, and no reduce task");
    let mut got: Vec<String> = Vec::new();
    for t in tasks {
        let command = strings(&t["task"]["payload"]["command"]);
        assert_eq!(command[0], "map");
        assert!(t["task"]["payload"]["env"].get("CREDENTIALS").is_none());
        got.extend(command.into_iter().skip_while(|a| a != "--").skip(1));
    }
    got.sort();
    assert_eq!(got, urls);
}

/// One way of breaking a payload or a task definition.
type Mutation = Box<dyn Fn(&mut Value)>;

/// The validator is not a rubber stamp: what the schemas forbid, it refuses.
#[test]
fn the_vendored_schemas_refuse_what_taskcluster_refuses() {
    let good = serde_json::json!({
        "image": "polymr:latest", "command": ["map", "--", "s3://b/k"], "env": {"A": "b"},
        "maxRunTime": 60,
        "artifacts": {"public/result.txt": {"type": "file", "path": "/home/worker/result.txt",
                                             "expires": "2030-01-01T00:00:00.000Z"}}
    });
    assert_eq!(
        validate(&Value::Array(vec![good.clone()]), true),
        Vec::<String>::new()
    );
    let broken: Vec<(&str, Mutation)> = vec![
        (
            "no image",
            Box::new(|p| drop(p.as_object_mut().unwrap().remove("image"))),
        ),
        (
            "no maxRunTime",
            Box::new(|p| drop(p.as_object_mut().unwrap().remove("maxRunTime"))),
        ),
        ("maxRunTime 0", Box::new(|p| p["maxRunTime"] = 0.into())),
        ("maxRunTime 1.5", Box::new(|p| p["maxRunTime"] = 1.5.into())),
        ("env not strings", Box::new(|p| p["env"]["A"] = 1.into())),
        (
            "command not strings",
            Box::new(|p| p["command"][0] = 1.into()),
        ),
        ("unknown key", Box::new(|p| p["encryptedEnv"] = "x".into())),
        (
            "artifact type",
            Box::new(|p| p["artifacts"]["public/result.txt"]["type"] = "link".into()),
        ),
        (
            "artifact without path",
            Box::new(|p| {
                drop(
                    p["artifacts"]["public/result.txt"]
                        .as_object_mut()
                        .unwrap()
                        .remove("path"),
                )
            }),
        ),
        (
            "artifact expires not a date",
            Box::new(|p| p["artifacts"]["public/result.txt"]["expires"] = "tomorrow".into()),
        ),
    ];
    for (what, f) in &broken {
        let mut p = good.clone();
        f(&mut p);
        assert!(
            !validate(&Value::Array(vec![p]), true).is_empty(),
            "accepted: {what}"
        );
    }

    // And the queue's create-task-request, through a real emitted graph.
    let t = TestContext::new();
    job(&t, MAP_ONLY);
    t.write("www/a.txt", records(5, "a"));
    let www = StaticServer::start(t.path("www"));
    let out = t
        .cmd()
        .args([
            "plan",
            "--config",
            "c.yml",
            "--emit",
            "taskcluster",
            "--owner",
            "o@x.test",
        ])
        .arg(format!("http://127.0.0.1:{}/a.txt", www.port))
        .assert()
        .success();
    let graph: Value = serde_json::from_slice(&out.get_output().stdout).expect("graph JSON");
    assert_eq!(validate(&graph, false), Vec::<String>::new());
    let task_broken: Vec<(&str, Mutation)> = vec![
        (
            "a dependency that is no slugid",
            Box::new(|d| d["dependencies"] = serde_json::json!(["map-00000"])),
        ),
        (
            "a worker type with capitals",
            Box::new(|d| d["workerType"] = "Docker".into()),
        ),
        (
            "a task group id of 21 characters",
            Box::new(|d| d["taskGroupId"] = "a".repeat(21).into()),
        ),
        (
            "a data: source",
            Box::new(|d| d["metadata"]["source"] = "data:text/plain,x".into()),
        ),
        (
            "no owner",
            Box::new(|d| drop(d["metadata"].as_object_mut().unwrap().remove("owner"))),
        ),
        (
            "a name over 255 bytes",
            Box::new(|d| d["metadata"]["name"] = "n".repeat(256).into()),
        ),
        (
            "an unknown requires",
            Box::new(|d| d["requires"] = "some-completed".into()),
        ),
        (
            "no deadline",
            Box::new(|d| drop(d.as_object_mut().unwrap().remove("deadline"))),
        ),
    ];
    for (what, f) in &task_broken {
        let mut g = graph.clone();
        f(&mut g["tasks"][0]["task"]);
        assert!(!validate(&g, false).is_empty(), "accepted: {what}");
    }
}

#[test]
fn clear_credentials_are_refused_and_never_printed() {
    let t = TestContext::new();
    job(&t, MAP_ONLY);
    t.write("www/a.txt", records(5, "a"));
    let www = StaticServer::start(t.path("www"));
    let url = format!("http://127.0.0.1:{}/a.txt", www.port);
    let clear = serde_json::json!({
        "accessKeyId": "AKIACLEAR", "secretAccessKey": TASK_SECRET, "region": "us-east-1"
    })
    .to_string();
    let sts = serde_json::json!({"Credentials": {"AccessKeyId": "ASIA", "SecretAccessKey": TASK_SECRET, "SessionToken": TASK_TOKEN}}).to_string();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&clear);
    let cases = [
        ("clear JSON", clear.clone()),
        ("the STS output", sts),
        ("clear JSON in base64", b64),
        ("not base64", format!("{TASK_SECRET}!!")),
        (
            "base64 of something else",
            base64::engine::general_purpose::STANDARD.encode(format!("[\"{TASK_SECRET}\"]")),
        ),
    ];
    for (what, value) in cases {
        t.write("creds", &value);
        let out = t
            .cmd()
            .args([
                "plan",
                "--config",
                "c.yml",
                "--emit",
                "taskcluster",
                "--owner",
                "o@x.test",
            ])
            .args(["--credentials", "creds", &url])
            .assert()
            .code(2);
        let (o, e) = (
            &out.get_output().stdout,
            String::from_utf8_lossy(&out.get_output().stderr),
        );
        assert!(o.is_empty(), "{what}: nothing on stdout");
        assert!(
            e.contains("--credentials `creds`"),
            "{what}: names the file: {e}"
        );
        assert!(
            !e.contains(TASK_SECRET) && !e.contains(TASK_TOKEN),
            "{what}: leaked: {e}"
        );
        if what.starts_with("clear") || what.starts_with("the STS") {
            assert!(e.contains("in clear"), "{what}: says why: {e}");
        }
    }
    // From stdin too.
    let out = t
        .cmd()
        .args([
            "plan",
            "--config",
            "c.yml",
            "--emit",
            "taskcluster",
            "--owner",
            "o@x.test",
        ])
        .args(["--credentials", "-", &url])
        .write_stdin(clear)
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("in clear"));
}

#[test]
fn options_the_queue_would_refuse_are_usage_errors_naming_the_flag() {
    let t = TestContext::new();
    job(&t, CONFIG);
    t.write("in/a.txt", records(5, "a"));
    t.write("www/a.txt", records(5, "a"));
    let www = StaticServer::start(t.path("www"));
    let url = format!("http://127.0.0.1:{}/a.txt", www.port);
    let cases: &[(&[&str], &str)] = &[
        (&[], "--owner"),
        (&["--owner", "o@x.test", "--deadline", "6d"], "--deadline"),
        (&["--owner", "o@x.test", "--deadline", "soon"], "--deadline"),
        (
            &["--owner", "o@x.test", "--max-run-time", "0"],
            "--max-run-time",
        ),
        (
            &["--owner", "o@x.test", "--max-run-time", "25h"],
            "--max-run-time",
        ),
        (&["--owner", "o@x.test", "--expires", "1h"], "--expires"),
        (
            &["--owner", "o@x.test", "--worker-type", "Docker_Worker"],
            "--worker-type",
        ),
        (
            &["--owner", "o@x.test", "--provisioner-id", "a.b"],
            "--provisioner-id",
        ),
        (
            &["--owner", "o@x.test", "--root-url", "tc.example"],
            "--root-url",
        ),
        (
            &["--owner", "o@x.test", "--source", "javascript:alert(1)"],
            "--source",
        ),
        (&["--owner", "o@x.test", "--reducers", "2"], "--reducers 1"),
        (&["--owner", "o@x.test", "--image", "has space"], "--image"),
        (&["--owner", ""], "--owner"),
    ];
    for (args, named) in cases {
        let out = t
            .cmd()
            .args(["plan", "--config", "c.yml", "--emit", "taskcluster"])
            .args(*args)
            .arg(&url)
            .assert()
            .code(2);
        let e = String::from_utf8_lossy(&out.get_output().stderr);
        assert!(e.contains(named), "{args:?}: names {named}: {e}");
        assert!(out.get_output().stdout.is_empty(), "{args:?}: no graph");
    }
    // A local file: no worker can read it.
    let out = t
        .cmd()
        .args([
            "plan",
            "--config",
            "c.yml",
            "--emit",
            "taskcluster",
            "--owner",
            "o@x.test",
            "in",
        ])
        .assert()
        .code(2);
    let e = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(e.contains("local file") && e.contains("a.txt"), "{e}");
}
