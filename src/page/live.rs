//! The live page of `polymr run --ui`: a sink of the executor's events keeps a running
//! report, and a small read-only HTTP server hands out the page and that report, which the
//! page polls. Only GET (and HEAD) are answered: nothing here changes the job.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;

use super::html::{render, Mode};
use crate::exec::events::{Event, EventSink, Phase};
use crate::plan::Plan;

/// How long the server stays up after the job ends, for a page that is watching to fetch
/// the final report once.
const LINGER: Duration = Duration::from_secs(3);

/// What the page shows while the job runs: every attempt that ended, the ones running.
pub struct LiveState {
    inner: Mutex<Inner>,
}

struct Inner {
    job_id: String,
    map_tasks: usize,
    reducers: u32,
    planned: Vec<String>,
    started_at: u128,
    /// Per phase, when it started and, once done, how long it took.
    phases: Vec<(Phase, u128, Option<u64>)>,
    /// Ended attempts of each task, serialized once as they end.
    attempts: HashMap<String, Vec<String>>,
    /// Tasks running now: which attempt, since when.
    running: HashMap<String, (usize, u128)>,
    /// The job's report once it has ended: from then on the page gets this.
    ended: Option<String>,
    polled: bool,
    served_ended: bool,
}

impl LiveState {
    pub fn new(plan: &Plan) -> Arc<LiveState> {
        let planned = plan
            .map_tasks
            .iter()
            .map(|t| t.id.clone())
            .chain(plan.reduce_tasks.iter().map(|t| t.id.clone()))
            .collect();
        Self::with_tasks(&plan.job.id, planned, plan.map_tasks.len(), plan.reducers)
    }

