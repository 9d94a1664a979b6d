//! The job page, in a real browser (Debian's headless Chromium): the static page `run`
//! writes beside its report, the live page of `run --ui`, hostile names and messages, a
//! 2,000-task report, and `polymr report`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser::{dump_dom, file_url, screenshot, Browser};
use crate::util::TestContext;

const SUM: &str =
    "#!/bin/sh\nexec awk -F'\\t' '{ s[$1] += $2 } END { for (k in s) print k \"\\t\" s[k] }'\n";

/// A word count whose mapper fails its first attempt (the first task it runs is retried
/// once) over three good inputs and one that is not the gzip it claims to be.
fn job_with_a_failed_input_and_a_retried_task(t: &TestContext) {
    t.write_exec(
        "map.sh",
        &format!(
            "#!/bin/sh\nif [ ! -e {flag} ]; then : > {flag}; echo 'first attempt: the mapper gives up' >&2; exit 3; fi\nexec awk '{{ print $1 \"\\t1\" }}'\n",
            flag = t.path("failed-once").display()
        ),
    );
    t.write_exec("sum.sh", SUM);
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n",
    );
    t.write("in/a.txt", "x\ny\nx\n");
    t.write("in/b.txt", "y\nz\n");
    t.write("in/c.txt", "x\n");
    t.write(
        "in/bad.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not gzip at all".as_slice(),
    );
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--mappers",
            "1",
            "--max-batch-size",
            "1",
            "--reducers",
            "2",
            "--retries",
            "2",
            "in",
        ])
        .assert()
        .success();
}

