//! `polymr spark-submit`: a job run by Apache Spark. polymr plans it, packs one archive
//! (this binary, the job's config and scripts, the plan), and hands `helpers/spark/driver.py`
//! to `spark-submit`: Spark schedules and retries the tasks and moves the sorted runs between
//! them; every task is `polymr task`, and the driver program ends the job with `polymr finish`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::cli::{RunArgs, SparkSubmitArgs};
use crate::config::JobConfig;
use crate::exit::UsageError;
use crate::plan::Plan;

/// The PySpark driver program, shipped inside this binary so that it always matches it.
const DRIVER: &str = include_str!("../../helpers/spark/driver.py");
/// The name the bundle is unpacked under on every executor (`--archives bundle.tar.gz#polymr`).
const BUNDLE_ALIAS: &str = "polymr";
/// Inside the bundle: the job's files (the config and its scripts at their relative paths).
const BUNDLE_JOB_DIR: &str = "job";
const DEFAULT_MASTER: &str = "local[*]";

/// What `polymr spark-submit` takes before `--` for itself; everything else there goes to
/// `spark-submit` unchanged.
#[derive(Debug, Default, PartialEq, Eq)]
struct SparkOptions {
    master: Option<String>,
    /// Executors run the polymr found at this path in their image; the bundle has no binary.
    no_bundle: bool,
    executor_polymr: Option<String>,
    spark_submit: Option<PathBuf>,
    /// The user's archives (`--archives`, `spark.archives`): spark-submit keeps only the last
    /// list it is given, so they go into one list with the bundle.
    archives: Vec<String>,
    /// Passed through to spark-submit.
    rest: Vec<String>,
}

/// `polymr run`'s options and inputs, after `--`.
#[derive(Debug, Parser)]
#[command(name = "polymr spark-submit [SPARK-SUBMIT OPTIONS] --")]
struct RunOptions {
    #[command(flatten)]
    run: RunArgs,
}

pub async fn spark_submit(args: SparkSubmitArgs, cancel: CancellationToken) -> anyhow::Result<u8> {
    let (spark, run) = split_args(&args.args)?;
    if run.resume.is_some() {
        return Err(UsageError(
            "--resume does not apply on Spark: Spark retries the tasks that fail".into(),
        )
        .into());
    }
    // Before planning: a missing spark-submit should not cost an S3 listing first.
    let submit = find_spark_submit(spark.spark_submit.as_deref())?;
    let settings = crate::settings::JobSettings::resolve(
        run.config.config.as_deref(),
        &run.shape,
        &run.remote,
        &run.job,
        &run.select,
        &run.inputs,
        &crate::settings::EnvSnapshot::capture(),
    )?;
    let mut planned = crate::prepare::plan_job(&settings).await?;
    planned.plan.name_paths_absolutely()?;
    let work = tempfile::Builder::new()
        .prefix(&format!("polymr-spark-{}-", planned.plan.job.id))
        .tempdir()
        .context("failed to make the driver's work directory")?;
    if work.path().as_os_str().as_encoded_bytes().contains(&b',') {
        // spark-submit splits its list of archives at commas, escaped or not.
        return Err(UsageError(format!(
            "spark-submit cannot ship a file whose path has a comma, and the bundle would be in `{}`: set TMPDIR to a directory without one",
            work.path().display()
        ))
        .into());
    }
    crate::process::register_temp(work.path());
    planned.plan.work = Some(work.path().to_path_buf());
    let code = submit_staged(
        &submit,
        &spark,
        &run,
        &planned.plan,
        &settings.job,
        work.path(),
        cancel,
    )
    .await;
    crate::process::unregister_temp(work.path());
    code
}

/// Stages the bundle in `work` and runs spark-submit; the caller owns `work`'s registration.
async fn submit_staged(
    submit: &Path,
    spark: &SparkOptions,
    run: &RunArgs,
    plan: &Plan,
    job: &JobConfig,
    work: &Path,
    cancel: CancellationToken,
) -> anyhow::Result<u8> {
    let staged = stage(work, plan, job, spark)?;
    let mut cmd = tokio::process::Command::new(submit);
    cmd.args(submit_args(spark, plan, &staged, run)?)
        .process_group(0)
        .kill_on_drop(true);
    // stdout carries data only: spark-submit's and the driver program's output (PySpark
    // merges the driver's stderr into it) is log output, so it goes to stderr.
    let stderr = std::os::fd::AsFd::as_fd(&std::io::stderr())
        .try_clone_to_owned()
        .context("failed to duplicate stderr")?;
    cmd.stdout(std::process::Stdio::from(stderr));
    if let Some(python) = venv_python(submit) {
        if std::env::var_os("PYSPARK_PYTHON").is_none() {
            cmd.env("PYSPARK_PYTHON", python);
        }
    }
    tracing::info!(spark_submit = %submit.display(), map_tasks = plan.map_tasks.len(),
        reducers = plan.reducers, "submitting to Spark");
    run_child(cmd, submit, cancel).await
}

