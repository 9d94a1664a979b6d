//! Telling the owner: email received by a real SMTP server, a webhook received by a local
//! HTTP server, and a notification that fails without failing the job.

use crate::servers::*;
use crate::util::*;

fn job(t: &TestContext, fail: bool) {
    let script = if fail {
        "#!/bin/sh\ncat >/dev/null\nexit 5\n"
    } else {
        "#!/bin/sh\nexec cat\n"
    };
    t.write_exec("m.sh", script);
    t.write_exec("r.sh", "#!/bin/sh\nexec uniq -c\n");
    t.write("c.yml", "mapper: {language: binary, script: m.sh}\nreducer: {language: binary, script: r.sh}\nrecord_format: lines\n");
    t.write("in/a", "x\ny\nx\n");
}

#[test]
fn owner_gets_an_email_with_status_counts_and_link() {
    let t = TestContext::new();
    job(&t, false);
    let smtp = SmtpServer::start(t.path("maildir"));
    t.cmd()
        .env("OWNER", "owner@example.com")
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port))
        .env("REDUCER_ID", "R42xyz")
        .args(["run", "--config", "c.yml", "in"])
        .assert()
        .success();
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &unquote(&mail[0]);
    assert!(m.contains("To: owner@example.com"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("Subject:") && l.contains("succeeded")),
        "{m}"
    );
    assert!(m.contains("task/R42xyz/artifacts/public/result.txt"), "{m}");
    assert!(m.contains("3 records"), "{m}");
    let r = t.report("result.txt.report.json");
    assert_eq!(r["notifications"][0]["channel"], "email");
    assert_eq!(r["notifications"][0]["ok"], true);

    // A failed job tells the owner too.
    job(&t, true);
    t.cmd()
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port))
        .args([
            "run",
            "--config",
            "c.yml",
            "--retries",
            "0",
            "--notify-email",
            "other@example.com",
            "-o",
            "f.txt",
            "in",
        ])
        .assert()
        .code(1);
    let mail = smtp.messages();
    assert_eq!(mail.len(), 2);
    assert!(
        mail.iter()
            .any(|m| m.contains("To: other@example.com") && m.contains("FAILED")),
        "{mail:?}"
    );
}

/// Decodes a quoted-printable body (soft line breaks and `=XX` escapes).
fn unquote(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn webhook_gets_the_report_with_retries() {
    let t = TestContext::new();
    job(&t, false);
    let hook = HookServer::start(1);
    t.cmd()
        .args([
            "reduce",
            "--config",
            "c.yml",
            "--notify-url",
            &format!("http://127.0.0.1:{}/hook", hook.port),
            "in/a",
        ])
        .assert()
        .success();
    assert_eq!(
        hook.requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one refused, one accepted"
    );
    let bodies = hook.bodies.lock().expect("lock");
    let report: serde_json::Value = serde_json::from_slice(&bodies[0]).expect("JSON report");
    assert_eq!(report["kind"], "reduce");
    assert_eq!(report["status"], "succeeded");
}

#[test]
fn a_failed_notification_does_not_fail_the_job() {
    let t = TestContext::new();
    job(&t, false);
    let closed = free_port();
    let out = t
        .cmd()
        .env("OWNER", "owner@example.com")
        .env("SMTP_URL", format!("smtp://127.0.0.1:{closed}"))
        .args(["run", "--config", "c.yml", "in"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("notification") && stderr.contains("failed"),
        "{stderr}"
    );
    let r = t.report("result.txt.report.json");
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["notifications"][0]["ok"], false);
}
