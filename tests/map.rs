//! `polymr map` end to end: every mapper language and API, every codec, inputs by file,
//! directory and glob, the report and the counters.

use crate::util::*;

#[test]
fn python_original_api_over_xz_and_gzip() {
    let t = TestContext::new();
    t.write("custom-mappers/os.py", PY_OS_MAPPER);
    t.write(
        "analysis-tools.yml",
        "language: python\nscript: os.py\narguments: []\n",
    );
    let a = records(300, "a");
    let b = records(200, "b");
    t.compress("in/a.xz", a.as_bytes(), "xz");
    t.compress("in/b.gz", b.as_bytes(), "gzip");
    t.cmd()
        .args(["map", "in/a.xz", "in/b.gz"])
        .assert()
        .success();

    let mut want = expected_counts(300);
    for (k, v) in expected_counts(200) {
        *want.entry(k).or_insert(0) += v;
    }
    assert_eq!(count_keys(&t.read("result.txt"), ' '), want);
    let r = t.report("result.txt.report.json");
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["totals"]["records"], 500);
    assert_eq!(r["totals"]["output_records"], 500);
    assert_eq!(r["inputs"][0]["codec"], "xz");
    assert_eq!(r["inputs"][1]["codec"], "gzip");
    assert_eq!(r["inputs"][0]["bytes"], a.len() as u64);
    assert_eq!(r["child"]["exit"]["code"], 0);
}

#[test]
fn python_mapper_learns_the_file_of_each_record() {
    let t = TestContext::new();
    t.write(
        "m.py",
        "def mapper(uuid, file, js):\n    return file.rsplit('/', 1)[-1] + ' ' + uuid + '\\n'\n",
    );
    t.write("c.yml", "language: python\nscript: m.py\n");
    t.compress("in/one.xz", records(3, "1").as_bytes(), "xz");
    t.compress("in/two.gz", records(2, "2").as_bytes(), "gzip");
    t.cmd()
        .args(["map", "--config", "c.yml", "in"])
        .assert()
        .success();
    let out = t.read("result.txt");
    let files: Vec<&str> = out
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        files,
        vec!["one.xz", "one.xz", "one.xz", "two.gz", "two.gz"]
    );
}

#[test]
fn python_telemetry_api_gets_dims_and_raw_value() {
    let t = TestContext::new();
    t.write(
        "m.py",
        "import json\ndef map(key, dims, value, context):\n    assert isinstance(value, str)\n    context.write(json.loads(value)['info']['OS'], '/'.join(dims))\n",
    );
    t.write("c.yml", "mapper: {language: python, script: m.py}\n");
    let rel = "in/saved_session/Firefox/nightly/33.0a1/20140601.20140603.v2.log.abc.xz";
    t.compress(rel, records(5, "x").as_bytes(), "xz");
    t.cmd()
        .args(["map", "--config", "c.yml", rel])
        .assert()
        .success();
    let out = t.read("result.txt");
    assert_eq!(out.lines().count(), 5);
    for line in out.lines() {
        let (_, value) = line.split_once('\t').expect("key TAB value");
        assert_eq!(
            value,
            // A map-only job: written as job.py wrote it, str(value).
            "saved_session/Firefox/nightly/33.0a1/20140601/20140603"
        );
    }
}

#[test]
fn javascript_original_and_telemetry_apis() {
    let t = TestContext::new();
    t.write(
        "legacy.js",
        "module.exports = { mapper: function (uuid, file, js) { return js.info.OS + ' 1\\n'; } };\n",
    );
    t.write(
        "modern.js",
        "exports.map = function (key, dims, value, context) { context.write(JSON.parse(value).info.OS, 1); };\n",
    );
    t.write("legacy.yml", "language: javascript\nscript: legacy.js\n");
    t.write(
        "modern.yml",
        "mapper: {language: javascript, script: modern.js}\n",
    );
    t.compress("in/a.xz", records(100, "j").as_bytes(), "xz");
    t.cmd()
        .args(["map", "--config", "legacy.yml", "-o", "l.txt", "in/a.xz"])
        .assert()
        .success();
    t.cmd()
        .args(["map", "--config", "modern.yml", "-o", "m.txt", "in/a.xz"])
        .assert()
        .success();
    assert_eq!(count_keys(&t.read("l.txt"), ' '), expected_counts(100));
    assert_eq!(count_keys(&t.read("m.txt"), '\t'), expected_counts(100));
    assert!(t.read("m.txt").lines().all(|l| l.ends_with("\t1")));
}

