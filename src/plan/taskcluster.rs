//! The plan as the original's task graph for a Taskcluster queue (`polymr plan --emit
//! taskcluster`): one docker-worker task per map task, running the container contract
//! (`map URL...`), and a reduce task that depends on all of them and reads their
//! `public/result.txt` artifacts through `INPUT_TASK_IDS`, as telemetry-analysis-base ran.
//!
//! Pure: the caller hands in the clock and the id source, so the graph is testable; nothing
//! here reads a file or the environment. The payloads follow docker-worker's published schema
//! (`tools/d2g/schemas/docker-worker/v1/payload.yml` in taskcluster/taskcluster), the task
//! definitions the queue's `create-task-request`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde::Serialize;

use super::{MapTaskPlan, Plan};

/// The image `make image` builds.
pub const DEFAULT_IMAGE: &str = "polymr:latest";
/// Where docker-worker runs a task (the image's `WORKDIR`, user `worker`).
const HOME: &str = "/home/worker";
/// The artifact every task publishes its output as: the reduce task reads the map tasks'.
pub const RESULT_ARTIFACT: &str = "public/result.txt";
/// The task's report, beside its output (`TaskReport::path_for`).
pub const REPORT_ARTIFACT: &str = "public/result.txt.report.json";
/// The queue refuses a deadline further ahead than this (its `maxTaskDeadlineDays` default).
pub const MAX_DEADLINE: Duration = Duration::from_secs(5 * 24 * 3600);
/// docker-worker's own limit on `maxRunTime` until its schema moved to d2g (2024); d2g
/// dropped it, but a task cannot usefully outlive a day-long deadline either.
pub const MAX_RUN_TIME: Duration = Duration::from_secs(24 * 3600);
/// Limits of the queue's `task-metadata` schema.
const NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 32768;
const OWNER_MAX: usize = 255;
const SOURCE_MAX: usize = 4096;
/// `dependencies` holds at most this many task ids (the queue's `max-task-dependencies`).
const MAX_DEPENDENCIES: usize = 10_000;

/// Everything the graph is made from besides the plan: the options, resolved.
#[derive(Debug, Clone)]
pub struct TaskclusterOptions {
    pub root_url: String,
    pub provisioner_id: String,
    pub worker_type: String,
    pub image: String,
    pub owner: String,
    pub deadline: Duration,
    pub max_run_time: Duration,
    pub expires: Duration,
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    /// An encrypted `CREDENTIALS` value (checked by the caller), handed to the map tasks.
    pub credentials: Option<String>,
    /// `--s3-endpoint`, handed on to the map tasks when the plan was made with one.
    pub s3_endpoint: Option<String>,
}

/// A graph that cannot be made from these options or this plan.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("--{flag} {value:?}: {why}")]
    Option {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("--emit taskcluster needs inputs a worker can fetch (s3:// or http(s)://): `{0}` is a local file")]
    LocalInput(String),
    #[error("--emit taskcluster: input `{name}` cannot be read: {why}")]
    MissingInput { name: String, why: String },
    #[error("--emit taskcluster makes one reduce task, as the original did; this plan has {0} reducers (use --reducers 1)")]
    Reducers(u32),
    #[error("--emit taskcluster: the plan has no map task (no inputs)")]
    NoTasks,
    #[error("--emit taskcluster: {0} map tasks, more than the {MAX_DEPENDENCIES} dependencies a task may have (raise --max-batch-size)")]
    TooManyTasks(usize),
}

/// The graph: task definitions in the order they must be created (a task's dependencies
/// before it), and where the Taskcluster UI shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskGraph {
    pub root_url: String,
    pub task_group_id: String,
    pub task_group_url: String,
    pub tasks: Vec<GraphTask>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphTask {
    pub task_id: String,
    /// The body of the queue's `createTask` call for `task_id`.
    pub task: TaskDefinition,
}

/// A `create-task-request` of the queue.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub provisioner_id: String,
    pub worker_type: String,
    pub scheduler_id: String,
    pub task_group_id: String,
    pub dependencies: Vec<String>,
    pub requires: String,
    pub created: String,
    pub deadline: String,
    pub expires: String,
    pub payload: Payload,
    pub metadata: Metadata,
    pub tags: BTreeMap<String, String>,
    pub extra: serde_json::Value,
}

