//! Choosing inputs with a Filter.json: a bucket laid out as telemetry on a real S3 server
//! (moto, recording every request it serves), and the same tree on disk.

use std::collections::{BTreeMap, BTreeSet};

use crate::servers::*;
use crate::util::*;

const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
];
const BUCKET: &str = "telemetry-published-v1";
const REASONS: [&str; 2] = ["saved_session", "idle_daily"];
const APPS: [&str; 2] = ["Firefox", "Fennec"];
const CHANNELS: [&str; 3] = ["nightly", "aurora", "beta"];
const VERSIONS: [&str; 3] = ["28.0", "29.0", "30.0a1"];
/// (build id, submission date) of the files in every leaf directory.
const FILES: [(&str, &str); 2] = [
    ("20140101030201", "20140102"),
    ("20140104030201", "20140105"),
];

/// One telemetry key with its dimensions.
struct Key {
    key: String,
    dims: [&'static str; 6],
}

/// Every key of the store, as telemetry laid them out.
fn telemetry_keys() -> Vec<Key> {
    let mut out = Vec::new();
    for r in REASONS {
        for a in APPS {
            for c in CHANNELS {
                for v in VERSIONS {
                    for (i, (b, d)) in FILES.iter().enumerate() {
                        out.push(Key {
                            key: format!("{r}/{a}/{c}/{v}/{b}.{d}.v2.log.{i:032x}.lzma"),
                            dims: [r, a, c, v, b, d],
                        });
                    }
                }
            }
        }
    }
    out
}

/// Files that do not fit the layout: a file too shallow, one too deep, a folder marker,
/// one without the file name's dimensions.
const STRAYS: [&str; 4] = [
    "saved_session/Firefox/nightly/README",
    "saved_session/Firefox/nightly/28.0/extra/20140101.20140102.v2.log.x.lzma",
    "saved_session/Firefox/nightly/28.0/",
    "saved_session/Firefox/nightly/28.0/nodots",
];

/// The content of a key: telemetry records, more of them for some keys, so sizes differ.
fn content(i: usize, key: &str) -> Vec<u8> {
    records(1 + i % 7, key).into_bytes()
}

/// The store written on disk under `tree/` and uploaded to the bucket.
fn telemetry_store(t: &TestContext, s3: Option<&S3Server>) {
    let client = s3.map(|s| s3_client(&s.endpoint()));
    if let Some((rt, c)) = &client {
        create_bucket(rt, c, BUCKET);
    }
    let keys = telemetry_keys();
    let all = keys
        .iter()
        .map(|k| k.key.as_str())
        .chain(STRAYS.iter().copied());
    for (i, key) in all.enumerate() {
        let body = if key.ends_with('/') {
            Vec::new()
        } else {
            content(i, key)
        };
        if !key.ends_with('/') {
            t.write(&format!("tree/{key}"), &body);
        }
        if let Some((rt, c)) = &client {
            put(rt, c, BUCKET, key, body);
        }
    }
}

fn job(t: &TestContext) {
    t.write("custom-mappers/os.py", PY_OS_MAPPER);
    t.write(
        "custom-reducers/reducer.py",
        "def reduce(key, values):\n    return \"%s %d\" % (key, sum(int(v) for v in values))\n",
    );
    t.write("analysis-tools.yml", "language: python\nscript: os.py\n");
}

/// A Filter.json with the six telemetry dimensions' allowed values.
fn filter(t: &TestContext, name: &str, allowed: [&str; 6]) -> String {
    let names = [
        "reason",
        "appName",
        "appUpdateChannel",
        "appVersion",
        "appBuildID",
        "submission_date",
    ];
    let dims: Vec<String> = names
        .iter()
        .zip(allowed)
        .map(|(n, a)| format!(r#"{{"field_name": "{n}", "allowed_values": {a}}}"#))
        .collect();
    t.write(
        name,
        format!(r#"{{"version": 1, "dimensions": [{}]}}"#, dims.join(",\n")),
    );
    name.to_string()
}

/// `polymr plan --format json` with the S3 server's environment.
fn plan_json(t: &TestContext, s3: &S3Server, args: &[&str]) -> serde_json::Value {
    let out = t
        .cmd()
        .envs(AWS_ENV)
        .args(["plan", "--format", "json", "--s3-endpoint", &s3.endpoint()])
        .args(args)
        .output()
        .expect("run polymr");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

/// The keys a plan reads, relative to `root` (a URL or a path prefix).
fn planned_keys(plan: &serde_json::Value, root: &str) -> BTreeSet<String> {
    plan["map_tasks"]
        .as_array()
        .expect("map_tasks")
        .iter()
        .flat_map(|t| t["inputs"].as_array().expect("inputs").iter())
        .map(|i| {
            let name = i["name"].as_str().expect("name");
            name.strip_prefix(root)
                .unwrap_or_else(|| panic!("{name} is not under {root}"))
                .to_string()
        })
        .collect()
}

fn expected(pred: impl Fn(&[&str; 6]) -> bool) -> BTreeSet<String> {
    telemetry_keys()
        .into_iter()
        .filter(|k| pred(&k.dims))
        .map(|k| k.key)
        .collect()
}

#[test]
fn the_filter_chooses_exactly_the_keys_it_allows_on_s3() {
    let t = TestContext::new();
    job(&t);
    let s3 = S3Server::start();
    telemetry_store(&t, Some(&s3));
    let root = format!("s3://{BUCKET}/");

    let all = filter(&t, "all.json", ["\"*\""; 6]);
    let keys = planned_keys(&plan_json(&t, &s3, &["--filter", &all, &root]), &root);
    assert_eq!(keys, expected(|_| true));
    assert_eq!(keys.len(), 72);

    // Lists are sanitized as telemetry wrote path parts: saved-session is saved_session.
    let lists = filter(
        &t,
        "lists.json",
        [
            r#"["saved-session"]"#,
            "\"*\"",
            r#"["nightly", "aurora", "esr"]"#,
            "\"*\"",
            "\"*\"",
            "\"*\"",
        ],
    );
    let keys = planned_keys(&plan_json(&t, &s3, &["--filter", &lists, &root]), &root);
    assert_eq!(
        keys,
        expected(|d| d[0] == "saved_session" && ["nightly", "aurora"].contains(&d[2]))
    );
    assert_eq!(keys.len(), 24);

    // Ranges compare as strings, inclusive; on a directory level and on the file name.
    let ranges = filter(
        &t,
        "ranges.json",
        [
            "\"*\"",
            "\"Firefox\"",
            "\"*\"",
            r#"{"min": "29.0", "max": "30.0a1"}"#,
            r#"{"max": "20140101999999"}"#,
            r#"{"min": "20140102"}"#,
        ],
    );
    let keys = planned_keys(&plan_json(&t, &s3, &["--filter", &ranges, &root]), &root);
    assert_eq!(
        keys,
        expected(|d| d[1] == "Firefox"
            && ["29.0", "30.0a1"].contains(&d[3])
            && d[4] <= "20140101999999"
            && d[5] >= "20140102")
    );
    assert_eq!(keys.len(), 12);

    // An exact string is not sanitized (telemetry compares it as it is).
    let exact = filter(
        &t,
        "exact.json",
        [
            "\"saved-session\"",
            "\"*\"",
            "\"*\"",
            "\"*\"",
            "\"*\"",
            "\"*\"",
        ],
    );
    let out = t
        .cmd()
        .envs(AWS_ENV)
        .args([
            "plan",
            "--s3-endpoint",
            &s3.endpoint(),
            "--filter",
            &exact,
            &root,
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));

    // A prefix as SOURCE, and a bare prefix in --bucket: the layout starts there.
    let keys = planned_keys(
        &plan_json(&t, &s3, &["--filter", &all, "--bucket", BUCKET]),
        &root,
    );
    assert_eq!(keys.len(), 72);
}

#[test]
fn a_filter_that_matches_nothing_starts_nothing_and_exits_4() {
    let t = TestContext::new();
    job(&t);
    let s3 = S3Server::start();
    telemetry_store(&t, Some(&s3));
    let none = filter(
        &t,
        "none.json",
        ["\"*\"", "\"*\"", r#"["esr"]"#, "\"*\"", "\"*\"", "\"*\""],
    );
    for cmd in ["plan", "run"] {
        let out = t
            .cmd()
            .envs(AWS_ENV)
            .args([cmd, "--s3-endpoint", &s3.endpoint(), "--filter", &none])
            .arg(format!("s3://{BUCKET}/"))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{cmd}: {stderr}");
        assert!(
            stderr.contains("none.json") && stderr.contains("matches no file"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "{cmd} printed a plan");
    }
    // No job ran: no result, no work directory, nothing published.
    assert!(!t.path("result.txt").exists());
    assert!(!t
        .listing("")
        .iter()
        .any(|n| n.starts_with("result") || n.contains("work")));
}

#[test]
fn a_malformed_filter_exits_2_naming_the_dimension() {
    let t = TestContext::new();
    job(&t);
    t.write("tree/x", "x");
    let cases = [
        (
            r#"{"version": 1, "dimensions": [{"field_name": "reason", "allowed_values": "*"},
               {"field_name": "appName", "allowed_values": {"min": "b", "max": "a"}}]}"#,
            "dimensions[1] (`appName`)",
        ),
        (
            r#"{"version": 1, "dimensions": [{"field_name": "reason", "allowed_values": null}]}"#,
            "dimensions[0] (`reason`)",
        ),
        (
            r#"{"version": 1, "dimensions": [{"field_name": "reason", "allowed_value": "*"}]}"#,
            "unknown key `allowed_value`",
        ),
        (r#"{"version": 1, "dimensions": "#, "not JSON"),
    ];
    for (text, want) in cases {
        t.write("bad.json", text);
        let out = t
            .cmd()
            .args(["plan", "--filter", "bad.json", "tree"])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("bad.json"),
            "{text}: {stderr}"
        );
    }
    // A filter longer than the layout, and a missing one.
    let long = format!(
        r#"{{"dimensions": [{}]}}"#,
        [r#"{"field_name": "d", "allowed_values": "*"}"#; 7].join(",")
    );
    t.write("long.json", long);
    let out = t
        .cmd()
        .args(["plan", "--filter", "long.json", "tree"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dimensions[6]"));
    let out = t
        .cmd()
        .args(["plan", "--filter", "missing.json", "tree"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// The list requests moto served after line `from` of its log: (prefix, delimited).
fn list_requests(log: &std::path::Path, from: usize) -> Vec<(String, bool)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let url = v["url"].as_str()?;
            let query = url.split_once('?')?.1;
            let params: BTreeMap<String, String> = query
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v)))
                .collect();
            (v["method"] == "GET" && params.get("list-type").map(String::as_str) == Some("2")).then(
                || {
                    (
                        params.get("prefix").cloned().unwrap_or_default(),
                        params.contains_key("delimiter"),
                    )
                },
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn log_lines(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn listing_prunes_a_one_channel_filter_never_lists_the_others() {
    let t = TestContext::new();
    job(&t);
    let log = t.path("moto-requests.jsonl");
    let s3 = S3Server::start_recording(&log);
    telemetry_store(&t, Some(&s3));
    let root = format!("s3://{BUCKET}/");

    // The channel by a range (so the level must be listed) and by a name (not listed).
    for (name, channel) in [
        ("range.json", r#"{"min": "beta", "max": "beta"}"#),
        ("name.json", r#"["beta"]"#),
    ] {
        let f = filter(
            &t,
            name,
            ["\"*\"", "\"*\"", channel, "\"*\"", "\"*\"", "\"*\""],
        );
        let before = log_lines(&log);
        let keys = planned_keys(&plan_json(&t, &s3, &["--filter", &f, &root]), &root);
        assert_eq!(keys, expected(|d| d[2] == "beta"), "{name}");
        let lists = list_requests(&log, before);
        assert!(!lists.is_empty(), "{name}: the recorder saw no listing");
        for (prefix, delimited) in &lists {
            let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
            // Below the channel level, only beta is ever listed.
            if parts.len() >= 3 {
                assert_eq!(parts[2], "beta", "{name}: listed {prefix:?}");
            }
            // Nothing above the channel level is listed whole (without a delimiter).
            assert!(
                *delimited || parts.len() >= 3,
                "{name}: listed {prefix:?} without a delimiter: {lists:?}"
            );
        }
        // The reasons, the apps of each, the channels of each reason/app (for a range
        // only: a named channel is not listed), then each reason/app/beta/ flat.
        let want = if name == "range.json" {
            1 + 2 + 4 + 4
        } else {
            1 + 2 + 4
        };
        assert_eq!(lists.len(), want, "{name}: {lists:?}");
    }

    // Everything: one flat listing of the bucket, as a plain listing would do.
    let all = filter(&t, "all.json", ["\"*\""; 6]);
    let before = log_lines(&log);
    plan_json(&t, &s3, &["--filter", &all, &root]);
    assert_eq!(list_requests(&log, before), vec![(String::new(), false)]);

    // Names at every level: no level is listed but the leaves.
    let narrow = filter(
        &t,
        "narrow.json",
        [
            "\"idle_daily\"",
            r#"["Fennec"]"#,
            r#"["aurora"]"#,
            r#"["29.0"]"#,
            "\"*\"",
            "\"*\"",
        ],
    );
    let before = log_lines(&log);
    let keys = planned_keys(&plan_json(&t, &s3, &["--filter", &narrow, &root]), &root);
    assert_eq!(keys.len(), 2);
    assert_eq!(
        list_requests(&log, before),
        vec![("idle_daily/Fennec/aurora/29.0/".to_string(), true)]
    );
}

/// A map task as (id, bytes, [(key below the root, size)]).
type TaskShape = (String, u64, Vec<(String, u64)>);

/// A plan with its inputs named relative to `root`, so plans of two stores compare.
fn normalized(plan: &serde_json::Value, root: &str) -> Vec<TaskShape> {
    plan["map_tasks"]
        .as_array()
        .expect("map_tasks")
        .iter()
        .map(|t| {
            let inputs = t["inputs"]
                .as_array()
                .expect("inputs")
                .iter()
                .map(|i| {
                    let name = i["name"].as_str().expect("name");
                    (
                        name.strip_prefix(root).expect("under root").to_string(),
                        i["size"].as_u64().expect("size"),
                    )
                })
                .collect();
            (
                t["id"].as_str().expect("id").to_string(),
                t["bytes"].as_u64().expect("bytes"),
                inputs,
            )
        })
        .collect()
}

#[test]
fn the_same_filter_over_a_directory_and_over_s3_gives_the_same_plan() {
    let t = TestContext::new();
    job(&t);
    let s3 = S3Server::start();
    telemetry_store(&t, Some(&s3));
    let f = filter(
        &t,
        "f.json",
        [
            r#"["saved-session", "idle-daily"]"#,
            "\"*\"",
            r#"{"min": "aurora", "max": "beta"}"#,
            "\"*\"",
            "\"*\"",
            r#"{"max": "20140104"}"#,
        ],
    );
    let shape = ["--mappers", "3", "--max-files-per-task", "5"];
    let remote = plan_json(
        &t,
        &s3,
        &[
            &["--filter", f.as_str(), "s3://telemetry-published-v1/"][..],
            &shape[..],
        ]
        .concat(),
    );
    let out = t
        .cmd()
        .args(["plan", "--format", "json", "--filter", &f, "tree"])
        .args(shape)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let (l, r) = (
        normalized(&local, "tree/"),
        normalized(&remote, "s3://telemetry-published-v1/"),
    );
    assert_eq!(l, r);
    let files: usize = l.iter().map(|t| t.2.len()).sum();
    assert_eq!(files, 24);
    // At most five files per task, and so at least five tasks.
    assert!(l.len() >= 5 && l.iter().all(|t| t.2.len() <= 5), "{l:?}");
    assert_eq!(local["total_bytes"], remote["total_bytes"]);
}

#[test]
fn dry_run_prints_totals_the_dimension_table_and_the_task_spread() {
    let t = TestContext::new();
    job(&t);
    telemetry_store(&t, None);
    let f = filter(
        &t,
        "f.json",
        [
            "\"*\"",
            "\"Firefox\"",
            r#"["nightly"]"#,
            "\"*\"",
            "\"*\"",
            "\"*\"",
        ],
    );
    let out = t
        .cmd()
        .args([
            "plan",
            "--dry-run",
            "--mappers",
            "2",
            "--filter",
            &f,
            "tree",
        ])
        .args(["--max-files-per-task", "4"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chosen: Vec<(String, u64)> = telemetry_keys()
        .iter()
        .enumerate()
        .filter(|(_, k)| k.dims[1] == "Firefox" && k.dims[2] == "nightly")
        .map(|(i, k)| (k.key.clone(), content(i, &k.key).len() as u64))
        .collect();
    let bytes: u64 = chosen.iter().map(|c| c.1).sum();
    assert_eq!(chosen.len(), 12);
    assert!(
        text.starts_with("12 files, ") && text.contains(&format!("({bytes} bytes)")),
        "{text}"
    );
    let row = |dim: &str, value: &str, files: usize| {
        text.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() >= 3 && cols[0] == dim && cols[1] == value && cols[2] == files.to_string()
        })
    };
    assert!(row("reason", "saved_session", 6), "{text}");
    assert!(row("reason", "idle_daily", 6), "{text}");
    assert!(row("appName", "Firefox", 12), "{text}");
    assert!(
        !row("appName", "Fennec", 0) && !text.contains("Fennec"),
        "{text}"
    );
    assert!(row("appVersion", "30.0a1", 4), "{text}");
    assert!(row("submission_date", "20140105", 6), "{text}");
    // 12 files, at most 4 per task: 3 tasks.
    assert!(text.contains("3 map tasks"), "{text}");
    assert!(
        text.contains("files per task: min 4, median 4, max 4"),
        "{text}"
    );
}

#[test]
fn run_and_map_with_a_filter_read_only_the_chosen_files() {
    let t = TestContext::new();
    job(&t);
    let s3 = S3Server::start();
    telemetry_store(&t, Some(&s3));
    let f = filter(
        &t,
        "f.json",
        [
            r#"["saved-session"]"#,
            "\"*\"",
            "\"aurora\"",
            "\"*\"",
            "\"*\"",
            "\"*\"",
        ],
    );
    let chosen: Vec<usize> = telemetry_keys()
        .iter()
        .enumerate()
        .filter(|(_, k)| k.dims[0] == "saved_session" && k.dims[2] == "aurora")
        .map(|(i, _)| i)
        .collect();
    let records: usize = chosen.iter().map(|i| 1 + i % 7).sum();

    t.cmd()
        .envs(AWS_ENV)
        .args(["run", "--s3-endpoint", &s3.endpoint(), "--filter", &f])
        .args(["-o", "run.txt", "--bucket", BUCKET])
        .assert()
        .success();
    let total: u64 = t
        .read("run.txt")
        .lines()
        .map(|l| {
            l.split(' ')
                .nth(1)
                .expect("count")
                .parse::<u64>()
                .expect("n")
        })
        .sum();
    assert_eq!(total as usize, records);

    // `map --filter`, the container contract, over the same tree on disk.
    t.cmd()
        .args(["map", "--filter", &f, "-o", "map.txt", "tree"])
        .assert()
        .success();
    assert_eq!(t.read("map.txt").lines().count(), records);
    let report = t.report("map.txt.report.json");
    assert_eq!(
        report["inputs"].as_array().expect("inputs").len(),
        chosen.len()
    );
}

#[test]
fn a_configured_key_layout_moves_the_dimensions() {
    let t = TestContext::new();
    job(&t);
    // date/channel/<build>.log: two directory levels, one file-name part.
    t.write(
        "analysis-tools.yml",
        "language: python\nscript: os.py\nkey_layout:\n  directories: [submission_date, appUpdateChannel]\n  file_name: [appBuildID]\n",
    );
    for (d, c, b) in [
        ("20140101", "nightly", "1"),
        ("20140101", "beta", "2"),
        ("20140102", "nightly", "3"),
        ("20140103", "nightly", "4"),
    ] {
        t.write(&format!("store/{d}/{c}/{b}.log"), records(2, b));
    }
    t.write(
        "f.json",
        r#"{"version": 1, "dimensions": [
            {"field_name": "submission_date", "allowed_values": {"min": "20140102"}},
            {"field_name": "appUpdateChannel", "allowed_values": ["nightly"]}]}"#,
    );
    let out = t
        .cmd()
        .args(["plan", "--format", "json", "--filter", "f.json", "store"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        planned_keys(&plan, "store/"),
        ["20140102/nightly/3.log", "20140103/nightly/4.log"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}