#[test]
fn binary_mapper_reads_every_codec() {
    let t = TestContext::new();
    t.write_exec(
        "os.sh",
        "#!/bin/sh\nexec sed -n 's/.*\"OS\":\"\\([^\"]*\\)\".*/\\1\\t1/p'\n",
    );
    t.write("c.yml", "mapper: {language: binary, script: os.sh}\n");
    let data = records(50, "c");
    for codec in ["xz", "gzip", "zstd", "bzip2", "none"] {
        t.compress(&format!("in/{codec}.data"), data.as_bytes(), codec);
    }
    t.cmd()
        .args(["map", "--config", "c.yml", "in/*.data"])
        .assert()
        .success();
    let mut want = expected_counts(50);
    want.values_mut().for_each(|v| *v *= 5);
    assert_eq!(count_keys(&t.read("result.txt"), '\t'), want);
    let r = t.report("result.txt.report.json");
    let codecs: Vec<&str> = r["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| i["codec"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(codecs, vec!["bzip2", "gzip", "plain", "xz", "zstd"]);
}

#[test]
fn one_mapper_process_for_all_inputs() {
    let t = TestContext::new();
    // Prints its pid once, then passes records through.
    t.write_exec("m.sh", "#!/bin/sh\necho \"pid $$\"\nexec cat\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: m.sh}\nrecord_format: lines\n",
    );
    for i in 0..4 {
        t.compress(
            &format!("in/{i}.gz"),
            format!("rec{i}\n").as_bytes(),
            "gzip",
        );
    }
    t.cmd()
        .args(["map", "--config", "c.yml", "in"])
        .assert()
        .success();
    let out = t.read("result.txt");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("pid ")).count(),
        1,
        "{out}"
    );
    assert_eq!(out.lines().filter(|l| l.starts_with("rec")).count(), 4);
}

#[test]
fn last_line_without_newline_and_crlf_are_records() {
    let t = TestContext::new();
    t.write_exec("m.sh", "#!/bin/sh\nexec cat\n");
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.compress("in/a.xz", b"one\ntwo", "xz");
    t.compress("in/b.xz", b"three\n", "xz");
    t.cmd()
        .args(["map", "--config", "c.yml", "in"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "one\ntwo\nthree\n");
    assert_eq!(t.report("result.txt.report.json")["totals"]["records"], 3);
}

#[test]
fn records_beginning_with_nul_reach_helpers_intact() {
    let t = TestContext::new();
    t.write("m.py", "def map(key, dims, value, context):\n    context.write('len', [len(value), value.startswith('\\x00')])\n");
    t.write(
        "c.yml",
        "mapper: {language: python, script: m.py}\nrecord_format: lines\n",
    );
    t.write("in/a.txt", b"\x00F\tfake control\nplain\n");
    t.cmd()
        .args(["map", "--config", "c.yml", "in/a.txt"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "len\t[15, True]\nlen\t[5, False]\n");
}

#[test]
fn feed_paths_gives_binary_ready_local_files() {
    let t = TestContext::new();
    t.write_exec("m.sh", "#!/bin/sh\nwhile read -r p; do printf '%s\\t%s\\n' \"$(basename \"$p\")\" \"$(wc -l < \"$p\")\"; done\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: m.sh}\nfeed: paths\n",
    );
    t.compress("in/a.log.xz", records(7, "p").as_bytes(), "xz");
    t.write("in/b.log", records(3, "p"));
    t.cmd()
        .args(["map", "--config", "c.yml", "in"])
        .assert()
        .success();
    let out = t.read("result.txt");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, vec!["00000-a.log\t7", "b.log\t3"]);
}

#[test]
fn invalid_json_is_counted_with_file_and_line() {
    let t = TestContext::new();
    t.write("m.py", PY_OS_MAPPER);
    t.write("c.yml", "language: python\nscript: m.py\n");
    let mut data = records(10, "i");
    data.push_str("bad-uuid\t{not json\n");
    data.push_str(&records(2, "j"));
    data.push_str("no tab at all\n");
    t.compress("in/a.gz", records(4, "ok").as_bytes(), "gzip");
    t.compress("in/b.gz", data.as_bytes(), "gzip");
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "in"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("2 invalid records") && stderr.contains("b.gz"),
        "{stderr}"
    );
    let r = t.report("result.txt.report.json");
    assert_eq!(r["inputs"][0]["invalid_records"], 0);
    assert_eq!(r["inputs"][1]["invalid_records"], 2);
    assert_eq!(r["inputs"][1]["invalid_samples"][0]["line"], 11);
    assert_eq!(r["inputs"][1]["invalid_samples"][1]["line"], 14);
    assert_eq!(r["totals"]["invalid_records"], 2);
    assert_eq!(t.read("result.txt").lines().count(), 16);
}