/// Splits `[SPARK OPTIONS] -- [RUN OPTIONS] INPUT...`.
fn split_args(args: &[String]) -> anyhow::Result<(SparkOptions, RunArgs)> {
    let Some(dash) = args.iter().position(|a| a == "--") else {
        return Err(UsageError(
            "usage: polymr spark-submit [SPARK-SUBMIT OPTIONS] -- [RUN OPTIONS] INPUT...: the `--` is missing".into(),
        )
        .into());
    };
    let spark = spark_options(&args[..dash])?;
    let run = RunOptions::try_parse_from(
        std::iter::once("polymr spark-submit --".to_string())
            .chain(args[dash + 1..].iter().cloned()),
    )
    .map_err(|e| UsageError(e.to_string()))?;
    Ok((spark, run.run))
}

fn spark_options(args: &[String]) -> anyhow::Result<SparkOptions> {
    let mut o = SparkOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match flag {
            "--master" => o.master = Some(value("--master")?),
            "--no-bundle" => o.no_bundle = true,
            "--executor-polymr" => o.executor_polymr = Some(value("--executor-polymr")?),
            "--spark-submit" => o.spark_submit = Some(PathBuf::from(value("--spark-submit")?)),
            "--deploy-mode" => {
                let mode = value("--deploy-mode")?;
                refuse_cluster_mode(&mode)?;
                o.rest.extend(["--deploy-mode".to_string(), mode]);
            }
            "--archives" => o.archives.extend(list(&value("--archives")?)),
            "--conf" | "-c" => {
                let conf = value(flag)?;
                if let Some(mode) = conf.strip_prefix("spark.submit.deployMode=") {
                    refuse_cluster_mode(mode)?;
                }
                if let Some(archives) = conf.strip_prefix("spark.archives=") {
                    o.archives.extend(list(archives));
                } else {
                    o.rest.extend([flag.to_string(), conf]);
                }
            }
            _ => o.rest.push(a.clone()),
        }
    }
    if o.executor_polymr.is_some() && !o.no_bundle {
        return Err(UsageError("--executor-polymr goes with --no-bundle".into()).into());
    }
    Ok(o)
}

/// The entries of a comma-separated list of spark-submit's.
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// The driver program lays the tasks' reports out and runs `polymr finish` where it runs; in
/// cluster mode that would be a machine of the cluster, without the plan's work root or this
/// binary, and a local `--output` would land there.
fn refuse_cluster_mode(mode: &str) -> anyhow::Result<()> {
    if mode.trim() == "cluster" {
        return Err(UsageError(
            "polymr spark-submit runs its driver program in client mode (on this machine, which publishes the result and the job report): drop `--deploy-mode cluster` and submit from a machine the executors can reach (an EMR primary node, a pod in the cluster)".into(),
        )
        .into());
    }
    Ok(())
}

/// What was staged in the driver's work directory.
struct Staged {
    plan: PathBuf,
    bundle: PathBuf,
    driver: PathBuf,
    /// The config's directory inside the bundle.
    job_dir: PathBuf,
}