/// A docker-worker payload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub max_run_time: u64,
    pub artifacts: BTreeMap<String, Artifact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    pub expires: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub name: String,
    pub description: String,
    pub owner: String,
    pub source: String,
}

/// What every task of one graph shares.
struct Common<'a> {
    opts: &'a TaskclusterOptions,
    plan: &'a Plan,
    group: String,
    created: String,
    deadline: String,
    expires: String,
    name: String,
    description: String,
    source: String,
}

impl TaskclusterOptions {
    /// Checks every option against what the queue and docker-worker accept, so a graph that
    /// is printed is a graph the queue takes.
    pub fn check(&self) -> Result<(), EmitError> {
        let bad = |flag: &'static str, value: &str, why: &str| EmitError::Option {
            flag,
            value: value.to_string(),
            why: why.to_string(),
        };
        if !is_http_url(&self.root_url) {
            return Err(bad("root-url", &self.root_url, "want an http(s):// URL"));
        }
        // The queue's provisionerid-pattern and workertype-pattern.
        let p = &self.provisioner_id;
        if p.is_empty()
            || p.len() > 38
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("provisioner-id", p, "want 1 to 38 of A-Z a-z 0-9 - _"));
        }
        if !is_worker_type(&self.worker_type) {
            return Err(bad(
                "worker-type",
                &self.worker_type,
                "want 1 to 38 of a-z 0-9 -, starting with a letter and not ending with -",
            ));
        }
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err(bad(
                "image",
                &self.image,
                "want an image name such as polymr:latest",
            ));
        }
        if self.owner.trim().is_empty()
            || self.owner.len() > OWNER_MAX
            || self.owner.chars().any(char::is_control)
        {
            return Err(bad(
                "owner",
                &self.owner,
                "want the owner's email address (at most 255 bytes)",
            ));
        }
        if self.deadline.is_zero() || self.deadline > MAX_DEADLINE {
            return Err(bad(
                "deadline",
                &format!("{}s", self.deadline.as_secs()),
                "the queue takes a deadline from 1s to 5 days ahead",
            ));
        }
        if self.max_run_time < Duration::from_secs(1) || self.max_run_time > MAX_RUN_TIME {
            return Err(bad(
                "max-run-time",
                &format!("{}s", self.max_run_time.as_secs()),
                "want 1s to 24h",
            ));
        }
        if self.expires < self.deadline {
            return Err(bad(
                "expires",
                &format!("{}s", self.expires.as_secs()),
                "the queue wants tasks (and their artifacts) to expire after their deadline",
            ));
        }
        if let Some(s) = &self.source {
            // The queue's source-pattern rules out data: and javascript: links.
            if !(is_http_url(s) || s.starts_with("ssh://") || s.starts_with("git@"))
                || s.len() > SOURCE_MAX
            {
                return Err(bad(
                    "source",
                    s,
                    "want an https://, http://, ssh:// or git@ link of at most 4096 bytes",
                ));
            }
        }
        if self.name.as_ref().is_some_and(|n| n.len() > NAME_MAX - 32) {
            return Err(bad("name", "…", "at most 223 bytes"));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.len() > DESCRIPTION_MAX - 512)
        {
            return Err(bad("description", "…", "at most 32256 bytes"));
        }
        Ok(())
    }

    fn root(&self) -> &str {
        self.root_url.trim_end_matches('/')
    }

    /// The URL template of a task's result artifact, as `polymr reduce --artifact-url` takes it.
    pub fn artifact_url_template(&self) -> String {
        format!(
            "{}/api/queue/v1/task/{{taskId}}/artifacts/{RESULT_ARTIFACT}",
            self.root()
        )
    }

    /// Where the Taskcluster UI shows a task group.
    pub fn task_group_url(&self, group: &str) -> String {
        format!("{}/tasks/groups/{group}", self.root())
    }
}

