//! Children that misbehave: they leave input unread, flood stderr, hang, or outlive a
//! driver killed with SIGKILL. Each test names the promise it checks.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

const THREE_LINES: &str = "alpha 1\nbravo 2\ncharlie 3\n";
/// What `read -r` leaves of [`THREE_LINES`]: the shell reads a pipe byte by byte.
const UNREAD_AFTER_ONE_LINE: usize = "bravo 2\ncharlie 3\n".len();

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

/// A native job with a `cat` mapper, in `lines` format.
fn lines_job(t: &TestContext, mapper: &str, reducer: Option<&str>, combiner: Option<&str>) {
    t.write_exec("m.sh", mapper);
    let mut c = "mapper: {language: binary, script: m.sh}\nrecord_format: lines\n".to_string();
    if let Some(r) = reducer {
        t.write_exec("r.sh", r);
        c.push_str("reducer: {language: binary, script: r.sh}\n");
    }
    if let Some(k) = combiner {
        t.write_exec("k.sh", k);
        c.push_str("combiner: {language: binary, script: k.sh}\n");
    }
    t.write("c.yml", c);
}

const CAT: &str = "#!/bin/sh\nexec cat\n";
const READ_ONE_LINE: &str = "#!/bin/sh\nread -r l\nprintf '%s\\n' \"$l\"\n";

#[test]
fn mapper_that_reads_one_line_of_three_and_exits_0_fails_and_publishes_nothing() {
    let t = TestContext::new();
    lines_job(&t, READ_ONE_LINE, None, None);
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "-o", "out/r.txt", "in/a"])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!("{UNREAD_AFTER_ONE_LINE} bytes")),
        "{stderr}"
    );
    assert!(stderr.contains("the mapper exited"), "{stderr}");
    assert_eq!(t.listing("out"), vec!["r.txt.report.json"]);
    let r = t.report("out/r.txt.report.json");
    assert_eq!(r["status"], "failed");
    assert_eq!(r["published"], false);
}

#[test]
fn mapper_that_closes_stdin_at_once_and_exits_0_fails_with_a_tiny_input() {
    let t = TestContext::new();
    // It waits a little, so that the input is in the pipe when it exits, and the count exact.
    lines_job(
        &t,
        "#!/bin/sh\nexec 0<&-\nsleep 0.5\necho hello\n",
        None,
        None,
    );
    t.write("in/a", "x\n");
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "in/a"])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("2 bytes"), "{stderr}");
    assert!(!t.path("result.txt").exists());
}

#[test]
fn mapper_that_exits_0_before_its_tiny_input_is_written_fails() {
    let t = TestContext::new();
    lines_job(&t, "#!/bin/sh\necho hello\n", None, None);
    t.write("in/a", "x\n");
    for _ in 0..5 {
        let out = t
            .cmd()
            .args(["map", "--config", "c.yml", "in/a"])
            .assert()
            .code(1);
        let stderr = stderr_of(&out);
        assert!(stderr.contains("the mapper exited"), "{stderr}");
        assert!(stderr.contains("before reading all its input"), "{stderr}");
        assert!(!t.path("result.txt").exists());
    }
}

#[test]
fn reducer_that_reads_one_line_and_exits_0_fails_and_publishes_nothing() {
    let t = TestContext::new();
    lines_job(&t, CAT, Some(READ_ONE_LINE), None);
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "--retries", "0", "in/a"])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("the reducer exited"), "{stderr}");
    assert!(
        stderr.contains(&format!("{UNREAD_AFTER_ONE_LINE} bytes")),
        "{stderr}"
    );
    assert!(!t.path("result.txt").exists());
    assert_eq!(t.report("result.txt.report.json")["published"], false);
}

#[test]
fn reduce_command_with_a_reducer_that_stops_reading_publishes_nothing() {
    let t = TestContext::new();
    lines_job(&t, CAT, Some(READ_ONE_LINE), None);
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args(["reduce", "--config", "c.yml", "-o", "out/r.txt", "in/a"])
        .assert()
        .code(1);
    assert!(stderr_of(&out).contains("the reducer exited"));
    assert_eq!(t.listing("out"), vec!["r.txt.report.json"]);
}

