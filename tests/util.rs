//! The test context: a temporary directory with inputs and configs, and a `polymr` command
//! with a clean environment rooted in it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const OSES: &[&str] = &["WINNT", "Linux", "Darwin", "WINNT", "Android"];

pub struct TestContext {
    dir: tempfile::TempDir,
}

impl TestContext {
    pub fn new() -> Self {
        TestContext {
            dir: tempfile::Builder::new()
                .prefix("polymr-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn write_exec(&self, rel: &str, script: &str) -> PathBuf {
        let p = self.write(rel, script);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    /// Writes `content` compressed with the real command-line tool for `codec`
    /// (`xz`, `gzip`, `zstd`, `bzip2`, or `none`).
    pub fn compress(&self, rel: &str, content: &[u8], codec: &str) -> PathBuf {
        if codec == "none" {
            return self.write(rel, content);
        }
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let mut child = Command::new(codec)
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&p).expect("create"))
            .spawn()
            .unwrap_or_else(|e| panic!("`{codec}` is needed by the tests (make test-deps): {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(content)
            .expect("compress");
        assert!(child.wait().expect("wait").success(), "{codec} failed");
        p
    }

    /// The polymr command, run in the context's directory with only PATH and HOME set.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("polymr").expect("polymr binary");
        c.current_dir(self.root()).env_clear().envs(base_env());
        c.timeout(Duration::from_secs(120));
        c
    }

    /// The same, as a std command, for tests that signal the running process.
    pub fn std_cmd(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("polymr"));
        c.current_dir(self.root()).env_clear().envs(base_env());
        c
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn report(&self, rel: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(rel)).expect("report is JSON")
    }

    /// Names of the files left in a directory of the context (to find stray temp files).
    pub fn listing(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn base_env() -> Vec<(String, String)> {
    let mut env = vec![];
    for k in ["PATH", "HOME", "POLYMR_PYTHON", "POLYMR_NODE"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    env
}

/// `n` telemetry records, the OS cycling through [`OSES`].
pub fn records(n: usize, salt: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        let os = OSES[i % OSES.len()];
        s.push_str(&format!(
            "{:08x}-0000-4000-8000-{:012}\t{{\"ver\":2,\"info\":{{\"OS\":\"{os}\",\"reason\":\"saved-session\",\"salt\":\"{salt}\"}},\"payload\":\"{}\"}}\n",
            i,
            i,
            "x".repeat(i % 200)
        ));
    }
    s
}

/// Expected `OS → count` for `records(n, _)`.
pub fn expected_counts(n: usize) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for i in 0..n {
        *m.entry(OSES[i % OSES.len()].to_string()).or_insert(0) += 1;
    }
    m
}

/// Counts `KEY<sep>...` lines of an output by key.
pub fn count_keys(output: &str, sep: char) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for line in output.lines().filter(|l| !l.is_empty()) {
        let key = line.split(sep).next().unwrap_or("").to_string();
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

/// Waits for `path` to exist, at most `limit`.
pub fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits for a child to write its pid to `path` (a file can exist before its content is
/// written), at most `limit`.
pub fn wait_for_pid(path: &Path, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Ok(pid) = text.trim().parse() {
            if text.ends_with('\n') {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Waits for the child to exit, at most `limit`; kills it and panics past that.
pub fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("polymr did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie still has /proc/PID, so read its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .split(") ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => false,
    }
}

pub const PY_OS_MAPPER: &str =
    "def mapper(uuid, file, js):\n    return \"%s 1\\n\" % js[\"info\"][\"OS\"]\n";