/// The graph of `plan`: its map tasks, then (unless the job is map-only) its reduce task.
/// `now` is the tasks' `created`; `new_id` gives a fresh slugid per call.
pub fn graph(
    plan: &Plan,
    opts: &TaskclusterOptions,
    now: SystemTime,
    new_id: &mut dyn FnMut() -> String,
) -> Result<TaskGraph, EmitError> {
    opts.check()?;
    check_plan(plan)?;
    let group = new_id();
    let common = Common {
        opts,
        plan,
        created: rfc3339(now),
        deadline: rfc3339(now + opts.deadline),
        expires: rfc3339(now + opts.expires),
        name: opts
            .name
            .clone()
            .unwrap_or_else(|| format!("polymr {}", plan.job.id)),
        description: opts.description.clone().unwrap_or_else(|| {
            format!(
                "polymr job `{}`: {} files, {} bytes, in {} map tasks",
                plan.job.id,
                plan.total_files,
                plan.total_bytes,
                plan.map_tasks.len()
            )
        }),
        source: opts
            .source
            .clone()
            .unwrap_or_else(|| opts.task_group_url(&group)),
        group: group.clone(),
    };
    let mut tasks = Vec::with_capacity(plan.map_tasks.len() + 1);
    for m in &plan.map_tasks {
        tasks.push(GraphTask {
            task_id: new_id(),
            task: common.map_task(m)?,
        });
    }
    if plan.reducers == 1 {
        let map_ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
        let task_id = new_id();
        let task = common.reduce_task(&task_id, map_ids);
        tasks.push(GraphTask { task_id, task });
    }
    Ok(TaskGraph {
        root_url: opts.root().to_string(),
        task_group_url: opts.task_group_url(&group),
        task_group_id: group,
        tasks,
    })
}

fn check_plan(plan: &Plan) -> Result<(), EmitError> {
    if plan.reducers > 1 {
        return Err(EmitError::Reducers(plan.reducers));
    }
    if plan.map_tasks.is_empty() {
        return Err(EmitError::NoTasks);
    }
    if plan.map_tasks.len() > MAX_DEPENDENCIES {
        return Err(EmitError::TooManyTasks(plan.map_tasks.len()));
    }
    Ok(())
}

impl Common<'_> {
    fn map_task(&self, m: &MapTaskPlan) -> Result<TaskDefinition, EmitError> {
        let mut command = vec!["map".to_string()];
        command.extend(self.task_flags());
        if let Some(e) = &self.opts.s3_endpoint {
            command.extend(["--s3-endpoint".to_string(), e.clone()]);
        }
        if self.plan.job.options.fail_fast {
            command.push("--fail-fast".into());
        }
        // `--` so that no key is ever read as a flag.
        command.push("--".into());
        for input in &m.inputs {
            command.push(remote_url(input)?);
        }
        let mut env = BTreeMap::new();
        if let Some(c) = &self.opts.credentials {
            env.insert(crate::credentials::ENV_VAR.to_string(), c.clone());
        }
        let what = format!(
            "map task {} of {}: {} files, {} bytes",
            m.index + 1,
            self.plan.map_tasks.len(),
            m.inputs.len(),
            m.bytes
        );
        let extra = serde_json::json!({"files": m.inputs.len(), "bytes": m.bytes});
        Ok(self.task(&m.id, &what, Vec::new(), command, env, extra))
    }

    fn reduce_task(&self, own_id: &str, map_ids: Vec<String>) -> TaskDefinition {
        let mut command = vec!["reduce".to_string()];
        command.extend(self.task_flags());
        let env = BTreeMap::from([
            ("INPUT_TASK_IDS".to_string(), map_ids.join(" ")),
            ("REDUCER_ID".to_string(), own_id.to_string()),
            (
                "POLYMR_ARTIFACT_URL".to_string(),
                self.opts.artifact_url_template(),
            ),
            ("OWNER".to_string(), self.opts.owner.clone()),
        ]);
        let what = format!(
            "the reduce task, over the results of {} map tasks",
            map_ids.len()
        );
        let id = super::reduce_id(0);
        self.task(&id, &what, map_ids, command, env, serde_json::json!({}))
    }

    /// What `map` and `reduce` share: the output every artifact names, and the job's limits.
    fn task_flags(&self) -> Vec<String> {
        let o = &self.plan.job.options;
        vec![
            "--output".into(),
            format!("{HOME}/result.txt"),
            "--max-record-size".into(),
            o.max_record_size.to_string(),
            "--task-timeout".into(),
            format!("{}ms", o.task_timeout_ms),
        ]
    }

    fn task(
        &self,
        plan_id: &str,
        what: &str,
        dependencies: Vec<String>,
        command: Vec<String>,
        env: BTreeMap<String, String>,
        mut extra: serde_json::Value,
    ) -> TaskDefinition {
        let artifact = |file: &str| Artifact {
            kind: "file".into(),
            path: format!("{HOME}/{file}"),
            expires: self.expires.clone(),
        };
        let artifacts = BTreeMap::from([
            (RESULT_ARTIFACT.to_string(), artifact("result.txt")),
            (
                REPORT_ARTIFACT.to_string(),
                artifact("result.txt.report.json"),
            ),
        ]);
        extra["job"] = self.plan.job.id.clone().into();
        extra["task"] = plan_id.into();
        extra["configSha256"] = self.plan.job.config_sha256.clone().into();
        TaskDefinition {
            provisioner_id: self.opts.provisioner_id.clone(),
            worker_type: self.opts.worker_type.clone(),
            scheduler_id: "-".into(),
            task_group_id: self.group.clone(),
            dependencies,
            requires: "all-completed".into(),
            created: self.created.clone(),
            deadline: self.deadline.clone(),
            expires: self.expires.clone(),
            payload: Payload {
                image: self.opts.image.clone(),
                command,
                env,
                max_run_time: self.opts.max_run_time.as_secs(),
                artifacts,
            },
            metadata: Metadata {
                name: format!("{} {plan_id}", self.name),
                description: format!("{}\n\n{what}", self.description),
                owner: self.opts.owner.clone(),
                source: self.source.clone(),
            },
            tags: BTreeMap::from([
                ("polymr-job".to_string(), clip(&self.plan.job.id, 4096)),
                ("polymr-task".to_string(), plan_id.to_string()),
            ]),
            extra: serde_json::json!({ "polymr": extra }),
        }
    }
}

