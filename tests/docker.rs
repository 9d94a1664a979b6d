//! The container image (docker/Dockerfile, `make image`) and its contract: one task per
//! container, `docker run --rm -e CREDENTIALS=… -v KEY:/run/secrets/polymr-key:ro IMAGE map
//! KEY…` writes /home/worker/result.txt and its report (or uploads them), the reduce task
//! reads INPUT_TASK_IDS, and the decrypted credentials are nowhere but in polymr's memory.
//!
//! Skipped (loudly) only when `docker info` fails. Otherwise the first test builds the base
//! image (`make base-image`, debootstrap) and the test image once per run, under a file lock.
//! Every docker call has a deadline; containers get unique names and are removed.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::servers::{create_bucket, get, put, s3_client, S3Server, StaticServer};
use crate::util::{count_keys, TestContext};

/// The image the tests build and run (kept between runs, with its base, for speed).
const IMAGE: &str = "polymr-test:latest";
/// Building the base image downloads Debian's packages: bounded, but generously.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
const RUN_LIMIT: Duration = Duration::from_secs(180);
const CALL_LIMIT: Duration = Duration::from_secs(60);

const SECRET_KEY_ID: &str = "AKIATEST";
const SECRET: &str = "test-secret-value-123";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a command printed and how it ended.
struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            tail(&self.out(), 6000),
            tail(&self.stderr, 6000)
        )
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs `cmd` in its own process group with a deadline; past it, kills the group and
/// returns an error (never hangs).
fn run_within(mut cmd: Command, limit: Duration) -> Result<Ran, String> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = err.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("{what}: wait: {e}")),
        }
        if start.elapsed() > limit {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(format!("{what} did not finish within {limit:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Ran {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

fn docker_within(args: &[&str], limit: Duration) -> Result<Ran, String> {
    let mut c = Command::new("docker");
    c.args(args);
    run_within(c, limit)
}

/// A docker command that must finish in time (its exit code is the caller's business).
fn docker(args: &[&str]) -> Ran {
    docker_within(args, CALL_LIMIT).unwrap_or_else(|e| panic!("{e}"))
}

/// Written straight to stderr, past the test harness's capture, so that it shows even when
/// the tests pass.
fn skip_banner(why: &str) {
    use std::io::Write;
    let bar = "!".repeat(78);
    let why = why.trim().replace('\n', "\n!! ");
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\n!! SKIPPED: the docker tests did not run: `docker info` failed.\n!! {why}\n!! Start Docker (and make sure this user may use it) to run them.\n{bar}\n"
    );
}

/// The test image, built once per run; `None` (after a loud banner) when there is no Docker.
fn image() -> Option<&'static str> {
    static READY: OnceLock<Result<Option<String>, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let ready = prepare();
        if let Ok(Some(why)) = &ready {
            skip_banner(why);
        }
        ready
    });
    match ready {
        Ok(None) => Some(IMAGE),
        Ok(Some(_)) => None,
        Err(e) => panic!("{e}"),
    }
}