#[test]
fn combiner_that_reads_one_line_and_exits_0_fails_the_map_task() {
    let t = TestContext::new();
    lines_job(&t, CAT, Some(CAT), Some(READ_ONE_LINE));
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "--retries", "0", "in/a"])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("the combiner exited"), "{stderr}");
    assert!(
        stderr.contains(&format!("{UNREAD_AFTER_ONE_LINE} bytes")),
        "{stderr}"
    );
    assert!(!t.path("result.txt").exists());
}

#[test]
fn a_child_that_reads_everything_still_succeeds_with_tiny_and_empty_inputs() {
    let t = TestContext::new();
    lines_job(&t, CAT, Some(CAT), Some(CAT));
    t.write("in/a", THREE_LINES);
    t.write("in/empty", "");
    t.cmd()
        .args(["run", "--config", "c.yml", "--retries", "0", "in"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), THREE_LINES);
}

/// A mapper that reads its input, then floods stderr with a million distinct counters and a
/// million invalid-record reports.
const FLOOD: &str = "#!/bin/sh\ncat >/dev/null\nawk 'BEGIN { for (i = 0; i < 1000000; i++) { print \"reporter:counter:flood,name\" i \",1\"; print \"polymr:invalid:0:\" i \":bad record\" } }' >&2\n";

#[test]
fn a_flood_of_distinct_counters_and_invalid_records_keeps_driver_memory_bounded() {
    let t = TestContext::new();
    lines_job(&t, FLOOD, None, None);
    t.write("in/a", "x\n");
    t.cmd()
        .args(["map", "--config", "c.yml", "-o", "out/r.txt", "in/a"])
        .assert()
        .success();
    let report_size = std::fs::metadata(t.path("out/r.txt.report.json"))
        .expect("report")
        .len();
    assert!(report_size < 64 * 1024, "report is {report_size} bytes");
    let r = t.report("out/r.txt.report.json");
    let rss = r["driver_peak_rss_bytes"].as_u64().expect("rss");
    assert!(rss < 100 << 20, "driver peak RSS {rss} bytes");
    let kept = r["counters"]["flood"].as_object().expect("counters").len();
    assert_eq!(kept, 120);
    assert_eq!(r["counters_dropped"], 1_000_000 - 120);
    let input = &r["inputs"][0];
    assert_eq!(input["invalid_records"], 1_000_000);
    assert_eq!(
        input["invalid_samples"].as_array().expect("samples").len(),
        10
    );
    assert_eq!(input["invalid_locations_dropped"], 1_000_000 - 10);
}

/// Hangs (neither reads nor writes) on its first attempt, works on the next.
fn hang_once(t: &TestContext) -> String {
    let flag = t.path("attempted");
    format!(
        "#!/bin/sh\nif [ ! -e {f} ]; then touch {f}; exec sleep 300; fi\nexec cat\n",
        f = flag.display()
    )
}

#[test]
fn a_hung_mapper_is_killed_after_the_task_timeout_and_retried() {
    let t = TestContext::new();
    lines_job(&t, &hang_once(&t), None, None);
    t.write("in/a", THREE_LINES);
    let started = Instant::now();
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--task-timeout",
            "1s",
            "--retries",
            "1",
            "in/a",
        ])
        .assert()
        .success();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(t.read("result.txt"), THREE_LINES);
    let r = t.report("result.txt.report.json");
    let tasks = r["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["status"], "failed");
    let error = tasks[0]["error"].as_str().expect("error");
    assert!(error.contains("--task-timeout 1s"), "{error}");
    assert_eq!(tasks[1]["status"], "succeeded");
}

#[test]
fn map_with_a_hung_mapper_fails_naming_the_timeout() {
    let t = TestContext::new();
    lines_job(&t, "#!/bin/sh\nexec sleep 300\n", None, None);
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "--task-timeout", "1s", "in/a"])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("no progress"), "{stderr}");
    assert!(stderr.contains("--task-timeout 1s"), "{stderr}");
    assert!(!t.path("result.txt").exists());
}