#[test]
fn counters_and_status_from_stderr_are_summed() {
    let t = TestContext::new();
    t.write_exec(
        "m.sh",
        "#!/bin/sh\nwhile read -r l; do echo 'reporter:counter:app,lines,1' >&2; done\necho 'reporter:counter:app,bytes,-4' >&2\necho 'reporter:counter:broken' >&2\necho 'reporter:status:all done' >&2\necho 'a plain log line' >&2\n",
    );
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.write("in/a", "1\n2\n3\n");
    t.cmd()
        .args(["map", "--config", "c.yml", "in/a"])
        .assert()
        .success();
    let r = t.report("result.txt.report.json");
    assert_eq!(r["counters"]["app"]["lines"], 3);
    assert_eq!(r["counters"]["app"]["bytes"], -4);
    assert_eq!(r["status_message"], "all done");
}

#[test]
fn children_get_hadoop_env_and_no_secrets() {
    let t = TestContext::new();
    t.write_exec("m.sh", "#!/bin/sh\ncat > /dev/null\nenv\n");
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.write("in/a", "x\n");
    // A real CREDENTIALS value, for a real key: it is decrypted, and still hidden from the mapper.
    t.cmd()
        .args(["credentials", "keygen", "--out-dir", "keys"])
        .assert()
        .success();
    t.write("creds.json", r#"{"accessKeyId":"AKIATESTKEY","secretAccessKey":"hunter2-secret","sessionToken":"tok-en","region":"us-east-1"}"#);
    let out = t
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
    let credentials = String::from_utf8_lossy(&out.get_output().stdout)
        .trim()
        .to_string();
    let run = t
        .cmd()
        .env("CREDENTIALS", &credentials)
        .env("POLYMR_PRIVATE_KEY", t.path("keys/key.pem"))
        .env("AWS_SECRET_ACCESS_KEY", "hunter2")
        .env("PYTHONUNBUFFERED", "1")
        .args(["-vv", "map", "--config", "c.yml", "in/a"])
        .assert()
        .success();
    let env = t.read("result.txt");
    assert!(
        env.lines().any(|l| l.starts_with("mapreduce_job_id=job_")),
        "{env}"
    );
    assert!(env
        .lines()
        .any(|l| l.starts_with("mapreduce_task_attempt_id=attempt_")));
    assert!(env
        .lines()
        .any(|l| l.starts_with("mapreduce_map_input_file=in/a")));
    for secret in [
        "CREDENTIALS",
        "hunter2",
        "AWS_",
        "POLYMR_PRIVATE_KEY",
        "tok-en",
        &credentials[..40],
    ] {
        assert!(!env.contains(secret), "the mapper saw {secret}: {env}");
    }
    assert!(!env.contains("PYTHONUNBUFFERED"));
    // Nor do the logs or the report hold the decrypted secrets.
    let logs = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    let report = t.read("result.txt.report.json");
    for secret in ["hunter2-secret", "tok-en"] {
        assert!(
            !logs.contains(secret) && !report.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn user_arguments_reach_the_mapper() {
    let t = TestContext::new();
    t.write("m.py", "import sys\nPREFIX = sys.argv[1]\ndef mapper(uuid, file, js):\n    return PREFIX + ' 1\\n'\n");
    t.write(
        "c.yml",
        "language: python\nscript: m.py\narguments: [hello]\n",
    );
    t.write("in/a", records(2, "a"));
    t.cmd()
        .args(["map", "--config", "c.yml", "in/a"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "hello 1\nhello 1\n");
}

#[test]
fn json_log_format_writes_json_lines() {
    let t = TestContext::new();
    t.write_exec(
        "m.sh",
        "#!/bin/sh\ncat >/dev/null\necho 'user log line' >&2\n",
    );
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.write("in/a", "x\n");
    let out = t
        .cmd()
        .args([
            "-v",
            "--log-format",
            "json",
            "map",
            "--config",
            "c.yml",
            "in/a",
        ])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let json_lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        json_lines
            .iter()
            .any(|v| v["fields"]["message"] == "user log line"),
        "{stderr}"
    );
}

#[test]
fn a_long_line_larger_than_a_chunk_stays_one_record() {
    let t = TestContext::new();
    t.write(
        "m.py",
        "def map(key, dims, value, context):\n    context.write(len(value), 1)\n",
    );
    t.write(
        "c.yml",
        "mapper: {language: python, script: m.py}\nrecord_format: lines\n",
    );
    let long = "y".repeat(300_000);
    t.compress("in/a.xz", format!("short\n{long}\nend\n").as_bytes(), "xz");
    t.cmd()
        .args(["map", "--config", "c.yml", "in/a.xz"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), "5\t1\n300000\t1\n3\t1\n");
}