/// Writes the plan, the driver program and the bundle into `work`.
fn stage(
    work: &Path,
    plan: &Plan,
    job: &JobConfig,
    spark: &SparkOptions,
) -> anyhow::Result<Staged> {
    let plan_path = work.join(crate::plan::PLAN_FILE);
    let json = serde_json::to_vec_pretty(plan)?;
    crate::output::write_atomic(&plan_path, &json)
        .with_context(|| format!("failed to write `{}`", plan_path.display()))?;
    crate::exec::workdir::write_marker(work, &plan.job.id)?;
    let driver = work.join("polymr_spark_driver.py");
    std::fs::write(&driver, DRIVER)
        .with_context(|| format!("failed to write `{}`", driver.display()))?;

    let dir = tempfile::Builder::new()
        .prefix("bundle-")
        .tempdir_in(work)
        .context("failed to make the bundle's directory")?;
    std::fs::write(dir.path().join(crate::plan::PLAN_FILE), &json)?;
    if !spark.no_bundle {
        let exe = std::env::current_exe().context("cannot find this polymr binary")?;
        bundle_binary(&exe, &dir.path().join("polymr"))?;
    }
    let files = job_files(plan, job)?;
    for (from, to) in &files.scripts {
        let target = dir.path().join(BUNDLE_JOB_DIR).join(to);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, &target)
            .with_context(|| format!("failed to copy `{}` into the bundle", from.display()))?;
    }
    let config_name = plan
        .job
        .config
        .file_name()
        .context("the config has no file name")?;
    let job_dir = Path::new(BUNDLE_JOB_DIR).join(&files.config_dir);
    std::fs::create_dir_all(dir.path().join(&job_dir))?;
    std::fs::write(
        dir.path().join(&job_dir).join(config_name),
        &plan.job.config_contents,
    )?;

    let bundle = pack(dir.path(), work, bundle_compression(spark))?;
    Ok(Staged {
        plan: plan_path,
        bundle,
        driver,
        job_dir,
    })
}

/// How hard to compress the bundle. With a local master it is only copied on this disk, so
/// not at all (still a gzip file: Spark unpacks a plain `.tar` with Java, which drops the
/// executable bits); elsewhere at the fastest level: the binary is most of the bundle, and
/// level 6 takes seconds for little gain.
fn bundle_compression(spark: &SparkOptions) -> flate2::Compression {
    let master = spark.master.as_deref().unwrap_or(DEFAULT_MASTER);
    if master == "local" || master.starts_with("local[") || master.starts_with("local-cluster[") {
        flate2::Compression::none()
    } else {
        flate2::Compression::fast()
    }
}

/// Packs `dir` into `work/bundle.tar.gz`.
fn pack(dir: &Path, work: &Path, level: flate2::Compression) -> anyhow::Result<PathBuf> {
    let bundle = work.join("bundle.tar.gz");
    let mut tar = std::process::Command::new("tar");
    tar.arg("-cf").arg("-").arg("-C").arg(dir);
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?
    {
        tar.arg(entry?.file_name());
    }
    let file = std::fs::File::create(&bundle)
        .with_context(|| format!("failed to create `{}`", bundle.display()))?;
    let mut child = tar
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("failed to run `tar` to pack the bundle")?;
    let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), level);
    let copied = match child.stdout.take() {
        Some(mut out) => std::io::copy(&mut out, &mut gz).map(drop),
        None => Ok(()),
    };
    let status = child.wait().context("failed to wait for `tar`")?;
    copied
        .and_then(|()| {
            gz.finish()?
                .into_inner()
                .map_err(|e| e.into_error())
                .map(drop)
        })
        .with_context(|| format!("failed to write `{}`", bundle.display()))?;
    if !status.success() {
        anyhow::bail!("`tar` failed to pack the bundle ({status})");
    }
    Ok(bundle)
}

/// The binary without its debug information when `strip` is at hand: a release build with
/// `debug = 1` is ten times larger, and every executor downloads and unpacks the bundle.
fn bundle_binary(exe: &Path, to: &Path) -> anyhow::Result<()> {
    if let Ok(strip) = which::which("strip") {
        let stripped = std::process::Command::new(strip)
            .arg("--strip-debug")
            .arg("-o")
            .arg(to)
            .arg(exe)
            .stderr(std::process::Stdio::null())
            .status();
        if stripped.is_ok_and(|s| s.success()) {
            return Ok(());
        }
    }
    std::fs::copy(exe, to)
        .map(drop)
        .with_context(|| format!("failed to copy `{}` into the bundle", exe.display()))
}

/// The job's files in the bundle: the config and the scripts it runs (mapper, combiner,
/// reducer) under their closest common directory, at their paths relative to it, so that a
/// script the config names as `../bin/m` is still there; and the config's directory relative
/// to that root, which `polymr task --job-dir` is given.
struct JobFiles {
    /// (file on this machine, path inside the bundle's job directory)
    scripts: Vec<(PathBuf, PathBuf)>,
    config_dir: PathBuf,
}

