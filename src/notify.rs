//! Telling the owner that a job or reduce task ended, as the original emailed `OWNER`:
//! email over SMTP (`SMTP_URL`: `smtp://`, `smtp://…?tls=required` for STARTTLS, `smtps://`,
//! with optional `user:password@`), else the local `sendmail` binary, and an HTTP webhook
//! that receives the JSON report. A notification that fails is logged and reported; it never
//! turns a successful job into a failed one.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

/// The original's link to a reduce task's result, built from `REDUCER_ID`.
pub const DEFAULT_LINK_TEMPLATE: &str =
    "https://queue.taskcluster.net/v1/task/{taskId}/artifacts/public/result.txt";
const WEBHOOK_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// `--notify-email`, else `OWNER`.
    pub email: Option<String>,
    /// `SMTP_URL`; without it, `sendmail`.
    pub smtp_url: Option<String>,
    pub from: String,
    pub webhook: Option<String>,
    /// `REDUCER_ID` and the template that makes it a link.
    pub reducer_id: Option<String>,
    pub link_template: String,
}

/// What one notification did, for the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationReport {
    pub channel: String,
    pub target: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the owner is told.
pub struct Notice<'a> {
    pub job: &'a str,
    pub kind: &'a str,
    pub status: &'a str,
    pub summary: &'a str,
    /// Where the result is: a path or a URL.
    pub result: Option<String>,
    pub report_json: &'a [u8],
}

impl NotifySettings {
    pub fn resolve(
        email: Option<String>,
        webhook: Option<String>,
        artifact_url: Option<&str>,
        env: &crate::settings::NotifyEnv,
    ) -> NotifySettings {
        let host = env.hostname.as_deref().unwrap_or("localhost");
        NotifySettings {
            email: email
                .or_else(|| env.owner.clone())
                .filter(|e| !e.trim().is_empty()),
            smtp_url: env.smtp_url.clone().filter(|u| !u.is_empty()),
            from: env
                .mail_from
                .clone()
                .unwrap_or_else(|| format!("polymr@{host}")),
            webhook,
            reducer_id: env.reducer_id.clone().filter(|r| !r.is_empty()),
            link_template: artifact_url.unwrap_or(DEFAULT_LINK_TEMPLATE).to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.webhook.is_none()
    }

    fn link(&self, notice: &Notice<'_>) -> Option<String> {
        match &self.reducer_id {
            Some(id) => Some(self.link_template.replace("{taskId}", id)),
            None => notice.result.clone(),
        }
    }
}

/// Sends every configured notification; never fails.
pub async fn notify(settings: &NotifySettings, notice: &Notice<'_>) -> Vec<NotificationReport> {
    let mut out = Vec::new();
    if let Some(to) = &settings.email {
        let result = send_email(settings, to, notice).await;
        out.push(outcome("email", to, result));
    }
    if let Some(url) = &settings.webhook {
        let result = post_webhook(url, notice.report_json).await;
        out.push(outcome("webhook", url, result));
    }
    out
}

fn outcome(channel: &str, target: &str, result: Result<(), String>) -> NotificationReport {
    if let Err(e) = &result {
        tracing::warn!("{channel} notification to {target} failed: {e}");
        eprintln!("polymr: warning: {channel} notification to {target} failed: {e}");
    } else {
        tracing::info!("{channel} notification sent to {target}");
    }
    NotificationReport {
        channel: channel.into(),
        target: redact_url(target),
        ok: result.is_ok(),
        error: result.err(),
    }
}

/// URLs may carry credentials (`https://user:token@…`): reports keep only scheme and host.
fn redact_url(target: &str) -> String {
    match target.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => target.to_string(),
    }
}

fn message(settings: &NotifySettings, to: &str, notice: &Notice<'_>) -> Result<Message, String> {
    let subject = format!("[polymr] {} {} {}", notice.kind, notice.job, notice.status);
    let mut body = format!(
        "polymr {} {} {}.\n\n{}\n",
        notice.kind, notice.job, notice.status, notice.summary
    );
    if let Some(link) = settings.link(notice) {
        body.push_str(&format!("\nResult: {link}\n"));
    }
    Message::builder()
        .from(
            settings
                .from
                .parse()
                .map_err(|e| format!("bad sender `{}`: {e}", settings.from))?,
        )
        .to(to
            .parse()
            .map_err(|e| format!("bad recipient `{to}`: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("cannot build the message: {e}"))
}

async fn send_email(
    settings: &NotifySettings,
    to: &str,
    notice: &Notice<'_>,
) -> Result<(), String> {
    let email = message(settings, to, notice)?;
    match &settings.smtp_url {
        Some(url) => {
            let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| format!("bad SMTP_URL: {e}"))?
                .timeout(Some(Duration::from_secs(30)))
                .build();
            mailer
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP: {e}"))
        }
        None => {
            let sendmail = which::which("sendmail")
                .map_err(|_| "no SMTP_URL and no sendmail binary".to_string())?;
            AsyncSendmailTransport::<Tokio1Executor>::new_with_command(sendmail)
                .send(email)
                .await
                .map_err(|e| format!("sendmail: {e}"))
        }
    }
}

async fn post_webhook(url: &str, body: &[u8]) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..WEBHOOK_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * (1 << attempt))).await;
        }
        match client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            // A 4xx will not get better by asking again.
            Ok(r) if r.status().is_client_error() => return Err(format!("HTTP {}", r.status())),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("{last} (after {WEBHOOK_ATTEMPTS} attempts)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_reports_lose_their_credentials_and_path() {
        assert_eq!(
            redact_url("https://user:tok@hooks.example/a/b?x=1"),
            "https://hooks.example/…"
        );
        assert_eq!(redact_url("owner@example.com"), "owner@example.com");
    }

    #[test]
    fn reducer_id_builds_the_link() {
        let s = NotifySettings {
            reducer_id: Some("R1".into()),
            link_template: DEFAULT_LINK_TEMPLATE.into(),
            from: "a@b.c".into(),
            ..NotifySettings::default()
        };
        let n = Notice {
            job: "j",
            kind: "reduce",
            status: "succeeded",
            summary: "",
            result: Some("result.txt".into()),
            report_json: b"{}",
        };
        assert_eq!(
            s.link(&n).as_deref(),
            Some("https://queue.taskcluster.net/v1/task/R1/artifacts/public/result.txt")
        );
    }
}