#[test]
fn reduce_with_a_reducer_that_hangs_after_reading_fails_naming_the_timeout() {
    let t = TestContext::new();
    // Reads all its input, then neither writes nor exits.
    lines_job(
        &t,
        CAT,
        Some("#!/bin/sh\ncat >/dev/null\nexec sleep 300\n"),
        None,
    );
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args([
            "reduce",
            "--config",
            "c.yml",
            "--task-timeout",
            "1s",
            "in/a",
        ])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("the reducer made no progress"), "{stderr}");
}

#[test]
fn a_slow_child_that_keeps_writing_is_not_timed_out() {
    let t = TestContext::new();
    // Silent on stdout for 2.5 s, longer than the timeout, but reporting status on stderr.
    lines_job(
        &t,
        "#!/bin/sh\ncat\nfor i in 1 2 3 4 5; do sleep 0.5; echo reporter:status:working >&2; done\n",
        None,
        None,
    );
    t.write("in/a", THREE_LINES);
    t.cmd()
        .args(["map", "--config", "c.yml", "--task-timeout", "1s", "in/a"])
        .assert()
        .success();
    assert_eq!(t.read("result.txt"), THREE_LINES);
}

#[test]
fn task_timeout_zero_is_off_and_bad_values_are_usage_errors() {
    let t = TestContext::new();
    lines_job(&t, CAT, None, None);
    t.write("in/a", THREE_LINES);
    t.cmd()
        .args(["map", "--config", "c.yml", "--task-timeout", "0", "in/a"])
        .assert()
        .success();
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "--task-timeout", "soon", "in/a"])
        .assert()
        .code(2);
    assert!(stderr_of(&out).contains("--task-timeout"));
}

#[test]
fn mapper_dies_when_polymr_is_killed_with_sigkill() {
    let t = TestContext::new();
    lines_job(
        &t,
        "#!/bin/sh\necho $$ > child.pid\nwhile :; do sleep 0.1; done\n",
        None,
        None,
    );
    t.write("in/a", "x\n");
    let mut child = t
        .std_cmd()
        .args(["map", "--config", "c.yml", "in/a"])
        .spawn()
        .expect("spawn");
    let mapper =
        wait_for_pid(&t.path("child.pid"), Duration::from_secs(20)).expect("mapper did not start");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("signal");
    wait_with_deadline(&mut child, Duration::from_secs(5));
    let started = Instant::now();
    while pid_alive(mapper) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_alive(mapper), "mapper {mapper} outlived polymr");
}

#[test]
fn second_sigint_removes_the_helper_temp_dirs() {
    let t = TestContext::new();
    let tmp = t.path("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    // A Python mapper that ignores SIGTERM, so the second signal finds it still running.
    t.write(
        "m.py",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nopen('child.started', 'w').close()\ntime.sleep(300)\ndef mapper(uuid, file, js):\n    return ''\n",
    );
    t.write("c.yml", "mapper: {language: python, script: m.py}\n");
    t.write("in/a", records(3, "x"));
    let mut child = t
        .std_cmd()
        .env("TMPDIR", &tmp)
        .args(["map", "--config", "c.yml", "-o", "out/r.txt", "in/a"])
        .spawn()
        .expect("spawn");
    assert!(
        wait_for_file(&t.path("child.started"), Duration::from_secs(30)),
        "mapper did not start"
    );
    assert!(
        t.listing("tmp")
            .iter()
            .any(|f| f.starts_with("polymr-helper-")),
        "{:?}",
        t.listing("tmp")
    );
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).expect("signal");
    std::thread::sleep(Duration::from_millis(300));
    kill(pid, Signal::SIGINT).expect("signal");
    let status = wait_with_deadline(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(130));
    assert!(t.listing("tmp").is_empty(), "{:?}", t.listing("tmp"));
}

#[test]
fn a_hung_combiner_is_killed_after_the_task_timeout_and_fails_its_map_task() {
    let t = TestContext::new();
    lines_job(
        &t,
        CAT,
        Some(CAT),
        Some("#!/bin/sh\ncat >/dev/null\nexec sleep 300\n"),
    );
    t.write("in/a", THREE_LINES);
    let out = t
        .cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--task-timeout",
            "1s",
            "--retries",
            "0",
            "in/a",
        ])
        .assert()
        .code(1);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("the combiner made no progress"), "{stderr}");
    assert!(!t.path("result.txt").exists());
}