/// Each input of the report, by name: its fate as the page should show it, and its error.
fn expected_inputs(report: &Value) -> BTreeMap<String, (String, String)> {
    let mut last: BTreeMap<String, &Value> = BTreeMap::new();
    for a in report["tasks"].as_array().expect("tasks") {
        if a["kind"] == "map" {
            let id = a["attempt_id"].as_str().expect("attempt id");
            let task = id.rsplit_once('_').expect("attempt number").0.to_string();
            last.insert(task, a);
        }
    }
    let mut out = BTreeMap::new();
    for a in last.values() {
        for i in a["inputs"].as_array().expect("inputs") {
            let fate = match i["status"].as_str() {
                Some("failed") if i["records"].as_u64() > Some(0) => "partial",
                Some(s) => s,
                None => "?",
            };
            out.insert(
                i["name"].as_str().expect("name").to_string(),
                (
                    fate.to_string(),
                    i["error"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
    }
    out
}

/// The table's rows as the page shows them: name, fate, reason.
fn shown_rows(b: &mut Browser) -> Vec<(String, String, String)> {
    let rows = b.eval(
        "[...document.querySelectorAll('#inputs-body tr')].map(r => [r.cells[0].textContent, r.dataset.fate, r.cells[3].textContent])",
    );
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().expect("name").to_string(),
                r[1].as_str().expect("fate").to_string(),
                r[2].as_str().expect("reason").to_string(),
            )
        })
        .collect()
}

fn fates(b: &mut Browser) -> Vec<String> {
    shown_rows(b).into_iter().map(|r| r.1).collect()
}

#[test]
fn the_page_of_a_real_job_shows_every_input_every_attempt_and_filters_by_status() {
    let t = TestContext::new();
    job_with_a_failed_input_and_a_retried_task(&t);
    let report = t.report("result.txt.report.json");
    let page = t.path("result.txt.report.html");
    assert!(page.is_file(), "run wrote no page beside its report");
    let attempts = report["tasks"].as_array().expect("tasks");

    let mut b = Browser::launch();
    b.goto(&file_url(&page));
    assert_eq!(
        b.eval("document.getElementById('status').textContent"),
        "succeeded"
    );

    // Every input, with its fate, and the failed one's reason.
    let expected = expected_inputs(&report);
    assert_eq!(expected.len(), 4, "{report}");
    assert_eq!(expected["in/bad.gz"].0, "failed", "{report}");
    let reason = &expected["in/bad.gz"].1;
    assert!(!reason.is_empty(), "the report gives no reason: {report}");
    let shown: BTreeMap<String, (String, String)> = shown_rows(&mut b)
        .into_iter()
        .map(|(name, fate, reason)| (name, (fate, reason)))
        .collect();
    assert_eq!(shown.len(), 4);
    for (name, (fate, _)) in &expected {
        assert_eq!(
            shown.get(name).map(|s| &s.0),
            Some(fate),
            "{name}: {shown:?}"
        );
    }
    assert!(
        shown["in/bad.gz"].1.contains(reason.as_str()),
        "the failed input's reason is not shown: {shown:?}"
    );

    // One bar per attempt, named after it; the retried task has a failed and a good one.
    let bars = b.eval(
        "[...document.querySelectorAll('#timeline rect.bar')].map(r => [r.dataset.task, r.dataset.attempt, r.dataset.status])",
    );
    let bars = bars.as_array().expect("bars");
    assert_eq!(bars.len(), attempts.len(), "{bars:?}");
    let mut ids: Vec<&str> = bars.iter().filter_map(|b| b[1].as_str()).collect();
    let mut want: Vec<&str> = attempts
        .iter()
        .filter_map(|a| a["attempt_id"].as_str())
        .collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    let mut per_task: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for bar in bars {
        per_task
            .entry(bar[0].as_str().expect("task"))
            .or_default()
            .push(bar[2].as_str().expect("status"));
    }
    let retried: Vec<_> = per_task.iter().filter(|(_, s)| s.len() > 1).collect();
    assert_eq!(retried.len(), 1, "{per_task:?}");
    assert_eq!(retried[0].1, &vec!["failed", "succeeded"]);
    assert!(per_task.contains_key("reduce-00001"), "{per_task:?}");
    let failure = b.eval("document.querySelector('#failures pre.stderr').textContent");
    assert_eq!(failure, "first attempt: the mapper gives up");

    // Filtering by status, with real clicks; the address follows.
    b.click("#filter-failed");
    assert!(b.wait_for(
        "document.querySelectorAll('#inputs-body tr').length === 1",
        Duration::from_secs(10)
    ));
    assert_eq!(fates(&mut b), ["failed"]);
    assert_eq!(b.eval("location.hash"), "#status=failed");
    b.click("#filter-processed");
    assert!(b.wait_for(
        "document.querySelectorAll('#inputs-body tr').length === 3",
        Duration::from_secs(10)
    ));
    assert_eq!(fates(&mut b), ["processed"; 3]);
    b.click("#filter-partial");
    assert!(b.wait_for(
        "document.querySelectorAll('#inputs-body tr').length === 0",
        Duration::from_secs(10)
    ));
    b.click("#filter-all");
    assert!(b.wait_for(
        "document.querySelectorAll('#inputs-body tr').length === 4",
        Duration::from_secs(10)
    ));

    // Sorting by a column: records ascending, then descending.
    let records = "[...document.querySelectorAll('#inputs-body tr')].map(r => Number(r.cells[6].textContent.replace(/,/g, '')))";
    b.click("th[data-key=records]");
    let up: Vec<u64> = serde_json::from_value(b.eval(records)).expect("numbers");
    assert_eq!(up, [0, 1, 2, 3]);
    b.click("th[data-key=records]");
    let down: Vec<u64> = serde_json::from_value(b.eval(records)).expect("numbers");
    assert_eq!(down, [3, 2, 1, 0]);

    // The status filter from the address alone, with no clicking: --dump-dom.
    let dom = dump_dom(&format!("{}#status=failed", file_url(&page)));
    assert_eq!(dom.matches("data-fate=\"failed\"").count(), 1, "{dom}");
    assert_eq!(dom.matches("data-fate=\"processed\"").count(), 0);
    assert!(dom.contains("in/bad.gz"));

    screenshot(&file_url(&page), &t.path("page.png"), 1280, 1400);
}

/// A raw HTTP/1.1 request to the live server; its status line and body.
fn http(addr: &str, method: &str, path: &str, host: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the live page");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer.lines().next().unwrap_or("").to_string();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A `polymr run` that a failed assertion must not leave waiting on its mapper: stopped as
/// a person would (SIGTERM, so it stops its children), killed if that does not do.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_live_page_shows_the_running_task_then_the_job_succeeded() {
    let t = TestContext::new();
    let release = t.path("release");
    t.write_exec(
        "map.sh",
        &format!(
            "#!/bin/sh\nwhile [ ! -e {} ]; do sleep 0.05; done\nexec awk '{{ print $1 \"\\t1\" }}'\n",
            release.display()
        ),
    );
    t.write_exec("sum.sh", SUM);
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n",
    );
    t.write("in/a.txt", "x\ny\nx\n");
    let mut child = t
        .std_cmd()
        .args(["run", "--ui", "--config", "c.yml", "in"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start polymr");
    let stderr = child.stderr.take().expect("stderr");
    let mut child = Stopped(child);
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    let start = Instant::now();
    while url.is_none() && start.elapsed() < Duration::from_secs(60) {
        if let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
            url = line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(str::to_string);
        }
    }
    let url = url.expect("polymr printed no URL for the live page");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "binds loopback: {url}");

    let mut b = Browser::launch();
    b.goto(&url);
    assert!(
        b.wait_for(
            "document.getElementById('status').dataset.status === 'running' && document.querySelector('#timeline rect.bar.running[data-task=\"map-00000\"]')",
            Duration::from_secs(60)
        ),
        "the page never showed the map task running"
    );

    // Read-only: nothing but GET is answered; a foreign Host is refused.
    for (method, path) in [
        ("POST", "/report.json"),
        ("PUT", "/"),
        ("DELETE", "/report.json"),
    ] {
        let (status, _) = http(&addr, method, path, &addr);
        assert!(status.contains(" 405 "), "{method} {path}: {status}");
    }
    let (status, _) = http(&addr, "GET", "/report.json", "evil.example");
    assert!(status.contains(" 421 "), "{status}");
    let (status, body) = http(&addr, "GET", "/report.json", &addr);
    assert!(status.contains(" 200 "), "{status}");
    let live: Value = serde_json::from_str(&body).expect("the live report is JSON");
    assert_eq!(live["live"], json!(true));
    assert_eq!(live["running"][0]["id"], "map-00000");

    std::fs::write(&release, "").expect("release the mapper");
    assert!(
        b.wait_for(
            "document.getElementById('status').dataset.status === 'succeeded'",
            Duration::from_secs(60)
        ),
        "the page never reached `succeeded`"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline rect.bar.running').length"),
        0
    );
    let status = crate::util::wait_with_deadline(&mut child.0, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert!(t.path("result.txt.report.html").is_file());
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the server is still up after the job"
    );
}

