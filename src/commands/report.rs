//! `polymr report REPORT.json [--html OUT.html]`: a report as a page, or as a few lines.

use anyhow::Context;

use crate::cli::ReportArgs;
use crate::exit::UsageError;

pub fn report(args: ReportArgs) -> anyhow::Result<u8> {
    let path = &args.report;
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read the report `{}`: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "`{}` is not JSON: {e} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    let summary = crate::page::text_summary(&value).ok_or_else(|| {
        UsageError(format!(
            "`{}` is not a polymr report (it needs `kind`, `status` and `totals`)",
            path.display()
        ))
    })?;
    match &args.html {
        Some(out) => {
            crate::page::write_html(out, &value)
                .with_context(|| format!("failed to render `{}`", path.display()))?;
            eprintln!("polymr: page written to {}", out.display());
        }
        None => super::write_stdout(summary.as_bytes())?,
    }
    Ok(crate::exit::SUCCESS)
}