    /// For a job of these tasks (ids in plan order).
    fn with_tasks(
        job_id: &str,
        planned: Vec<String>,
        map_tasks: usize,
        reducers: u32,
    ) -> Arc<LiveState> {
        Arc::new(LiveState {
            inner: Mutex::new(Inner {
                job_id: job_id.to_string(),
                map_tasks,
                reducers,
                planned,
                started_at: crate::task::unix_ms(),
                phases: Vec::new(),
                attempts: HashMap::new(),
                running: HashMap::new(),
                ended: None,
                polled: false,
                served_ended: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A sink that panicked mid-update leaves a state that is still worth showing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job ended: the page gets its final report from now on.
    pub fn job_ended(&self, report: &impl serde::Serialize) {
        let json = serde_json::to_string(report).unwrap_or_else(|_| "{}".into());
        self.lock().ended = Some(json);
    }

    /// The report as the page gets it now (JSON text).
    pub fn snapshot(&self) -> String {
        let mut inner = self.lock();
        inner.polled = true;
        if let Some(ended) = &inner.ended {
            let ended = ended.clone();
            inner.served_ended = true;
            return ended;
        }
        inner.running_report()
    }
}

impl Inner {
    fn running_report(&self) -> String {
        let now = crate::task::unix_ms();
        let phase_ms = |p: Phase| {
            self.phases
                .iter()
                .find(|(q, ..)| *q == p)
                .map(|(_, start, done)| done.unwrap_or(now.saturating_sub(*start) as u64))
        };
        let running: Vec<_> = self
            .planned
            .iter()
            .filter_map(|id| self.running.get(id).map(|r| (id, r)))
            .map(|(id, (attempt, since))| {
                serde_json::json!({ "id": id, "attempt": attempt, "started_at_unix_ms": since })
            })
            .collect();
        let head = serde_json::json!({
            "polymr_version": env!("CARGO_PKG_VERSION"),
            "kind": "run",
            "live": true,
            "status": "running",
            "job_id": self.job_id,
            "map_tasks": self.map_tasks,
            "reducers": self.reducers,
            "now_unix_ms": now,
            "timings": {
                "started_at_unix_ms": self.started_at,
                "map_ms": phase_ms(Phase::Map),
                "reduce_ms": phase_ms(Phase::Reduce),
            },
            "planned_tasks": self.planned,
            "running": running,
        })
        .to_string();
        // The ended attempts are serialized already: splice them in as text.
        let tasks: Vec<&str> = self
            .planned
            .iter()
            .filter_map(|id| self.attempts.get(id))
            .flatten()
            .map(String::as_str)
            .collect();
        let mut out = String::with_capacity(
            head.len() + tasks.iter().map(|t| t.len() + 1).sum::<usize>() + 16,
        );
        out.push_str(head.strip_suffix('}').unwrap_or(&head));
        out.push_str(",\"tasks\":[");
        out.push_str(&tasks.join(","));
        out.push_str("]}");
        out
    }
}

/// The executor's events, as the live page sees them.
pub struct LiveSink(Arc<LiveState>);

impl EventSink for LiveSink {
    fn event(&mut self, event: &Event<'_>) {
        let now = crate::task::unix_ms();
        let mut s = self.0.lock();
        match event {
            Event::PhaseStarted { phase, .. } => s.phases.push((*phase, now, None)),
            Event::PhaseDone { phase, elapsed_ms } => {
                if let Some(p) = s.phases.iter_mut().find(|(q, ..)| q == phase) {
                    p.2 = Some(*elapsed_ms);
                }
            }
            Event::TaskStarted { id } => {
                s.running.insert(id.to_string(), (0, now));
            }
            Event::AttemptFailed { id, report, .. } => {
                let json = serde_json::to_string(report).unwrap_or_else(|_| "{}".into());
                let ended = s.attempts.entry(id.to_string()).or_default();
                ended.push(json);
                let next = ended.len();
                // The retry loop starts the next attempt right away, if there is one.
                s.running.insert(id.to_string(), (next, now));
            }
            Event::TaskDone { id, attempts, .. } => {
                let all = attempts
                    .iter()
                    .map(|a| serde_json::to_string(a).unwrap_or_else(|_| "{}".into()))
                    .collect();
                s.attempts.insert(id.to_string(), all);
                s.running.remove(*id);
            }
        }
    }
}

/// The server of the live page, running on the job's runtime until [`LiveServer::stop`].
pub struct LiveServer {
    url: String,
    state: Arc<LiveState>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

struct Served {
    state: Arc<LiveState>,
    /// Host headers the page may be asked under (a loopback server refuses any other, so a
    /// web page elsewhere cannot read the job through a DNS name pointed at 127.0.0.1).
    hosts: Option<Vec<String>>,
}

impl LiveServer {
    /// Listens on `addr` (`HOST:PORT`, or a bare port on 127.0.0.1).
    pub async fn start(addr: &str, state: Arc<LiveState>) -> anyhow::Result<LiveServer> {
        let addr = if addr.chars().all(|c| c.is_ascii_digit()) && !addr.is_empty() {
            format!("127.0.0.1:{addr}")
        } else {
            addr.to_string()
        };
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            crate::exit::UsageError(format!("--ui: cannot listen on `{addr}`: {e}"))
        })?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}/");
        if !local.ip().is_loopback() {
            eprintln!("polymr: warning: the live page at {url} can be reached from other machines");
        }
        let served = Arc::new(Served {
            state: state.clone(),
            hosts: local.ip().is_loopback().then(|| loopback_hosts(local)),
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/report.json", get(report))
            .with_state(served);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("the live page's server failed: {e}");
            }
        });
        Ok(LiveServer {
            url,
            state,
            stop,
            task,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn sink(&self) -> LiveSink {
        LiveSink(self.state.clone())
    }

    pub fn job_ended(&self, report: &impl serde::Serialize) {
        self.state.job_ended(report);
    }

    /// Stops the server once a watching page has had the final report (or after a short
    /// wait for it); at once when no page ever asked.
    pub async fn stop(self) {
        let since = Instant::now();
        loop {
            let (polled, served) = {
                let s = self.state.lock();
                (s.polled, s.served_ended)
            };
            if !polled || served || since.elapsed() >= LINGER {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.stop.send(());
        let mut task = self.task;
        // Graceful shutdown waits for open connections; a browser may keep one idle.
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

fn loopback_hosts(local: SocketAddr) -> Vec<String> {
    let port = local.port();
    vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        local.to_string(),
    ]
}

fn host_allowed(served: &Served, headers: &HeaderMap) -> bool {
    let Some(hosts) = &served.hosts else {
        return true;
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| hosts.iter().any(|a| a.eq_ignore_ascii_case(h)))
}

async fn page(State(served): State<Arc<Served>>, headers: HeaderMap) -> Response {
    if !host_allowed(&served, &headers) {
        return (StatusCode::MISDIRECTED_REQUEST, "unknown host\n").into_response();
    }
    let html = render(
        &served.state.snapshot(),
        &Mode::Live {
            poll: "report.json",
        },
    );
    respond("text/html; charset=utf-8", html)
}

async fn report(State(served): State<Arc<Served>>, headers: HeaderMap) -> Response {
    if !host_allowed(&served, &headers) {
        return (StatusCode::MISDIRECTED_REQUEST, "unknown host\n").into_response();
    }
    respond("application/json", served.state.snapshot())
}

fn respond(content_type: &'static str, body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TaskReport;
    use crate::task::{TaskError, TaskRef};

    fn attempt(n: u32, status: &str) -> TaskReport {
        serde_json::from_value(serde_json::json!({
            "polymr_version": "0", "kind": "map", "job_id": "j",
            "attempt_id": format!("attempt_j_m_000000_{n}"), "status": status,
            "config": "c.yml", "output": "o", "published": false, "child": null,
            "inputs": [], "totals": {"files": 0, "files_processed": 0, "files_failed": 0,
                "files_skipped": 0, "bytes_read": 0, "bytes": 0, "records": 0,
                "invalid_records": 0, "output_records": 0, "output_bytes": 0},
            "counters": {}, "started_at_unix_ms": 1, "duration_ms": 2,
            "driver_peak_rss_bytes": 0
        }))
        .expect("a task report")
    }

    fn snapshot(state: &LiveState) -> serde_json::Value {
        serde_json::from_str(&state.snapshot()).expect("the live report is JSON")
    }

    #[test]
    fn tasks_appear_as_they_start_and_update_as_they_end() {
        let state =
            LiveState::with_tasks("j", vec!["map-00000".into(), "reduce-00000".into()], 1, 1);
        let mut sink = LiveSink(state.clone());
        sink.event(&Event::PhaseStarted {
            phase: Phase::Map,
            tasks: 1,
        });
        sink.event(&Event::TaskStarted { id: "map-00000" });
        let s = snapshot(&state);
        assert_eq!(s["live"], true);
        assert_eq!(s["status"], "running");
        assert_eq!(s["running"][0]["id"], "map-00000");
        assert_eq!(s["running"][0]["attempt"], 0);
        assert_eq!(s["tasks"].as_array().map(Vec::len), Some(0));

        let failed = attempt(0, "failed");
        let error = TaskError::ChildFailed {
            exit: None,
            message: "boom".into(),
        };
        sink.event(&Event::AttemptFailed {
            id: "map-00000",
            report: &failed,
            error: &error,
        });
        let s = snapshot(&state);
        assert_eq!(s["running"][0]["attempt"], 1, "the retry runs");
        assert_eq!(s["tasks"][0]["status"], "failed");

        let attempts = [failed, attempt(1, "succeeded")];
        sink.event(&Event::TaskDone {
            task: TaskRef::Map(0),
            id: "map-00000",
            attempts: &attempts,
            resumed: false,
            outcome: None,
            succeeded: true,
        });
        sink.event(&Event::PhaseDone {
            phase: Phase::Map,
            elapsed_ms: 42,
        });
        let s = snapshot(&state);
        assert_eq!(s["running"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            s["tasks"].as_array().map(Vec::len),
            Some(2),
            "each attempt once"
        );
        assert_eq!(s["timings"]["map_ms"], 42);
        assert_eq!(s["timings"]["reduce_ms"], serde_json::Value::Null);

        state.job_ended(&serde_json::json!({"kind": "run", "status": "succeeded"}));
        assert!(!state.lock().served_ended);
        assert_eq!(snapshot(&state)["status"], "succeeded");
        assert!(state.lock().served_ended);
    }
}