#[test]
fn hostile_names_errors_and_stderr_are_shown_as_text_never_run() {
    let t = TestContext::new();
    let payload = "</script><script>window.pwned=3;document.title='PWNED'</script>";
    let lines =
        format!("{payload}\n<img src=x onerror=window.pwned=4>\nit's \"quoted\" & \u{2028}split\n");
    t.write("stderr.txt", &lines);
    t.write_exec(
        "map.sh",
        &format!(
            "#!/bin/sh\ncat >/dev/null\ncat {} >&2\nexit 3\n",
            t.path("stderr.txt").display()
        ),
    );
    t.write("c.yml", "mapper: {language: binary, script: map.sh}\n");
    let names = [
        "in/<img src=x onerror=\"window.pwned=1\">.txt",
        "in/<script>window.pwned=2<\\script>'\"&amp;.txt",
    ];
    for n in names {
        t.write(n, "a\n");
    }
    t.cmd()
        .args(["run", "--config", "c.yml", "--retries", "0", "in"])
        .assert()
        .code(1);
    let report = t.report("result.txt.report.json");
    let tail = report["tasks"][0]["child"]["stderr_tail"].clone();
    assert_eq!(tail[0], payload, "{report}");

    let mut b = Browser::launch();
    b.goto(&file_url(&t.path("result.txt.report.html")));
    assert_eq!(b.eval("typeof window.pwned"), "undefined");
    assert!(!b.eval("document.title").to_string().contains("PWNED"));
    assert_eq!(
        b.eval("document.querySelectorAll('#app img, #app script').length"),
        0
    );
    assert_eq!(b.eval("document.scripts.length"), 3, "only the page's own");
    let shown: Vec<String> = shown_rows(&mut b).into_iter().map(|r| r.0).collect();
    for n in names {
        assert!(
            shown.iter().any(|s| s == n),
            "{n} not shown as text: {shown:?}"
        );
    }
    let stderr = b.eval("document.querySelector('#failures pre.stderr').textContent");
    let stderr = stderr.as_str().expect("stderr text");
    assert!(stderr.starts_with(payload), "{stderr}");
    assert!(
        stderr.contains("it's \"quoted\" & \u{2028}split"),
        "{stderr}"
    );
    assert_eq!(
        b.eval("document.getElementById('status').textContent"),
        "failed"
    );
}