/// The URL a worker fetches an input from; a local file is refused, as no worker has it.
fn remote_url(input: &super::PlannedInput) -> Result<String, EmitError> {
    if let Some(why) = &input.missing {
        return Err(EmitError::MissingInput {
            name: input.name.clone(),
            why: why.clone(),
        });
    }
    match (&input.url, &input.path) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(p)) => Err(EmitError::LocalInput(p.display().to_string())),
        (None, None) => Err(EmitError::MissingInput {
            name: input.name.clone(),
            why: "no location".into(),
        }),
    }
}

fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

/// The queue's workertype-pattern, `^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$`.
fn is_worker_type(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 38
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A Taskcluster slugid: a random (v4) UUID as URL-safe base64 without padding, 22
/// characters. "Nice" like slugid's `nice()`: the first bit is 0, so no id starts with `-`
/// and none can be taken for a command-line flag.
pub fn slugid(rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    b[0] &= 0x7f;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// UTC time as RFC 3339 with milliseconds, as the queue writes dates (`2014-01-01T00:00:00.000Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A duration such as `90s`, `30m`, `4h`, `1d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit_secs = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit_secs).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc_with_milliseconds() {
        let t = |s: u64, ms: u64| {
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(t(0, 0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @951782400`: the leap day of a century year divisible by 400.
        assert_eq!(t(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(t(1_700_000_000, 999), "2023-11-14T22:13:20.999Z");
        assert_eq!(t(4_102_444_799, 0), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn slugids_are_nice_v4_uuids_in_url_safe_base64() {
        let mut rng = rand::thread_rng();
        for _ in 0..2000 {
            let id = slugid(&mut rng);
            assert_eq!(id.len(), 22, "{id}");
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&id)
                .expect("base64");
            assert_eq!(b[6] >> 4, 4, "{id}: version");
            assert_eq!(b[8] >> 6, 0b10, "{id}: variant");
            assert_eq!(b[0] >> 7, 0, "{id}: nice");
            assert!(!id.starts_with('-'));
        }
    }

    #[test]
    fn durations_take_seconds_to_days() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("4h"), Some(Duration::from_secs(14_400)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        for bad in ["", "h", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn worker_types_follow_the_queue_pattern() {
        for ok in [
            "a",
            "docker-worker",
            "b-1",
            "x23456789012345678901234567890123456z",
        ] {
            assert!(is_worker_type(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "1a", "a_b", "a.b", &"a".repeat(39)] {
            assert!(!is_worker_type(bad), "{bad}");
        }
    }
}
