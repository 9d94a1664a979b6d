//! Promises that hold under faults and hostile setups: `--resume` deletes only what polymr
//! made, inputs are read once, bad arguments and a small machine are refused with a message
//! (exit 2), and a broken disk is a runtime failure (exit 1).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::util::*;

/// Counts `KEY<TAB>N` lines (the reducer's output).
fn sums(output: &str) -> BTreeMap<String, u64> {
    output
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap_or_else(|| panic!("{l:?}"));
            (k.to_string(), v.parse().unwrap_or_else(|_| panic!("{l:?}")))
        })
        .collect()
}

const AWK_MAP: &str = "#!/bin/sh\nexec awk '{ print $1 \"\\t1\" }'\n";
const AWK_SUM: &str =
    "#!/bin/sh\nexec awk -F'\\t' '{ s[$1] += $2 } END { for (k in s) print k \"\\t\" s[k] }'\n";

/// A native word-count job: `c.yml`, lines in, `word<TAB>count` out.
fn word_count(t: &TestContext) {
    t.write_exec("map.sh", AWK_MAP);
    t.write_exec("sum.sh", AWK_SUM);
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n",
    );
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The work directory polymr announced on stderr.
fn announced_workdir(stderr: &str) -> Option<PathBuf> {
    let rest = stderr.split("polymr: work directory: ").nth(1)?;
    Some(PathBuf::from(rest.split(" (").next()?))
}

// --- item 2: --resume deletes only what polymr made --------------------------------------

/// Regression: a successful `--resume` run emptied the directory, the user's files included.
#[test]
fn resume_refuses_a_nonempty_directory_polymr_did_not_make() {
    let t = TestContext::new();
    word_count(&t);
    t.write("in/a", "x\ny\n");
    t.write("mine/notes.txt", "my own work");
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "--resume", "mine", "in"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(".polymr-workdir"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(t.listing("mine"), vec!["notes.txt"]);
    assert!(!t.path("result.txt").exists());
}

#[test]
fn resume_removes_only_its_own_entries_and_keeps_the_users_files() {
    let t = TestContext::new();
    t.write_exec(
        "map.sh",
        &format!(
            "#!/bin/sh\n[ -e {} ] && exit 3\nexec awk '{{ print $1 \"\\t1\" }}'\n",
            t.path("fail").display()
        ),
    );
    t.write_exec("sum.sh", AWK_SUM);
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n",
    );
    t.write("in/a", "x\ny\nx\n");
    t.write("fail", "");
    let args = [
        "run",
        "--config",
        "c.yml",
        "--retries",
        "0",
        "--resume",
        "work",
        "in",
    ];
    t.cmd().args(args).assert().code(1);
    assert!(t.path("work/.polymr-workdir").is_file());
    // The user puts files of their own beside polymr's, then resumes.
    t.write("work/notes.txt", "mine");
    t.write("work/sub/keep", "mine too");
    std::fs::remove_file(t.path("fail")).expect("rm");
    t.cmd().args(args).assert().success();
    assert_eq!(
        sums(&t.read("result.txt")),
        BTreeMap::from([("x".into(), 2), ("y".into(), 1)])
    );
    assert_eq!(t.listing("work"), vec!["notes.txt", "sub"]);
    assert_eq!(t.read("work/sub/keep"), "mine too");
}

/// Regression: an output inside the work directory was published, then deleted with it.
#[test]
fn resume_refuses_an_output_inside_the_work_directory() {
    let t = TestContext::new();
    word_count(&t);
    t.write("in/a", "x\n");
    for extra in [
        &["--output", "work/result.txt"][..],
        &["--output-dir", "work/out"][..],
        &["--output", "./work/../work/deeper/r.txt"][..],
    ] {
        let out = t
            .cmd()
            .args(["run", "--config", "c.yml", "--resume", "work"])
            .args(extra)
            .arg("in")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("inside the work directory"),
            "{}",
            stderr_of(&out)
        );
    }
    // Through a symlink to the work directory, too.
    std::fs::create_dir_all(t.path("work")).expect("mkdir");
    std::os::unix::fs::symlink(t.path("work"), t.path("alias")).expect("symlink");
    t.cmd()
        .args(["run", "--config", "c.yml", "--resume", "work"])
        .args(["--output", "alias/r.txt", "in"])
        .assert()
        .code(2);
}