#[test]
fn the_page_of_a_2000_task_job_loads() {
    let t = TestContext::new();
    t.write_exec("map.sh", "#!/bin/sh\nexec awk '{ print $1 \"\\t1\" }'\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nrecord_format: lines\n",
    );
    t.write("in/a.txt", "x\n");
    t.cmd()
        .args(["run", "--config", "c.yml", "in"])
        .assert()
        .success();
    // 2,000 attempts made from the real one: a job of 2,000 map tasks, one input each.
    let mut report = t.report("result.txt.report.json");
    let one = report["tasks"][0].clone();
    let base = one["started_at_unix_ms"].as_u64().expect("start");
    let id = one["attempt_id"].as_str().expect("attempt id");
    let prefix = &id[..id.len() - "m_000000_0".len()];
    let tasks: Vec<Value> = (0..2000u64)
        .map(|i| {
            let mut a = one.clone();
            a["attempt_id"] = json!(format!("{prefix}m_{i:06}_0"));
            a["started_at_unix_ms"] = json!(base + i * 7);
            a["duration_ms"] = json!(40 + (i % 37) * 3);
            a["inputs"][0]["name"] = json!(format!("in/part-{i:05}.txt"));
            a
        })
        .collect();
    report["tasks"] = json!(tasks);
    report["map_tasks"] = json!(2000);
    report["totals"]["files"] = json!(2000);
    report["totals"]["files_processed"] = json!(2000);
    t.write("big.json", serde_json::to_vec(&report).expect("json"));
    t.cmd()
        .args(["report", "big.json", "--html", "big.html"])
        .assert()
        .success();

    let mut b = Browser::launch();
    let start = Instant::now();
    b.goto(&file_url(&t.path("big.html")));
    let elapsed = start.elapsed();
    let render = b.eval("document.documentElement.getAttribute('data-render-ms')");
    let render = render.as_str().unwrap_or("?").to_string();
    eprintln!(
        "the page of a 2,000-task job loaded and drew in Chromium in {} ms (its script drew it in {render} ms)",
        elapsed.as_millis()
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline rect.bar').length"),
        2000
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#inputs-body tr').length"),
        2000
    );
}

#[test]
fn report_prints_a_summary_and_renders_a_task_report() {
    let t = TestContext::new();
    t.write_exec("map.sh", "#!/bin/sh\nexec awk '{ print $1 \"\\t1\" }'\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nrecord_format: lines\n",
    );
    t.write("in/a.txt", "x\ny\n");
    t.write(
        "in/bad.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not gzip at all".as_slice(),
    );
    t.cmd()
        .args(["map", "--config", "c.yml", "-o", "out.txt", "in"])
        .assert()
        .success();
    let out = t
        .cmd()
        .args(["report", "out.txt.report.json"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.starts_with("map task attempt_"), "{text}");
    assert!(
        text.contains("inputs: 2 (1 processed, 1 failed, 0 skipped)"),
        "{text}"
    );
    assert!(text.contains("input failed: in/bad.gz: "), "{text}");

    t.cmd()
        .args(["report", "out.txt.report.json", "--html", "task.html"])
        .assert()
        .success();
    let dom = dump_dom(&file_url(&t.path("task.html")));
    assert_eq!(dom.matches("data-fate=\"processed\"").count(), 1, "{dom}");
    assert_eq!(dom.matches("data-fate=\"failed\"").count(), 1, "{dom}");
    assert_eq!(
        dom.matches("<rect class=\"bar succeeded").count(),
        1,
        "{dom}"
    );
}

#[test]
fn report_refuses_what_is_not_a_report_naming_the_file() {
    let t = TestContext::new();
    t.write("not.json", "{\n  \"kind\": \"run\",\n  oops\n}\n");
    t.write("other.json", "{\"a\": 1}");
    for (file, says) in [
        ("missing.json", "cannot read the report `missing.json`"),
        ("not.json", "`not.json` is not JSON"),
        ("other.json", "`other.json` is not a polymr report"),
    ] {
        let out = t.cmd().args(["report", file]).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
    let out = t.cmd().args(["report", "not.json"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(!t.path("not.html").exists());
}