/// `Ok(None)`: the image is ready; `Ok(Some(why))`: no Docker; `Err`: the build failed.
fn prepare() -> Result<Option<String>, String> {
    match docker_within(&["info", "--format", "{{.ServerVersion}}"], CALL_LIMIT) {
        Ok(r) if r.ok() => {}
        Ok(r) => return Ok(Some(r.stderr)),
        Err(e) => return Ok(Some(e)),
    }
    let bin = assert_cmd::cargo::cargo_bin("polymr");
    assert!(bin.exists(), "{} is missing", bin.display());
    let lock_dir = repo().join("target/docker");
    std::fs::create_dir_all(&lock_dir).map_err(|e| format!("{}: {e}", lock_dir.display()))?;
    let (name, tag) = IMAGE.split_once(':').expect("IMAGE is name:tag");
    // One build at a time across test processes too (nextest runs one test per process).
    let mut c = if Path::new("/usr/bin/flock").exists() {
        let mut c = Command::new("/usr/bin/flock");
        c.arg(lock_dir.join("test-build.lock")).arg("make");
        c
    } else {
        Command::new("make")
    };
    c.current_dir(repo())
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .arg("--no-print-directory")
        .arg("image")
        .arg(format!("IMAGE={name}"))
        .arg(format!("TAG={tag}"))
        .arg(format!("POLYMR_BIN={}", bin.display()));
    let previous = image_id(IMAGE);
    let start = Instant::now();
    let r = run_within(c, BUILD_LIMIT)?;
    if !r.ok() {
        return Err(format!(
            "`make image IMAGE={name}` (with `make base-image`) failed:\n{}",
            r.describe()
        ));
    }
    // A rebuilt image leaves the previous one dangling: remove it (if no container uses it).
    if let Some(old) = previous.filter(|old| image_id(IMAGE).as_ref() != Some(old)) {
        let _ = docker_within(&["rmi", &old], CALL_LIMIT);
    }
    eprintln!(
        "docker tests: base image and {IMAGE} ready in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(None)
}

fn image_id(image: &str) -> Option<String> {
    docker_within(
        &["image", "inspect", "--format", "{{.Id}}", image],
        CALL_LIMIT,
    )
    .ok()
    .filter(Ran::ok)
    .map(|r| r.out().trim().to_string())
}

/// A uniquely named container, removed when dropped.
struct Container {
    name: String,
}

impl Container {
    fn new(what: &str) -> Container {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Container {
            name: format!(
                "polymr-test-{what}-{}-{}-{nanos:x}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
        }
    }

    /// `docker run --name NAME OPTIONS IMAGE ARGS`, waited for, with a deadline.
    fn run(&self, options: &[String], args: &[&str]) -> Ran {
        let mut all: Vec<&str> = vec!["run", "--name", &self.name];
        all.extend(options.iter().map(String::as_str));
        all.push(IMAGE);
        all.extend_from_slice(args);
        docker_within(&all, RUN_LIMIT).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_within(&["rm", "-f", &self.name], CALL_LIMIT);
    }
}

/// Options so that the container may write into a directory of the test's: as root, the
/// image's own `worker` user writes into a world-writable directory; as anyone else, the
/// container runs with the test's uid (whose files the test can then read).
fn writable_by_container(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    user_options(dir)
}

fn user_options(dir: &Path) -> Vec<String> {
    let meta = std::fs::metadata(dir).expect("stat");
    if meta.uid() == 0 {
        vec![]
    } else {
        vec!["--user".into(), format!("{}:{}", meta.uid(), meta.gid())]
    }
}

fn mount(host: &Path, container: &str, ro: bool) -> [String; 2] {
    [
        "-v".into(),
        format!(
            "{}:{container}{}",
            host.display(),
            if ro { ":ro" } else { "" }
        ),
    ]
}

fn opts<const N: usize>(groups: [&[String]; N]) -> Vec<String> {
    groups.iter().flat_map(|g| g.iter().cloned()).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The bundled sample's expected result, in the original form's `OS count` lines.
fn expected_result() -> String {
    std::fs::read_to_string(repo().join("examples/expected_os_counts.tsv"))
        .expect("expected_os_counts.tsv")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{}\n", l.replacen('\t', " ", 1)))
        .collect()
}

/// OS → count of an original-form (`OS 1`) map output.
fn os_counts(map_output: &str) -> std::collections::BTreeMap<String, u64> {
    count_keys(map_output, ' ')
}

fn sample_files() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                let rel = p.strip_prefix(base).expect("prefix");
                out.push((rel.to_string_lossy().into_owned(), p));
            }
        }
    }
    let base = repo().join("examples/data");
    let mut v = vec![];
    walk(&base, &base, &mut v);
    v
}

#[test]
fn image_runs_map_tasks_and_a_reduce_task_over_input_task_ids() {
    let Some(_) = image() else { return };
    let t = TestContext::new();
    let data = repo().join("examples/data");

    // Two map tasks, as two containers, over the two halves of the sample.
    for (task, part) in [("task-a", "saved-session"), ("task-b", "idle-daily")] {
        let out = t.path(&format!("artifacts/{task}"));
        let c = Container::new("map");
        let r = c.run(
            &opts([
                &writable_by_container(&out),
                &mount(&data, "/data", true),
                &mount(&out, "/home/worker", false),
            ]),
            &["map", &format!("/data/{part}")],
        );
        assert!(r.ok(), "map task {task} failed: {}", r.describe());
        let report = t.report(&format!("artifacts/{task}/result.txt.report.json"));
        assert!(report.is_object(), "{report}");
        assert!(
            t.read(&format!("artifacts/{task}/result.txt"))
                .lines()
                .all(|l| l.ends_with(" 1")),
            "map output of {task} is not `OS 1` lines"
        );
    }
    let mut both = t.read("artifacts/task-a/result.txt");
    both.push_str(&t.read("artifacts/task-b/result.txt"));
    let expected: std::collections::BTreeMap<String, u64> = expected_result()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("OS count");
            (k.to_string(), v.parse().expect("count"))
        })
        .collect();
    assert_eq!(os_counts(&both), expected, "map outputs");

    // The reduce task, the original's way: map task ids in INPUT_TASK_IDS, their artifacts
    // over HTTP (here from the host, hence the host network).
    let server = StaticServer::start(t.path("artifacts"));
    let out = t.path("reduce");
    let c = Container::new("reduce");
    let r = c.run(
        &opts([
            &writable_by_container(&out),
            &mount(&out, "/home/worker", false),
            &strs(&[
                "--network",
                "host",
                "-e",
                "INPUT_TASK_IDS=task-a task-b",
                "-e",
                &format!(
                    "POLYMR_ARTIFACT_URL=http://127.0.0.1:{}/{{taskId}}/result.txt",
                    server.port
                ),
            ]),
        ]),
        &["reduce"],
    );
    assert!(r.ok(), "reduce task failed: {}", r.describe());
    let reduced = t.read("reduce/result.txt");
    assert_eq!(reduced, expected_result());
    assert!(t.report("reduce/result.txt.report.json").is_object());

    // The same as a whole job on this machine.
    t.cmd()
        .args(["run", "--config"])
        .arg(repo().join("analysis-tools.yml"))
        .args(["--output", "local.txt"])
        .arg(&data)
        .assert()
        .success();
    assert_eq!(reduced, t.read("local.txt"));
}

