//! What goes wrong, and that it goes wrong cleanly: failed and killed mappers, corrupt
//! inputs, mappers that stop reading, signals.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

fn binary_job(t: &TestContext, script: &str) {
    t.write_exec("m.sh", script);
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
}

#[test]
fn mapper_exit_status_and_stderr_tail_are_shown_and_nothing_published() {
    let t = TestContext::new();
    binary_job(
        &t,
        "#!/bin/sh\nread -r l\necho 'first words' >&2\necho 'boom: bad record' >&2\nexit 3\n",
    );
    t.write("in/a", records(10, "x"));
    t.write("out/result.txt", "previous result\n");
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "-o", "out/result.txt", "in/a"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("exit status 3"), "{stderr}");
    assert!(stderr.contains("boom: bad record"), "{stderr}");
    // The previous result is untouched and no temporary file is left.
    assert_eq!(t.read("out/result.txt"), "previous result\n");
    assert_eq!(
        t.listing("out"),
        vec!["result.txt", "result.txt.report.json"]
    );
    let r = t.report("out/result.txt.report.json");
    assert_eq!(r["status"], "failed");
    assert_eq!(r["published"], false);
    assert_eq!(r["child"]["exit"]["code"], 3);
}

#[test]
fn mapper_killed_by_a_signal_fails_the_task() {
    let t = TestContext::new();
    binary_job(&t, "#!/bin/sh\nread -r l\nkill -9 $$\n");
    t.write("in/a", records(10, "x"));
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "in/a"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("signal 9"), "{stderr}");
    assert!(!t.path("result.txt").exists());
}

#[test]
fn corrupt_and_truncated_inputs_are_reported_and_others_processed() {
    let t = TestContext::new();
    binary_job(&t, "#!/bin/sh\nexec cat\n");
    t.compress("in/1-good.xz", b"a\nb\n", "xz");
    let big = records(2000, "t");
    let full = std::fs::read(t.compress("in/2-trunc.gz", big.as_bytes(), "gzip")).expect("read");
    t.write("in/2-trunc.gz", &full[..full.len() / 2]);
    let mut corrupt =
        std::fs::read(t.compress("in/3-corrupt.xz", big.as_bytes(), "xz")).expect("read");
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0x5A);
    t.write("in/3-corrupt.xz", &corrupt);
    t.compress("in/4-good.gz", b"c\n", "gzip");

    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "in"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("2-trunc.gz") && stderr.contains("3-corrupt.xz"),
        "{stderr}"
    );
    let r = t.report("result.txt.report.json");
    let status: Vec<&str> = r["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| i["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(status, vec!["processed", "failed", "failed", "processed"]);
    assert!(r["inputs"][1]["error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(r["totals"]["files_failed"], 2);
    let result = t.read("result.txt");
    assert!(result.starts_with("a\nb\n") && result.ends_with("c\n"));
    // Only whole lines of the broken files were delivered.
    for line in result.lines().filter(|l| l.len() > 1) {
        assert!(
            line.ends_with("\"}") || line.ends_with("}"),
            "partial line delivered: {line:.80}"
        );
    }

    // --fail-fast: the first broken input is fatal and nothing is published.
    t.cmd()
        .args([
            "map",
            "--config",
            "c.yml",
            "--fail-fast",
            "-o",
            "ff.txt",
            "in",
        ])
        .assert()
        .code(1);
    assert!(!t.path("ff.txt").exists());
    let r = t.report("ff.txt.report.json");
    assert_eq!(r["status"], "failed");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("2-trunc.gz")),
        "{}",
        r["error"]
    );
    assert_eq!(r["inputs"][3]["status"], "skipped");
}

#[test]
fn missing_input_is_reported_not_fatal() {
    let t = TestContext::new();
    binary_job(&t, "#!/bin/sh\nexec cat\n");
    t.write("in/a", "x\n");
    t.cmd()
        .args(["map", "--config", "c.yml", "in/a", "in/nope.xz"])
        .assert()
        .success();
    let r = t.report("result.txt.report.json");
    assert_eq!(r["inputs"][1]["status"], "failed");
    assert!(r["inputs"][1]["error"]
        .as_str()
        .is_some_and(|e| e.contains("nope.xz")));
}

#[test]
fn mapper_that_exits_early_does_not_deadlock() {
    let t = TestContext::new();
    // Reads one record of many megabytes of input, then exits successfully.
    binary_job(&t, "#!/bin/sh\nhead -n 1\n");
    t.compress("in/a.gz", records(20_000, "big").as_bytes(), "gzip");
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "in/a.gz"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("before reading all its input"), "{stderr}");
    assert!(!t.path("result.txt").exists());
}

#[test]
fn mapper_that_closes_stdin_and_keeps_running_does_not_deadlock() {
    let t = TestContext::new();
    binary_job(&t, "#!/bin/sh\nexec 0<&-\nsleep 1\necho done\n");
    t.compress("in/a.gz", records(20_000, "big").as_bytes(), "gzip");
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "in/a.gz"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("before reading all its input"), "{stderr}");
}

/// A mapper that leaves a grandchild behind and records both pids.
const SLEEPER: &str = "#!/bin/sh\nsleep 300 &\necho $! > grandchild.pid\necho $$ > child.pid\nwhile :; do sleep 1; done\n";

#[test]
fn sigterm_kills_the_process_group_and_cleans_up() {
    let t = TestContext::new();
    binary_job(&t, SLEEPER);
    t.write("in/a", "x\n");
    let mut child = t
        .std_cmd()
        .args(["map", "--config", "c.yml", "-o", "out/r.txt", "in/a"])
        .spawn()
        .expect("spawn");
    assert!(
        wait_for_pid(&t.path("child.pid"), Duration::from_secs(20)).is_some(),
        "mapper did not start"
    );
    let grandchild: i32 = t.read("grandchild.pid").trim().parse().expect("pid");
    let mapper: i32 = t.read("child.pid").trim().parse().expect("pid");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    let status = wait_with_deadline(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(143));
    assert!(!pid_alive(mapper), "mapper {mapper} outlived polymr");
    assert!(
        !pid_alive(grandchild),
        "grandchild {grandchild} outlived polymr"
    );
    assert_eq!(t.listing("out"), vec!["r.txt.report.json"]);
    assert_eq!(t.report("out/r.txt.report.json")["status"], "interrupted");
}

#[test]
fn second_sigint_kills_at_once_even_if_the_mapper_ignores_sigterm() {
    let t = TestContext::new();
    binary_job(
        &t,
        &SLEEPER.replace("#!/bin/sh\n", "#!/bin/sh\ntrap '' TERM\n"),
    );
    t.write("in/a", "x\n");
    let mut child = t
        .std_cmd()
        .args(["map", "--config", "c.yml", "-o", "out/r.txt", "in/a"])
        .spawn()
        .expect("spawn");
    assert!(
        wait_for_pid(&t.path("child.pid"), Duration::from_secs(20)).is_some(),
        "mapper did not start"
    );
    let mapper: i32 = t.read("child.pid").trim().parse().expect("pid");
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).expect("signal");
    std::thread::sleep(Duration::from_millis(300));
    // The mapper ignores SIGTERM, so polymr is still in its grace period.
    assert!(child.try_wait().expect("try_wait").is_none());
    kill(pid, Signal::SIGINT).expect("signal");
    let status = wait_with_deadline(&mut child, Duration::from_secs(3));
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!pid_alive(mapper), "mapper {mapper} outlived polymr");
    assert!(
        t.listing("out").iter().all(|f| !f.ends_with(".tmp")),
        "{:?}",
        t.listing("out")
    );
}
