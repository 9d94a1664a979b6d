//! The job page: a report (a job's, a map task's or a reduce task's) drawn as one
//! self-contained HTML file, the same page served live while `polymr run --ui` runs, and the
//! terse text summary `polymr report` prints.

mod html;
mod live;
mod summary;

pub use html::{html_path_for, render, write_html, Mode};
pub use live::{LiveServer, LiveSink, LiveState};
pub use summary::text_summary;