/// After `kill -9` the job's own end-of-run message never comes: the work directory printed
/// at the start is what the next run resumes.
#[test]
fn kill_9_then_resume_from_the_work_directory_printed_at_start() {
    let t = TestContext::new();
    let pidfile = t.path("hung.pid");
    t.write_exec(
        "map.sh",
        &format!(
            "#!/bin/sh\ninput=$(cat)\ncase \"$input\" in *hang-me*) if [ -e {flag} ]; then echo $$ > {pid}; exec sleep 60; fi;; esac\nprintf '%s\\n' \"$input\" | awk '{{ print $1 \"\\t1\" }}'\n",
            flag = t.path("hang").display(),
            pid = pidfile.display()
        ),
    );
    t.write_exec("sum.sh", AWK_SUM);
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n",
    );
    t.write("in/big", "a\nb\na\nthe first task is the biggest one\n");
    t.write("in/small", "hang-me\na\n");
    t.write("hang", "");
    let shape = ["--mappers", "1", "--max-batch-size", "1"];
    let log = std::fs::File::create(t.path("stderr.log")).expect("log");
    let mut child = t
        .std_cmd()
        .args(["run", "--config", "c.yml"])
        .args(shape)
        .arg("in")
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn");
    let hung =
        wait_for_pid(&pidfile, Duration::from_secs(30)).expect("the second task never started");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9");
    wait_with_deadline(&mut child, Duration::from_secs(10));
    let _ = kill(Pid::from_raw(hung), Signal::SIGKILL);

    let printed = announced_workdir(&t.read("stderr.log"))
        .unwrap_or_else(|| panic!("no work directory announced:\n{}", t.read("stderr.log")));
    assert!(printed.is_absolute(), "{}", printed.display());
    assert!(printed.join(".polymr-workdir").is_file());
    assert!(printed.join("map-00000/_SUCCESS").is_file());
    assert!(!t.path("result.txt").exists());

    std::fs::remove_file(t.path("hang")).expect("rm");
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml"])
        .args(shape)
        .arg("--resume")
        .arg(&printed)
        .arg("in")
        .output()
        .expect("rerun");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(announced_workdir(&stderr_of(&out)), Some(printed.clone()));
    let r = t.report("result.txt.report.json");
    assert_eq!(r["map_tasks_resumed"], 1, "{r}");
    assert_eq!(
        sums(&t.read("result.txt")),
        BTreeMap::from([
            ("a".into(), 3),
            ("b".into(), 1),
            ("hang-me".into(), 1),
            ("the".into(), 1)
        ])
    );
    // Everything in it was polymr's, so nothing is left.
    assert!(!printed.exists(), "{}", printed.display());
}

// --- item 3: every input file is read once -----------------------------------------------

/// Regression: a `self -> .` link was walked again and again, multiplying every count.
#[test]
fn symlink_loop_in_an_input_directory_counts_each_record_once() {
    let t = TestContext::new();
    word_count(&t);
    t.write("in/a", "x\ny\n");
    t.write("in/sub/b", "x\n");
    std::os::unix::fs::symlink(".", t.path("in/self")).expect("symlink");
    std::os::unix::fs::symlink("a", t.path("in/a-link")).expect("symlink");
    std::os::unix::fs::symlink("sub", t.path("in/sub-link")).expect("symlink");
    std::os::unix::fs::symlink("..", t.path("in/sub/up")).expect("symlink");
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "in",
            "in/a",
            "./in/sub-link/b",
            "in",
        ])
        .assert()
        .success();
    assert_eq!(
        sums(&t.read("result.txt")),
        BTreeMap::from([("x".into(), 2), ("y".into(), 1)])
    );
    assert_eq!(t.report("result.txt.report.json")["totals"]["files"], 2);
}

// --- item 9: bad arguments exit 2, never abort --------------------------------------------

/// Regression: these aborted with "memory allocation failed" (exit 134).
#[test]
fn huge_counts_and_sizes_exit_2_with_a_message() {
    let t = TestContext::new();
    word_count(&t);
    t.write("in/a", "x\n");
    for (args, says) in [
        (&["--reducers", "4000000000"][..], "--reducers"),
        (&["--sort-memory", "100000G"][..], "physical memory"),
        (&["--mappers", "1000000"][..], "--mappers"),
        (&["--reducers", "0"][..], "at least 1"),
    ] {
        let out = t
            .cmd()
            .args(["run", "--config", "c.yml"])
            .args(args)
            .arg("in")
            .output()
            .expect("run");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("allocation"), "{err}");
    }
    let out = t
        .cmd()
        .args([
            "reduce",
            "--config",
            "c.yml",
            "--sort-memory",
            "100000G",
            "in/a",
        ])
        .output()
        .expect("reduce");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}

// --- item 10: the machine's fault is exit 1, the user's is exit 2 --------------------------

/// Regression: an output directory that cannot be created exited 3 ("internal error").
#[test]
fn unwritable_output_directory_is_a_runtime_failure() {
    let t = TestContext::new();
    word_count(&t);
    t.write("in/a", "x\n");
    // A regular file as a parent directory stops root too.
    t.write("blocker", "");
    for args in [
        &["--output", "blocker/result.txt"][..],
        &["--output-dir", "blocker/out"][..],
    ] {
        let out = t
            .cmd()
            .args(["run", "--config", "c.yml"])
            .args(args)
            .arg("in")
            .output()
            .expect("run");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("blocker"), "{err}");
    }
    let out = t
        .cmd()
        .args([
            "map",
            "--config",
            "c.yml",
            "--output",
            "blocker/r.txt",
            "in/a",
        ])
        .output()
        .expect("map");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