#[test]
fn image_map_task_reads_s3_and_uploads_its_result() {
    let Some(_) = image() else { return };
    let s3 = S3Server::start();
    let (rt, client) = s3_client(&s3.endpoint());
    create_bucket(&rt, &client, "bucket");
    for (rel, path) in sample_files() {
        put(
            &rt,
            &client,
            "bucket",
            &format!("sample/{rel}"),
            std::fs::read(path).expect("read"),
        );
    }
    let c = Container::new("s3");
    let r = c.run(
        &strs(&[
            "--network",
            "host",
            "-e",
            "AWS_ACCESS_KEY_ID=test",
            "-e",
            "AWS_SECRET_ACCESS_KEY=test",
            "-e",
            "AWS_REGION=us-east-1",
        ]),
        &[
            "map",
            "--s3-endpoint",
            &s3.endpoint(),
            "--output",
            "s3://bucket/out/result.txt",
            "s3://bucket/sample/",
        ],
    );
    assert!(r.ok(), "map task over S3 failed: {}", r.describe());
    let result = String::from_utf8(get(&rt, &client, "bucket", "out/result.txt")).expect("utf-8");
    let expected: std::collections::BTreeMap<String, u64> = expected_result()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("OS count");
            (k.to_string(), v.parse().expect("count"))
        })
        .collect();
    assert_eq!(os_counts(&result), expected);
    let report: serde_json::Value =
        serde_json::from_slice(&get(&rt, &client, "bucket", "out/result.txt.report.json"))
            .expect("report is JSON");
    assert!(report.is_object(), "{report}");
}

#[test]
fn image_runs_a_whole_javascript_job_with_the_base_images_node() {
    let Some(_) = image() else { return };
    let t = TestContext::new();
    // The image's own scripts, by absolute path, run by the base image's Node.
    t.write(
        "job/analysis-tools.yml",
        "mapper:\n  language: javascript\n  script: /etc/custom-mappers/os_count.js\n\
         reducer:\n  language: javascript\n  script: /etc/custom-reducers/reducer.js\n\
         record_format: telemetry\nkey_separator: \" \"\n",
    );
    std::fs::set_permissions(t.path("job"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = t.path("out");
    let r = Container::new("js-run").run(
        &opts([
            &writable_by_container(&out),
            &mount(&out, "/home/worker", false),
            &mount(&t.path("job"), "/job", true),
            &mount(&repo().join("examples/data"), "/data", true),
        ]),
        &[
            "run",
            "--config",
            "/job/analysis-tools.yml",
            "--mappers",
            "2",
            "/data",
        ],
    );
    assert!(r.ok(), "polymr run in a container failed: {}", r.describe());
    assert_eq!(t.read("out/result.txt"), expected_result());
}

#[test]
fn image_python_imports_the_pinned_orjson() {
    let Some(_) = image() else { return };
    // The Python helper parses JSON with orjson when it imports: `make base-image` puts the
    // pinned wheel into the image's Python (Debian has no package for it).
    let r = Container::new("orjson").run(
        &strs(&["--entrypoint", "python3"]),
        &["-c", "import orjson; print(orjson.__version__)"],
    );
    assert!(
        r.ok(),
        "python3 -c 'import orjson' failed in the image: {}",
        r.describe()
    );
    assert_eq!(r.out().trim(), "3.13.0");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push(p);
            }
        }
    }
    out
}

