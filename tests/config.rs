//! Bad configuration is a usage error (exit 2) found before any work, naming the file,
//! the key and the line.

use crate::util::*;

fn fails_with_usage(t: &TestContext, args: &[&str], needles: &[&str]) {
    let out = t.cmd().args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}: {stderr}");
    }
    assert!(
        !t.path("result.txt").exists(),
        "work started despite a bad config"
    );
}

#[test]
fn missing_script_is_a_usage_error() {
    let t = TestContext::new();
    t.write(
        "c.yml",
        "mapper:\n  language: python\n  script: nowhere.py\n",
    );
    t.write("in/a", "x\n");
    fails_with_usage(
        &t,
        &["map", "--config", "c.yml", "in/a"],
        &["c.yml", "mapper.script", "line 3", "nowhere.py"],
    );
}

#[test]
fn unknown_language_is_a_usage_error() {
    let t = TestContext::new();
    t.write("c.yml", "language: ruby\nscript: m.rb\n");
    t.write("in/a", "x\n");
    fails_with_usage(
        &t,
        &["map", "--config", "c.yml", "in/a"],
        &["c.yml", "language", "ruby", "line 1"],
    );
}

#[test]
fn bad_yaml_is_a_usage_error() {
    let t = TestContext::new();
    t.write("c.yml", "mapper: {language: python\n  script: [\n");
    t.write("in/a", "x\n");
    fails_with_usage(
        &t,
        &["map", "--config", "c.yml", "in/a"],
        &["c.yml", "line"],
    );
}

#[test]
fn missing_interpreter_is_a_usage_error() {
    let t = TestContext::new();
    t.write("m.py", PY_OS_MAPPER);
    t.write("c.yml", "language: python\nscript: m.py\n");
    t.write("in/a", "x\n");
    let out = t
        .cmd()
        .env("POLYMR_PYTHON", "no-such-python-here")
        .args(["map", "--config", "c.yml", "in/a"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("no-such-python-here") && stderr.contains("POLYMR_PYTHON"),
        "{stderr}"
    );
}

#[test]
fn non_executable_binary_is_a_usage_error() {
    let t = TestContext::new();
    t.write("m.sh", "#!/bin/sh\ncat\n");
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\n");
    t.write("in/a", "x\n");
    fails_with_usage(
        &t,
        &["map", "--config", "c.yml", "in/a"],
        &["not executable", "chmod"],
    );
}

#[test]
fn no_config_anywhere_is_a_usage_error() {
    let t = TestContext::new();
    t.write("in/a", "x\n");
    if std::path::Path::new("/etc/analysis-tools.yml").exists() {
        return; // This machine has a system-wide config: the lookup would rightly find it.
    }
    fails_with_usage(
        &t,
        &["map", "in/a"],
        &["analysis-tools.yml", "/etc/analysis-tools.yml"],
    );
}