fn job_files(plan: &Plan, job: &JobConfig) -> anyhow::Result<JobFiles> {
    let parent = plan.job.config.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let config_dir = std::fs::canonicalize(parent)
        .with_context(|| format!("cannot find the config's directory `{}`", parent.display()))?;
    let mut steps = vec![&job.mapper];
    steps.extend(job.combiner.as_ref());
    if let Some(crate::config::StepRef::Ready(r)) = &job.reducer {
        steps.push(r);
    }
    let scripts: Vec<PathBuf> = steps
        .iter()
        .map(|s| std::fs::canonicalize(&s.script).unwrap_or(s.script.clone()))
        .collect();
    let mut root = config_dir.clone();
    for s in &scripts {
        while !s.starts_with(&root) {
            if !root.pop() {
                break;
            }
        }
    }
    let inside = |p: &Path| {
        p.strip_prefix(&root)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    Ok(JobFiles {
        scripts: scripts.iter().map(|s| (s.clone(), inside(s))).collect(),
        config_dir: inside(&config_dir),
    })
}

/// spark-submit's arguments: ours, the user's, the driver program and its arguments.
fn submit_args(
    spark: &SparkOptions,
    plan: &Plan,
    staged: &Staged,
    run: &RunArgs,
) -> anyhow::Result<Vec<OsString>> {
    let mut a: Vec<OsString> = vec![
        "--master".into(),
        spark.master.as_deref().unwrap_or(DEFAULT_MASTER).into(),
        "--name".into(),
        format!("polymr {}", plan.job.id).into(),
    ];
    if !spark
        .rest
        .iter()
        .any(|r| r.contains("spark.task.maxFailures"))
    {
        // polymr's --retries become Spark's: a task fails the job after retries + 1 attempts.
        a.push("--conf".into());
        a.push(format!("spark.task.maxFailures={}", plan.job.options.retries + 1).into());
    }
    a.extend(spark.rest.iter().map(OsString::from));
    let mut archives = spark.archives.clone();
    archives.push(format!("{}#{BUNDLE_ALIAS}", file_uri(&staged.bundle)));
    a.push("--archives".into());
    a.push(archives.join(",").into());
    a.push(staged.driver.clone().into_os_string());

    let exe = std::env::current_exe().context("cannot find this polymr binary")?;
    a.push("--plan".into());
    a.push(staged.plan.clone().into_os_string());
    a.push("--polymr".into());
    a.push(exe.into_os_string());
    a.push("--bundle".into());
    a.push(BUNDLE_ALIAS.into());
    a.push("--job-dir".into());
    a.push(staged.job_dir.clone().into_os_string());
    if spark.no_bundle {
        a.push("--executor-polymr".into());
        a.push(spark.executor_polymr.as_deref().unwrap_or("polymr").into());
    }
    a.push("--launched-at".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    a.push(format!("{:.3}", now.as_secs_f64()).into());
    a.push("--task-args".into());
    a.push(serde_json::to_string(&remote_args(&run.remote))?.into());
    a.push("--finish-args".into());
    let mut finish = remote_args(&run.remote);
    for (flag, v) in [
        ("--notify-email", &run.notify.notify_email),
        ("--notify-url", &run.notify.notify_url),
    ] {
        if let Some(v) = v {
            finish.push(flag.into());
            finish.push(v.clone());
        }
    }
    a.push(serde_json::to_string(&finish)?.into());
    Ok(a)
}

/// `path` as a `file://` URI with everything but unreserved characters and `/` escaped:
/// `--archives` takes URIs with `#` before the alias, so a `#` or a space in `$TMPDIR` would
/// otherwise name another file. (A comma, even escaped, splits the list: refused earlier.)
fn file_uri(path: &Path) -> String {
    use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    format!("file://{}", percent_encode(bytes, KEEP))
}

/// The remote options every `polymr task` and `polymr finish` gets, as given.
fn remote_args(r: &crate::cli::RemoteArgs) -> Vec<String> {
    let mut a = Vec::new();
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.to_string());
            a.push(v);
        }
    };
    opt("--bucket", r.bucket.clone());
    opt("--s3-endpoint", r.s3_endpoint.clone());
    opt(
        "--parallel-downloads",
        r.parallel_downloads.map(|n| n.to_string()),
    );
    opt("--download-retries", Some(r.download_retries.to_string()));
    opt(
        "--private-key",
        r.private_key.as_ref().map(|p| {
            std::path::absolute(p)
                .unwrap_or(p.clone())
                .display()
                .to_string()
        }),
    );
    if r.keep_downloads {
        a.push("--keep-downloads".into());
    }
    a
}

