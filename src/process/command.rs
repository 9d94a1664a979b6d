//! The command line and environment of a mapper, combiner or reducer child, from its step in
//! `analysis-tools.yml`. Interpreters are resolved to absolute paths before any work starts.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{JobConfig, Language, RecordFormat, Role, Step};

/// The helpers ship inside the binary, so an installed or containerised polymr never looks
/// for them on disk.
const PYTHON_HELPER: &str = include_str!("../../helpers/python/polymr_helper.py");
const JS_HELPER: &str = include_str!("../../helpers/js/polymr_helper.js");
const PYTHON_FILE: &str = "polymr_helper.py";
const JS_FILE: &str = "polymr_helper.js";

/// Environment variables never passed to user code: secrets, and settings that silently
/// slow children down (`PYTHONUNBUFFERED` turns every print into a write(2)).
const SCRUBBED_PREFIXES: &[&str] = &["AWS_", "POLYMR_PRIVATE_KEY", "PYTHONUNBUFFERED"];
const SCRUBBED_NAMES: &[&str] = &["CREDENTIALS"];

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the {role}'s interpreter `{program}` was not found on PATH (language: {language:?}); install it or set {var}")]
    MissingInterpreter {
        role: Role,
        program: String,
        language: Language,
        var: &'static str,
    },
    #[error("the {role} script `{}` is not executable (language: binary); run `chmod +x` on it", .path.display())]
    NotExecutable { role: Role, path: PathBuf },
    #[error("failed to write the helper scripts to a temporary directory")]
    HelperDir(#[source] std::io::Error),
}

/// Hadoop-style identifiers a task exposes to its children.
#[derive(Debug, Clone, Default)]
pub struct TaskEnv {
    pub job_id: String,
    pub attempt_id: String,
    pub partition: Option<usize>,
    /// Set only when the task has exactly one input: one long-lived child sees many files.
    pub input_file: Option<String>,
}

#[derive(Debug)]
pub struct ChildCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// No progress for this long fails the attempt (`--task-timeout`); `None` waits forever.
    pub timeout: Option<Duration>,
    /// Keeps the helper scripts alive for as long as the command may be spawned.
    _helpers: Option<Arc<HelperDir>>,
}

/// The embedded helpers, written to a temporary directory at most once per job: the first
/// Python or JavaScript step writes them, every later command of the job shares them.
#[derive(Debug, Clone, Default)]
pub struct Helpers(Arc<Mutex<Option<Arc<HelperDir>>>>);

impl Helpers {
    fn dir(&self) -> Result<Arc<HelperDir>, CommandError> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = slot.as_ref() {
            return Ok(dir.clone());
        }
        let dir = Arc::new(HelperDir::new().map_err(CommandError::HelperDir)?);
        *slot = Some(dir.clone());
        Ok(dir)
    }
}

/// The directory the embedded helpers are written to. It is registered as a temporary
/// path, so that the immediate exit on a second Ctrl-C removes it too.
#[derive(Debug)]
struct HelperDir(tempfile::TempDir);

impl HelperDir {
    fn new() -> std::io::Result<HelperDir> {
        let dir = tempfile::Builder::new()
            .prefix("polymr-helper-")
            .tempdir()?;
        super::registry::register_temp(dir.path());
        let helpers = HelperDir(dir);
        std::fs::write(helpers.0.path().join(PYTHON_FILE), PYTHON_HELPER)?;
        std::fs::write(helpers.0.path().join(JS_FILE), JS_HELPER)?;
        Ok(helpers)
    }
}

impl Drop for HelperDir {
    fn drop(&mut self) {
        // Removed before it is unregistered, so that no moment leaves it unaccounted for.
        let _ = std::fs::remove_dir_all(self.0.path());
        super::registry::unregister_temp(self.0.path());
    }
}

impl ChildCommand {
    pub fn program_display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Checks, without writing anything, that `step` can run: its interpreter is found, or
    /// its binary is executable.
    pub fn check(step: &Step) -> Result<(), CommandError> {
        match step.language {
            Language::Binary => check_executable(step),
            Language::Python | Language::Javascript => {
                let (program, var, _) = interpreter_of(step.language);
                resolve_interpreter(step, program, var).map(|_| ())
            }
        }
    }

    /// Builds the command for `step`, writing the job's helpers on first use.
    pub fn for_step(
        job: &JobConfig,
        step: &Step,
        task: &TaskEnv,
        helpers: &Helpers,
    ) -> Result<ChildCommand, CommandError> {
        let env = child_env(task);
        match step.language {
            Language::Binary => {
                check_executable(step)?;
                Ok(ChildCommand {
                    program: step.script.clone(),
                    args: step.arguments.iter().map(OsString::from).collect(),
                    env,
                    cwd: None,
                    timeout: job.task_timeout,
                    _helpers: None,
                })
            }
            Language::Python | Language::Javascript => {
                let (program, var, file) = interpreter_of(step.language);
                let interpreter = resolve_interpreter(step, program, var)?;
                let dir = helpers.dir()?;
                let helper = dir.0.path().join(file);
                let mut args: Vec<OsString> = vec![
                    helper.into(),
                    "--role".into(),
                    helper_role(step.role).into(),
                ];
                args.push("--script".into());
                args.push(step.script.clone().into());
                if let Some(f) = &step.function {
                    args.push("--function".into());
                    args.push(f.into());
                }
                if job.legacy {
                    args.push("--api".into());
                    args.push("legacy".into());
                }
                // The mapper's output is the job's output: the helper writes job.py's text.
                if step.role == Role::Mapper && job.reducer.is_none() {
                    args.push("--map-only".into());
                }
                args.push("--format".into());
                args.push(
                    match job.record_format {
                        RecordFormat::Telemetry => "telemetry",
                        RecordFormat::Lines => "lines",
                    }
                    .into(),
                );
                args.push("--separator".into());
                args.push(OsString::from(
                    String::from_utf8_lossy(&job.key_separator).into_owned(),
                ));
                args.push("--".into());
                args.extend(step.arguments.iter().map(OsString::from));
                Ok(ChildCommand {
                    program: interpreter,
                    args,
                    env,
                    cwd: None,
                    timeout: job.task_timeout,
                    _helpers: Some(dir),
                })
            }
        }
    }