fn assert_no_secret(what: &str, bytes: &[u8]) {
    for needle in [SECRET, SECRET_KEY_ID] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` (a decrypted credential) found in {what}"
        );
    }
}

#[test]
fn image_keeps_decrypted_credentials_out_of_env_logs_and_files() {
    let Some(_) = image() else { return };
    let t = TestContext::new();

    // The task's key pair, and its credentials encrypted as the scheduler would.
    t.cmd()
        .args(["credentials", "keygen", "--out-dir", "keys"])
        .assert()
        .success();
    t.write(
        "creds.json",
        format!(
            r#"{{"accessKeyId":"{SECRET_KEY_ID}","secretAccessKey":"{SECRET}","region":"us-east-1"}}"#
        ),
    );
    let enc = t
        .cmd()
        .args([
            "credentials",
            "encrypt",
            "--public-key",
            "keys/key.pub.pem",
            "--input",
            "creds.json",
        ])
        .output()
        .expect("encrypt");
    assert!(enc.status.success(), "{enc:?}");
    let credentials = String::from_utf8(enc.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(!credentials.is_empty() && !credentials.contains(SECRET));
    let key = t.path("keys/key.pem");
    if user_options(t.root()).is_empty() {
        // Mounted as it is, owner-only: the image's worker (uid 1000) must own it.
        std::os::unix::fs::chown(&key, Some(1000), Some(1000)).expect("chown key");
    }

    // Inputs by bare key in the original's default bucket (the default when CREDENTIALS is set).
    let s3 = S3Server::start();
    let (rt, client) = s3_client(&s3.endpoint());
    create_bucket(&rt, &client, "telemetry-published-v1");
    let sample = sample_files();
    let keys: Vec<String> = sample
        .iter()
        .take(3)
        .map(|(rel, path)| {
            let k = format!("saved_session/{rel}");
            put(
                &rt,
                &client,
                "telemetry-published-v1",
                &k,
                std::fs::read(path).expect("read"),
            );
            k
        })
        .collect();

    // A job whose mapper writes its whole environment to the output.
    t.write(
        "job/analysis-tools.yml",
        "mapper:\n  language: binary\n  script: env_dump.sh\nrecord_format: lines\n",
    );
    t.write_exec(
        "job/custom-mappers/env_dump.sh",
        "#!/bin/sh\nenv | sed 's/^/env\t/'\nprintf 'records\\t%s\\n' \"$(wc -l)\"\n",
    );
    std::fs::set_permissions(t.path("job"), std::fs::Permissions::from_mode(0o755)).unwrap();

    let base = opts([
        &user_options(t.root()),
        &mount(&key, "/run/secrets/polymr-key", true),
        &strs(&[
            "--network",
            "host",
            "-e",
            &format!("CREDENTIALS={credentials}"),
        ]),
    ]);

    // The key decrypts in the container, by the image's POLYMR_PRIVATE_KEY.
    let check = Container::new("decrypt-check");
    let r = check.run(&base, &["credentials", "decrypt-check"]);
    assert!(r.ok(), "decrypt-check failed: {}", r.describe());
    // It prints the key id and the region (its purpose), never the secret.
    assert!(
        r.out().contains(SECRET_KEY_ID) && r.out().contains("us-east-1"),
        "{}",
        r.describe()
    );
    assert!(!r.describe().contains(SECRET), "{}", r.describe());

    let c = Container::new("secrets");
    let mut args = vec![
        "map",
        "-vv",
        "--config",
        "/job/analysis-tools.yml",
        "--s3-endpoint",
    ];
    let endpoint = s3.endpoint();
    args.push(&endpoint);
    args.extend(keys.iter().map(String::as_str));
    let r = c.run(&opts([&base, &mount(&t.path("job"), "/job", true)]), &args);
    assert!(r.ok(), "map task with CREDENTIALS failed: {}", r.describe());
    assert_no_secret("the map task's output", r.describe().as_bytes());

    // Its logs.
    let logs = docker(&["logs", &c.name]);
    assert!(logs.ok(), "{}", logs.describe());
    assert_no_secret("`docker logs`", logs.describe().as_bytes());

    // Its configuration: CREDENTIALS only in the encrypted form it was given.
    let inspect = docker(&["inspect", &c.name]);
    assert!(inspect.ok(), "{}", inspect.describe());
    assert_no_secret("`docker inspect`", &inspect.stdout);
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    let env: Vec<String> = info[0]["Config"]["Env"]
        .as_array()
        .expect("Config.Env")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        env.contains(&format!("CREDENTIALS={credentials}")),
        "{env:?}"
    );
    assert!(
        env.contains(&"POLYMR_PRIVATE_KEY=/run/secrets/polymr-key".to_string()),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("AWS_")), "{env:?}");

    // Its files: everything under /home/worker, and whatever else the task changed.
    let copied = t.path("copied");
    let cp = docker(&[
        "cp",
        &format!("{}:/home/worker", c.name),
        &copied.to_string_lossy(),
    ]);
    assert!(cp.ok(), "{}", cp.describe());
    let files = files_under(&copied);
    assert!(!files.is_empty(), "nothing under /home/worker");
    for f in &files {
        assert_no_secret(&f.display().to_string(), &std::fs::read(f).expect("read"));
    }
    let diff = docker(&["diff", &c.name]);
    assert!(diff.ok(), "{}", diff.describe());
    for (i, line) in diff.out().lines().enumerate() {
        let Some(path) = line.strip_prefix("A ").or_else(|| line.strip_prefix("C ")) else {
            continue;
        };
        if path.starts_with("/home/worker") || path.starts_with("/run/secrets") {
            continue;
        }
        let dest = t.path(&format!("diff/{i}"));
        std::fs::create_dir_all(&dest).expect("mkdir");
        let cp = docker(&["cp", &format!("{}:{path}", c.name), &dest.to_string_lossy()]);
        if cp.ok() {
            for f in files_under(&dest) {
                assert_no_secret(
                    &format!("{path} ({})", f.display()),
                    &std::fs::read(&f).expect("read"),
                );
            }
        }
    }

    // The mapper's environment: none of polymr's secrets, nor AWS_* variables.
    let result = std::fs::read_to_string(copied.join("result.txt")).expect("result.txt");
    let vars: Vec<&str> = result
        .lines()
        .filter_map(|l| l.strip_prefix("env\t"))
        .collect();
    assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{result}");
    for v in &vars {
        assert!(
            !v.starts_with("CREDENTIALS=")
                && !v.starts_with("POLYMR_PRIVATE_KEY=")
                && !v.starts_with("AWS_"),
            "the mapper's environment has {v}"
        );
    }
    let records: u64 = result
        .lines()
        .filter_map(|l| l.strip_prefix("records\t"))
        .map(|n| n.trim().parse::<u64>().expect("count"))
        .sum();
    assert!(records > 0, "the mapper read no records: {result}");
}

#[test]
fn image_exit_codes_follow_the_contract() {
    let Some(_) = image() else { return };
    let t = TestContext::new();
    t.write("job/bad.yml", "language: cobol\nscript: x.py\n");
    t.write(
        "job/fail.yml",
        "mapper:\n  language: binary\n  script: fail.sh\nrecord_format: lines\n",
    );
    t.write_exec("job/fail.sh", "#!/bin/sh\ncat >/dev/null\nexit 7\n");
    t.write("job/input.txt", "a\nb\n");
    std::fs::set_permissions(t.path("job"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let job = opts([&mount(&t.path("job"), "/job", true)]);

    // No arguments: the help.
    let r = Container::new("help").run(&[], &[]);
    assert!(r.ok() && r.out().contains("map"), "{}", r.describe());
    // Usage errors: 2.
    let r = Container::new("usage").run(&[], &["map"]);
    assert_eq!(r.code, Some(2), "{}", r.describe());
    let r = Container::new("bad-config")
        .run(&job, &["map", "--config", "/job/bad.yml", "/job/input.txt"]);
    assert_eq!(r.code, Some(2), "{}", r.describe());
    // CREDENTIALS but no key mounted: 2, naming where the key was looked for.
    let r = Container::new("no-key").run(
        &opts([&job, &strs(&["-e", "CREDENTIALS=eyJ2IjoyfQ=="])]),
        &["map", "/job/input.txt"],
    );
    assert_eq!(r.code, Some(2), "{}", r.describe());
    assert!(
        r.stderr.contains("/run/secrets/polymr-key"),
        "{}",
        r.describe()
    );
    // The job failed: 1.
    let r = Container::new("fail").run(
        &job,
        &["map", "--config", "/job/fail.yml", "/job/input.txt"],
    );
    assert_eq!(r.code, Some(1), "{}", r.describe());
    // The sample job of the image itself: 0.
    let r = Container::new("ok").run(&job, &["map", "--output", "/tmp/r.txt", "/job/input.txt"]);
    assert!(r.ok(), "{}", r.describe());
}
