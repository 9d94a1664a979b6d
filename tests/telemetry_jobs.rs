//! Jobs written for mozilla/telemetry-server's `mapreduce/job.py`, run unchanged by `polymr run`
//! with 1 and 3 reducers, and by a small reference runner with job.py's semantics
//! (`tests/fixtures/telemetry_jobs/reference.py`): the outputs must hold the same lines. The
//! data is imperfect on purpose: truncated JSON, a line without a TAB, missing fields,
//! non-ASCII text, a lone surrogate escape and CRLF endings.

use crate::util::TestContext;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/telemetry_jobs");
const OSES: &[&str] = &["WINNT", "Linux", "Darwin"];
const LOCALES: &[&str] = &["en-US", "fr", "ja-日本", "pt-BR-ção"];

/// Five input files in the telemetry layout; returns their paths under `in/`.
fn write_inputs(t: &TestContext) -> Vec<String> {
    let mut rels = Vec::new();
    for f in 0..5 {
        let channel = ["nightly", "aurora"][f % 2];
        let rel =
            format!("saved_session/Firefox/{channel}/33.0a1/2014060{f}.2014061{f}.v2.log.p{f}");
        let mut text = String::new();
        for i in 0..120 {
            // Sessions live in one file each; their records interleave; seq 0..39 (bytewise
            // "10" < "9", so only a stable shuffle keeps them in written order).
            let session = format!("s{f}-{}", i % 3);
            let seq = i / 3;
            let os = OSES[(i * 7 + f) % OSES.len()];
            let locale = LOCALES[(i + f) % LOCALES.len()];
            let info = if i % 17 == 5 {
                String::new() // a missing "info"
            } else {
                format!(r#""info":{{"OS":"{os}","locale":"{locale}"}},"#)
            };
            let seq_field = if i % 29 == 7 {
                String::new()
            } else {
                format!(r#""seq":{seq},"#)
            };
            text.push_str(&format!(
                "u{f}-{i}\t{{{info}{seq_field}\"session\":\"{session}\",\"n\":{i},\"histograms\":{{\"A\":{i},\"B\":[1,2]}}}}\n"
            ));
            match i {
                11 => text.push_str(&format!("u{f}-t\t{{\"info\":{{\"OS\":\"Lin\n")), // truncated
                12 => text.push_str("no tab on this line\n"),
                13 => text.push_str(&format!(
                    "u{f}-s\t{{\"info\":{{\"OS\":\"\\ud800x\"}},\"seq\":99,\"session\":\"sur{f}\"}}\r\n"
                )),
                _ => {}
            }
        }
        t.write(&format!("in/{rel}"), text);
        rels.push(rel);
    }
    rels
}

fn python() -> String {
    std::env::var("POLYMR_TEST_PYTHON")
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| "python3".into())
}

fn reference(t: &TestContext, job: &str, reducers: u32, rels: &[String]) -> Vec<String> {
    let out = t.path(&format!("ref-{job}-{reducers}.txt"));
    let status = std::process::Command::new("python3")
        .arg(format!("{FIXTURES}/reference.py"))
        .arg(t.path(job))
        .arg(reducers.to_string())
        .arg(&out)
        .arg(t.path("in"))
        .args(rels)
        .status()
        .expect("python3 runs the reference runner");
    assert!(status.success(), "reference runner failed on {job}");
    sorted_lines(&std::fs::read(&out).expect("reference output"))
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut v: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    v.sort();
    v
}

/// Runs `job` with `polymr run` (2 mappers) and the reference, for 1 and 3 reducers.
fn same_as_reference(job: &str, map_only: bool) -> Vec<String> {
    let t = TestContext::new();
    std::fs::copy(format!("{FIXTURES}/{job}"), t.path(job)).expect("copy the job");
    let rels = write_inputs(&t);
    let reducer = if map_only {
        String::new()
    } else {
        format!("reducer: {{language: python, script: {job}}}\n")
    };
    t.write(
        "c.yml",
        format!("mapper: {{language: python, script: {job}}}\n{reducer}"),
    );
    let mut last = Vec::new();
    for reducers in [1u32, 3] {
        let out = format!("out-{reducers}.txt");
        t.cmd()
            .env("POLYMR_PYTHON", python())
            .args(["run", "--config", "c.yml", "--mappers", "2"])
            .args(["--reducers", &reducers.to_string(), "-o", &out, "in"])
            .assert()
            .success();
        let got = sorted_lines(&std::fs::read(t.path(&out)).expect("polymr output"));
        let want = reference(&t, job, reducers, &rels);
        assert_eq!(got, want, "{job} with {reducers} reducer(s)");
        let report = t.report(&format!("{out}.report.json"));
        // Per file: the truncated record, the line without a TAB (and for sessions.py the
        // records without seq) are invalid records, reported, not fatal.
        assert!(
            report["totals"]["invalid_records"].as_u64().unwrap_or(0) >= 10,
            "{report}"
        );
        last = got;
    }
    last
}

#[test]
fn distribution_job_with_combine_csv_and_separators_matches_job_py() {
    let lines = same_as_reference("distribution.py", false);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("nightly,Linux,") && l.ends_with("\r\n")));
    assert!(lines.iter().any(|l| l.starts_with("locale:ja-日本|[")));
    assert!(
        lines.iter().any(|l| l == "locale:fr has 141 pings\n"),
        "{lines:?}"
    );
}

#[test]
fn sessions_rebuilt_from_values_keep_written_order() {
    let lines = same_as_reference("sessions.py", false);
    let s0 = lines
        .iter()
        .find(|l| l.starts_with("s0-0\t"))
        .expect("session s0-0");
    // 40 records, one without seq (i = 36 → seq 12), in written order; values are tuples.
    let seqs: Vec<String> = (0..40)
        .filter(|s| *s != 12)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        s0,
        &format!("s0-0\t(39, [{}], '20140610', 'tuple')\n", seqs.join(", "))
    );
}

#[test]
fn map_only_job_writes_what_job_py_wrote() {
    let lines = same_as_reference("maponly.py", true);
    assert!(
        lines.contains(&"u1-4 => ('Firefox', 'Darwin', 6.0)\n".to_string()),
        "{:?}",
        &lines[..3]
    );
}