/// Regression: a TMPDIR where the helper scripts cannot be written exited 2 ("bad usage").
#[test]
fn unwritable_tmpdir_is_a_runtime_failure() {
    let t = TestContext::new();
    t.write("custom-mappers/os.py", PY_OS_MAPPER);
    t.write("analysis-tools.yml", "language: python\nscript: os.py\n");
    t.write("in/a", records(3, "a"));
    t.write("blocker", "");
    let tmp = t.path("blocker/tmp");
    for cmd in ["map", "run"] {
        let out = t
            .cmd()
            .env("TMPDIR", &tmp)
            .args([cmd, "in"])
            .output()
            .expect("run");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("temporary directory"), "{err}");
    }
}

#[test]
fn flow_style_config_error_names_the_line() {
    let t = TestContext::new();
    t.write_exec("map.sh", AWK_MAP);
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: python, script: gone.py}\n",
    );
    t.write("in/a", "x\n");
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "in"])
        .output()
        .expect("run");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("reducer.script") && err.contains("line 2") && err.contains("gone.py"),
        "{err}"
    );
}

// --- item 11: descriptor limits -------------------------------------------------------------

/// polymr under `ulimit -Sn soft; ulimit -Hn hard`, in the context's directory.
/// The raised limit is polymr's own: user code gets the soft limit polymr was started with
/// (code that uses `select()` breaks on descriptors above 1024).
#[test]
fn children_get_the_soft_descriptor_limit_polymr_started_with() {
    let t = TestContext::new();
    t.write_exec(
        "map.sh",
        "#!/bin/sh\ncat >/dev/null\nprintf 'nofile\\t%s\\n' \"$(ulimit -Sn)\"\n",
    );
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nrecord_format: lines\n",
    );
    t.write("in/a", "x\n");
    limited(&t, 100, 4096)
        .args(["map", "--config", "c.yml", "-o", "out.txt", "in/a"])
        .assert()
        .success();
    assert_eq!(t.read("out.txt"), "nofile\t100\n");
}

fn limited(t: &TestContext, soft: u32, hard: u32) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new("sh");
    c.current_dir(t.root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("-c")
        .arg(format!(
            "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""
        ))
        .arg(assert_cmd::cargo::cargo_bin("polymr"));
    c.timeout(Duration::from_secs(120));
    c
}

fn many_inputs(t: &TestContext, n: usize) -> BTreeMap<String, u64> {
    for i in 0..n {
        t.write(&format!("in/f{i:03}"), format!("w{}\nall\n", i % 3));
    }
    let mut want = BTreeMap::from([("all".to_string(), n as u64)]);
    for i in 0..n {
        *want.entry(format!("w{}", i % 3)).or_insert(0) += 1;
    }
    want
}

/// Regression: with too few descriptors the job started, and its tasks failed one after
/// another with "Too many open files".
#[test]
fn too_few_descriptors_for_the_mappers_is_refused_before_any_work() {
    let t = TestContext::new();
    word_count(&t);
    many_inputs(&t, 100);
    let shape = ["--mappers", "100", "--max-batch-size", "1"];
    let out = limited(&t, 64, 64)
        .args(["run", "--config", "c.yml"])
        .args(shape)
        .arg("in")
        .output()
        .expect("run");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("file descriptors")
            && err.contains("the limit is 64")
            && err.contains("--mappers 100"),
        "{err}"
    );
    assert!(!err.contains("work directory"), "work started: {err}");
    // With room for some but not all, the message says how many fit.
    let out = limited(&t, 400, 400)
        .args(["run", "--config", "c.yml"])
        .args(shape)
        .arg("in")
        .output()
        .expect("run");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let fit: usize = err
        .split("use --mappers ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no advice: {err}"));
    assert!((1..100).contains(&fit), "{err}");
    limited(&t, 400, 400)
        .args(["run", "--config", "c.yml", "--mappers", &fit.to_string()])
        .args(["--max-batch-size", "1", "--retries", "0", "in"])
        .assert()
        .success();
}

/// Regression: the soft limit was left as it was (often 1024 under a higher hard limit).
#[test]
fn soft_descriptor_limit_is_raised_to_the_hard_limit() {
    let t = TestContext::new();
    word_count(&t);
    let want = many_inputs(&t, 100);
    limited(&t, 64, 4096)
        .args(["run", "--config", "c.yml", "--mappers", "50"])
        .args(["--max-batch-size", "1", "--retries", "0", "in"])
        .assert()
        .success();
    assert_eq!(sums(&t.read("result.txt")), want);
}