    /// A bare command, for tests of the process layer.
    #[cfg(test)]
    pub(crate) fn for_test(program: &str, args: &[&str]) -> ChildCommand {
        ChildCommand {
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            env: Vec::new(),
            cwd: None,
            timeout: None,
            _helpers: None,
        }
    }

    /// Whether the child speaks the helper protocol (control lines on stdin).
    pub fn is_helper(&self) -> bool {
        self._helpers.is_some()
    }
}

fn helper_role(role: Role) -> &'static str {
    match role {
        Role::Mapper => "map",
        Role::Combiner => "combine",
        Role::Reducer => "reduce",
    }
}

fn check_executable(step: &Step) -> Result<(), CommandError> {
    let mode = std::fs::metadata(&step.script)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if mode & 0o111 == 0 {
        return Err(CommandError::NotExecutable {
            role: step.role,
            path: step.script.clone(),
        });
    }
    Ok(())
}

/// The interpreter, the variable that overrides it, and the helper file of a language.
fn interpreter_of(language: Language) -> (&'static str, &'static str, &'static str) {
    match language {
        Language::Javascript => ("node", "POLYMR_NODE", JS_FILE),
        _ => ("python3", "POLYMR_PYTHON", PYTHON_FILE),
    }
}

fn resolve_interpreter(
    step: &Step,
    program: &str,
    var: &'static str,
) -> Result<PathBuf, CommandError> {
    let wanted = std::env::var_os(var).unwrap_or_else(|| program.into());
    which::which(&wanted)
        .or_else(|_| {
            let p = Path::new(&wanted);
            if p.is_absolute() && p.is_file() {
                Ok(p.to_path_buf())
            } else {
                Err(())
            }
        })
        .map_err(|()| CommandError::MissingInterpreter {
            role: step.role,
            program: wanted.to_string_lossy().into_owned(),
            language: step.language,
            var,
        })
}

fn child_env(task: &TaskEnv) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            !SCRUBBED_NAMES.contains(&k.as_ref())
                && !SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .collect();
    let mut set = |k: &str, v: String| env.push((k.into(), v.into()));
    set("mapreduce_job_id", task.job_id.clone());
    set("mapreduce_task_attempt_id", task.attempt_id.clone());
    if let Some(p) = task.partition {
        set("mapreduce_task_partition", p.to_string());
    }
    if let Some(f) = &task.input_file {
        set("mapreduce_map_input_file", f.clone());
    }
    // User scripts may live on a read-only image layer.
    set("PYTHONDONTWRITEBYTECODE", "1".into());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(language: Language, role: Role) -> Step {
        Step {
            language,
            role,
            script: PathBuf::from("job.py"),
            function: None,
            arguments: Vec::new(),
        }
    }

    #[test]
    fn helpers_are_written_once_per_job_and_only_when_a_step_needs_them() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("custom-mappers")).expect("mkdir");
        std::fs::write(d.path().join("custom-mappers/m.py"), "").expect("write");
        let job = JobConfig::parse(
            &d.path().join("analysis-tools.yml"),
            "language: python\nscript: m.py\n",
        )
        .expect("config");
        let helpers = Helpers::default();
        // Checking writes nothing.
        ChildCommand::check(&step(Language::Python, Role::Mapper)).expect("python3 on PATH");
        assert!(helpers.0.lock().expect("lock").is_none());
        let env = TaskEnv::default();
        let a = ChildCommand::for_step(&job, &step(Language::Python, Role::Mapper), &env, &helpers)
            .expect("mapper");
        let b =
            ChildCommand::for_step(&job, &step(Language::Python, Role::Reducer), &env, &helpers)
                .expect("reducer");
        assert_eq!(a.args[0], b.args[0], "one helper file for the job");
        let dir = PathBuf::from(&a.args[0])
            .parent()
            .expect("dir")
            .to_path_buf();
        assert!(dir.join(PYTHON_FILE).is_file() && dir.join(JS_FILE).is_file());
        drop((a, b));
        assert!(dir.is_dir(), "the job still holds its helpers");
        drop(helpers);
        assert!(!dir.exists(), "removed with the last holder");
    }

    #[test]
    fn secrets_never_reach_children() {
        // Reads the real process environment: only asserts on names this test process cannot
        // have been given by accident.
        std::env::set_var("CREDENTIALS", "secret");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret");
        std::env::set_var("PYTHONUNBUFFERED", "1");
        let env = child_env(&TaskEnv::default());
        for (k, _) in &env {
            let k = k.to_string_lossy();
            assert!(
                k != "CREDENTIALS" && !k.starts_with("AWS_") && k != "PYTHONUNBUFFERED",
                "{k}"
            );
        }
        assert!(env.iter().any(|(k, _)| k == "mapreduce_job_id"));
    }
}