/// `--spark-submit`, else `$SPARK_HOME/bin/spark-submit`, else `spark-submit` on PATH, else
/// the one `pip install pyspark` put beside the Python of the active virtual environment.
fn find_spark_submit(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return which::which(p).map_err(|e| {
            UsageError(format!(
                "--spark-submit `{}` cannot be run: {e}",
                p.display()
            ))
            .into()
        });
    }
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("SPARK_HOME") {
        candidates.push(PathBuf::from(home).join("bin/spark-submit"));
    }
    if let Ok(p) = which::which("spark-submit") {
        candidates.push(p);
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        candidates.push(PathBuf::from(venv).join("bin/spark-submit"));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        UsageError(
            "spark-submit not found: give --spark-submit PATH, set SPARK_HOME, put it on PATH, or `pip install pyspark` in the active virtual environment".into(),
        )
        .into()
    })
}

/// The Python beside a spark-submit that pip installed: it is the one that has pyspark.
fn venv_python(submit: &Path) -> Option<PathBuf> {
    let python = submit.parent()?.join("python");
    python.is_file().then_some(python)
}

/// Runs spark-submit in its own process group; a cancel stops the whole group.
async fn run_child(
    mut cmd: tokio::process::Command,
    submit: &Path,
    cancel: CancellationToken,
) -> anyhow::Result<u8> {
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to start `{}`", submit.display()))?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    if let Some(g) = pgid {
        crate::process::register_group(g);
    }
    let status = tokio::select! {
        s = child.wait() => s,
        () = cancel.cancelled() => {
            if let Some(g) = pgid {
                use nix::sys::signal::{killpg, Signal};
                let _ = killpg(nix::unistd::Pid::from_raw(g), Signal::SIGTERM);
                if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                    let _ = killpg(nix::unistd::Pid::from_raw(g), Signal::SIGKILL);
                }
            }
            child.wait().await
        }
    };
    if let Some(g) = pgid {
        crate::process::unregister_group(g);
    }
    let status = status.with_context(|| format!("failed to wait for `{}`", submit.display()))?;
    Ok(match status.code() {
        Some(0) => crate::exit::SUCCESS,
        Some(c) => u8::try_from(c).unwrap_or(crate::exit::JOB_FAILED),
        None => crate::exit::JOB_FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spark_options_are_split_from_spark_submits() {
        let o = spark_options(&strings(&[
            "--master=local-cluster[2,1,1024]",
            "--conf",
            "spark.ui.enabled=false",
            "--no-bundle",
            "--executor-polymr",
            "/usr/local/bin/polymr",
            "--executor-memory",
            "2g",
        ]))
        .expect("options");
        assert_eq!(o.master.as_deref(), Some("local-cluster[2,1,1024]"));
        assert!(o.no_bundle);
        assert_eq!(o.executor_polymr.as_deref(), Some("/usr/local/bin/polymr"));
        assert_eq!(
            o.rest,
            strings(&[
                "--conf",
                "spark.ui.enabled=false",
                "--executor-memory",
                "2g"
            ])
        );
    }

    /// The driver program lays the tasks out for `polymr finish` by names it repeats in
    /// Python: they must be ShuffleLayout's.
    #[test]
    fn the_driver_program_names_paths_as_shuffle_layout_does() {
        use crate::plan::{map_id, reduce_id, ShuffleLayout, SUCCESS};
        let dir = tempfile::tempdir().expect("tempdir");
        let driver = dir.path().join("driver.py");
        std::fs::write(&driver, DRIVER).expect("write");
        let work = dir.path().join("work");
        let script = "import importlib.util, json, os, sys\n\
            spec = importlib.util.spec_from_file_location('driver', sys.argv[1])\n\
            d = importlib.util.module_from_spec(spec)\n\
            spec.loader.exec_module(d)\n\
            w = sys.argv[2]\n\
            m = os.path.join(w, d.map_id(3))\n\
            print(json.dumps([d.map_id(3), d.reduce_id(7), m, os.path.join(m, d.SUCCESS),\n\
                os.path.join(m, d.TASK_REPORT), os.path.join(m, d.OUTCOME),\n\
                os.path.join(m, d.MAP_OUTPUT), d.reduce_output(w, 7),\n\
                d.reduce_output(w, 7) + '.report.json',\n\
                d.failed_attempt_report(w, d.map_id(3), 2)]))\n";
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&driver)
            .arg(&work)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python: Vec<String> = serde_json::from_slice(&out.stdout).expect("json");
        let layout = ShuffleLayout::new(&work);
        let m = layout.map_done_dir(&map_id(3));
        let rust: Vec<String> = [
            PathBuf::from(map_id(3)),
            PathBuf::from(reduce_id(7)),
            m.clone(),
            ShuffleLayout::success_in(&m),
            ShuffleLayout::report_in(&m),
            ShuffleLayout::outcome_in(&m),
            ShuffleLayout::map_output_in(&m),
            layout.reduce_output(7),
            layout.reduce_report(7),
            layout.failed_attempt_report(&map_id(3), 2),
        ]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
        assert_eq!(python, rust);
        assert!(rust.iter().any(|p| p.ends_with(SUCCESS)));
    }

    /// Both levels give a gzip file that `tar -xzf` (Spark's unpacker for `.tar.gz`) turns
    /// back into the same tree, executable bits included.
    #[test]
    fn the_bundle_unpacks_to_what_was_packed_at_either_level() {
        use std::os::unix::fs::PermissionsExt;
        for level in [flate2::Compression::none(), flate2::Compression::fast()] {
            let src = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir_all(src.path().join("job/bin")).expect("mkdir");
            let exe = src.path().join("job/bin/m ap.sh");
            std::fs::write(&exe, "#!/bin/sh\nexec cat\n").expect("write");
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::write(src.path().join("plan.json"), vec![b'x'; 300_000]).expect("write");
            let work = tempfile::tempdir().expect("tempdir");
            let bundle = pack(src.path(), work.path(), level).expect("pack");
            let out = tempfile::tempdir().expect("tempdir");
            let status = std::process::Command::new("tar")
                .arg("-xzf")
                .arg(&bundle)
                .arg("-C")
                .arg(out.path())
                .status()
                .expect("tar");
            assert!(status.success());
            let mode = std::fs::metadata(out.path().join("job/bin/m ap.sh"))
                .expect("unpacked")
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111, "{mode:o}");
            assert_eq!(
                std::fs::read(out.path().join("plan.json")).expect("plan"),
                vec![b'x'; 300_000]
            );
            let size = std::fs::metadata(&bundle).expect("bundle").len();
            if level == flate2::Compression::none() {
                assert!(size > 300_000, "{size}");
            } else {
                assert!(size < 10_000, "not compressed: {size}");
            }
        }
    }

    #[test]
    fn archive_uris_escape_what_spark_submit_would_split_on() {
        assert_eq!(
            file_uri(Path::new("/tmp/a b,c#d%é/bundle.tar.gz")),
            "file:///tmp/a%20b%2Cc%23d%25%C3%A9/bundle.tar.gz"
        );
        assert_eq!(file_uri(Path::new("/t/x-1_2.~")), "file:///t/x-1_2.~");
    }

    #[test]
    fn cluster_deploy_mode_is_refused_with_the_reason() {
        for args in [
            &["--deploy-mode", "cluster"][..],
            &["--deploy-mode=cluster"],
            &["--conf", "spark.submit.deployMode=cluster"],
            &["--conf=spark.submit.deployMode=cluster"],
        ] {
            let e = spark_options(&strings(args)).expect_err("cluster mode");
            assert!(e.to_string().contains("client mode"), "{e}");
        }
        let o = spark_options(&strings(&["--deploy-mode", "client", "-c", "a=b"])).expect("ok");
        assert_eq!(o.rest, strings(&["--deploy-mode", "client", "-c", "a=b"]));
    }

    #[test]
    fn the_users_archives_are_kept_beside_the_bundle() {
        let o = spark_options(&strings(&[
            "--archives",
            "env.tar.gz#env, more.zip",
            "--conf=spark.archives=conf.tgz#c",
            "--conf",
            "spark.archivesX=1",
        ]))
        .expect("options");
        assert_eq!(
            o.archives,
            strings(&["env.tar.gz#env", "more.zip", "conf.tgz#c"])
        );
        assert_eq!(o.rest, strings(&["--conf", "spark.archivesX=1"]));
        assert!(spark_options(&strings(&["--archives"])).is_err());
    }

    #[test]
    fn a_missing_dash_dash_or_value_is_a_usage_error() {
        assert!(split_args(&strings(&["--master", "local", "in"])).is_err());
        assert!(spark_options(&strings(&["--master"])).is_err());
        assert!(spark_options(&strings(&["--executor-polymr", "/p"])).is_err());
        let (s, r) = split_args(&strings(&["--", "--reducers", "3", "in"])).expect("split");
        assert_eq!(s, SparkOptions::default());
        assert_eq!(r.shape.reducers, 3);
        assert_eq!(r.inputs, ["in"]);
    }
}
