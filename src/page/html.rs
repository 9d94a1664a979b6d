//! One HTML file holding the page's CSS and JavaScript and the report itself, as JSON in a
//! `<script type="application/json">`: it opens from disk, with no network.

use std::path::{Path, PathBuf};

use anyhow::Context;

const TEMPLATE: &str = include_str!("page.html");
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Whether the page draws the report it carries once, or keeps asking the server for it.
pub enum Mode<'a> {
    Static {
        html_name: Option<&'a str>,
    },
    /// Polls `poll` (a path on the server that served the page).
    Live {
        poll: &'a str,
    },
}

/// The page for a report given as JSON text.
pub fn render(report_json: &str, mode: &Mode<'_>) -> String {
    let config = match mode {
        Mode::Static { html_name } => serde_json::json!({ "live": false, "html": html_name }),
        Mode::Live { poll } => serde_json::json!({ "live": true, "poll": poll }),
    };
    fill(
        TEMPLATE,
        &[
            ("/*POLYMR:CSS*/", CSS),
            ("/*POLYMR:CONFIG*/", &script_safe(&config.to_string())),
            ("/*POLYMR:REPORT*/", &script_safe(report_json)),
            ("/*POLYMR:JS*/", JS),
        ],
    )
}

/// The template with each placeholder, in the order they appear in it, replaced once. Only
/// the template is searched, never what was put in, so a report that holds a placeholder's
/// text stays as it is.
fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + parts.iter().map(|p| p.1.len()).sum::<usize>());
    let mut rest = template;
    for (placeholder, value) in parts {
        match rest.find(placeholder) {
            Some(at) => {
                out.push_str(&rest[..at]);
                out.push_str(value);
                rest = &rest[at + placeholder.len()..];
            }
            // The template is ours (include_str!); a unit test checks every placeholder.
            None => tracing::error!("the page template has no {placeholder}"),
        }
    }
    out.push_str(rest);
    out
}

/// JSON that can sit inside a `<script>` element: `<`, `>` and `&` (which could close the
/// element or open a comment) and the line separators U+2028/U+2029 become `\u` escapes.
/// They can only occur inside JSON strings, where the escape means the same character.
pub fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Where the page of a report goes: `X.json` → `X.html`, beside it.
pub fn html_path_for(report: &Path) -> PathBuf {
    match report.extension() {
        Some(e) if e == "json" => report.with_extension("html"),
        _ => {
            let mut s = report.as_os_str().to_owned();
            s.push(".html");
            PathBuf::from(s)
        }
    }
}

/// Writes the static page of `report` to `path`, whole or not at all.
pub fn write_html(path: &Path, report: &impl serde::Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_string(report).context("failed to serialize the report")?;
    let name = path.file_name().and_then(|n| n.to_str());
    let page = render(&json, &Mode::Static { html_name: name });
    crate::output::write_atomic(path, page.as_bytes())
        .with_context(|| format!("failed to write the page `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_cannot_close_its_script_element() {
        let json =
            serde_json::json!({ "name": "</script><script>x()</script>&<!--\u{2028}\u{2029}" })
                .to_string();
        let page = render(&json, &Mode::Static { html_name: None });
        let start = page.find("id=\"polymr-report\">").expect("report element");
        let body = &page[start..];
        let end = body.find("</script>").expect("end of the element");
        let embedded = &body["id=\"polymr-report\">".len()..end];
        assert!(!embedded.contains('<') && !embedded.contains('>') && !embedded.contains('&'));
        assert!(!embedded.contains('\u{2028}') && !embedded.contains('\u{2029}'));
        let back: serde_json::Value = serde_json::from_str(embedded).expect("still JSON");
        assert_eq!(back.to_string(), json);
    }

    #[test]
    fn a_placeholder_in_the_report_is_left_alone() {
        let json = serde_json::json!({ "name": "/*POLYMR:JS*/ /*POLYMR:CSS*/" }).to_string();
        let page = render(&json, &Mode::Static { html_name: None });
        assert_eq!(
            page.matches("/*POLYMR:JS*/").count(),
            1,
            "only the report's copy"
        );
        assert_eq!(
            page.matches("/*POLYMR:").count(),
            2,
            "every placeholder filled"
        );
        assert!(page.contains("function taskOf"), "the script is in");
    }

    #[test]
    fn the_page_goes_beside_the_report() {
        assert_eq!(
            html_path_for(Path::new("out/result.txt.report.json")),
            Path::new("out/result.txt.report.html")
        );
        assert_eq!(html_path_for(Path::new("r")), Path::new("r.html"));
    }
}
