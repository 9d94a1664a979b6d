//! `polymr plan --emit SCHEDULER`: the plan as a scheduler's task graph on stdout, the
//! options it needs resolved here (durations, the encrypted credentials file).

use std::io::Read;
use std::path::Path;

use anyhow::Context;

use crate::cli::{Emit, PlanArgs, TaskclusterArgs};
use crate::exit::UsageError;
use crate::plan::taskcluster::{self, TaskclusterOptions};
use crate::plan::Plan;

pub fn emit(scheduler: Emit, plan: &Plan, args: &PlanArgs) -> anyhow::Result<u8> {
    match scheduler {
        Emit::Taskcluster => emit_taskcluster(plan, args),
    }
}

fn emit_taskcluster(plan: &Plan, args: &PlanArgs) -> anyhow::Result<u8> {
    let opts = options(&args.taskcluster, args.remote.s3_endpoint.clone())?;
    let mut rng = rand::thread_rng();
    let graph = taskcluster::graph(plan, &opts, std::time::SystemTime::now(), &mut || {
        taskcluster::slugid(&mut rng)
    })
    .map_err(|e| UsageError(e.to_string()))?;
    if opts.credentials.is_none() {
        eprintln!(
            "polymr: warning: no --credentials: the map tasks get no CREDENTIALS and read S3 with whatever the worker has"
        );
    }
    if opts.image == taskcluster::DEFAULT_IMAGE {
        eprintln!(
            "polymr: note: --image {} is the local tag `make image` builds; a worker pulls the image from a registry (`make publish`)",
            opts.image
        );
    }
    let mut out = serde_json::to_vec_pretty(&graph)?;
    out.push(b'\n');
    super::write_stdout(&out)?;
    // As AF printed its monitor link: stdout stays JSON, the link goes to the person.
    eprintln!(
        "polymr: {} tasks in task group {}; create them in order (createTask), then watch: {}",
        graph.tasks.len(),
        graph.task_group_id,
        graph.task_group_url
    );
    Ok(crate::exit::SUCCESS)
}

fn options(
    args: &TaskclusterArgs,
    s3_endpoint: Option<String>,
) -> anyhow::Result<TaskclusterOptions> {
    let duration = |flag: &str, text: &str| {
        taskcluster::parse_duration(text).ok_or_else(|| {
            UsageError(format!(
                "--{flag} {text:?}: want a duration such as 90s, 30m, 4h or 2d"
            ))
        })
    };
    let owner = args.owner.clone().ok_or_else(|| {
        UsageError(
            "--emit taskcluster needs --owner EMAIL (the tasks' owner, told when the job is done)"
                .into(),
        )
    })?;
    let credentials = args
        .credentials
        .as_deref()
        .map(read_credentials)
        .transpose()?;
    Ok(TaskclusterOptions {
        root_url: args.root_url.clone(),
        provisioner_id: args.provisioner_id.clone(),
        worker_type: args.worker_type.clone(),
        image: args.image.clone(),
        owner,
        deadline: duration("deadline", &args.deadline)?,
        max_run_time: duration("max-run-time", &args.max_run_time)?,
        expires: duration("expires", &args.expires)?,
        name: args.name.clone(),
        description: args.description.clone(),
        source: args.source.clone(),
        credentials,
        s3_endpoint,
    })
}

/// The encrypted `CREDENTIALS` value in `path` (`-`: stdin), refused unless it is one.
fn read_credentials(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read --credentials from stdin")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read --credentials `{}`", path.display()))
            .map_err(|e| UsageError(format!("{e:#}")))?;
    }
    let value = text.trim().to_string();
    let what = format!("--credentials `{}`", path.display());
    crate::credentials::check_encrypted(&value, &what)
        .with_context(|| format!("{what} is not an encrypted CREDENTIALS value"))?;
    Ok(value)
}
