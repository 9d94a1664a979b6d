//! Bytes ↔ records: the framing of decoded input into whole lines for a child's stdin, the
//! helper protocol's control lines (`helpers/PROTOCOL.md`), and key/value splitting.

use memchr::{memchr, memchr_iter};

/// Number of complete lines (newlines) in `buf`.
pub fn count_lines(buf: &[u8]) -> u64 {
    memchr_iter(b'\n', buf).count() as u64
}

/// The control line that tells a helper which file the following records come from.
pub fn file_marker(index: usize, name: &str) -> Vec<u8> {
    let dims = serde_json::to_string(&telemetry_dims(name)).unwrap_or_else(|_| "[]".into());
    // TAB and newline would break the framing; a name never needs them to be recognised.
    let safe: String = name
        .chars()
        .map(|c| if c == '\t' || c == '\n' { ' ' } else { c })
        .collect();
    format!("\0F\t{index}\t{dims}\t{safe}\n").into_bytes()
}

/// Appends `lines` to `out`, escaping the lines that begin with NUL as `\0=` + line so that
/// no record can pass for a control line. `at_line_start` is false when `lines` continues a
/// line whose beginning was sent before.
pub fn escape_into(lines: &[u8], out: &mut Vec<u8>, at_line_start: bool) {
    if memchr(0, lines).is_none() {
        out.extend_from_slice(lines);
        return;
    }
    let mut start = 0;
    while start < lines.len() {
        let end = memchr(b'\n', &lines[start..]).map_or(lines.len(), |i| start + i + 1);
        if lines[start] == 0 && (start > 0 || at_line_start) {
            out.extend_from_slice(b"\0=");
        }
        out.extend_from_slice(&lines[start..end]);
        start = end;
    }
}

/// The telemetry dimensions of an input's name, laid out as
/// `reason/appName/appUpdateChannel/appVersion/appBuildID.submissionDate.v2.log…`:
/// the last four directories and the first two dot-separated parts of the file name.
pub fn telemetry_dims(name: &str) -> Vec<String> {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() < 5 {
        return Vec::new();
    }
    let file = parts[parts.len() - 1];
    let mut pieces = file.split('.');
    let (Some(build), Some(date)) = (pieces.next(), pieces.next()) else {
        return Vec::new();
    };
    if build.is_empty() || date.is_empty() || !file.contains(".v2.") {
        return Vec::new();
    }
    let mut dims: Vec<String> = parts[parts.len() - 5..parts.len() - 1]
        .iter()
        .map(|s| s.to_string())
        .collect();
    dims.push(build.to_string());
    dims.push(date.to_string());
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_from_key_layout() {
        let d = telemetry_dims(
            "saved_session/Firefox/nightly/33.0a1/20140601.20140603.v2.log.abc.lzma",
        );
        assert_eq!(
            d,
            vec![
                "saved_session",
                "Firefox",
                "nightly",
                "33.0a1",
                "20140601",
                "20140603"
            ]
        );
        let d = telemetry_dims("/tmp/x/idle-daily/Fennec/beta/30.0/2014.2015.v2.log.3.xz");
        assert_eq!(d[0], "idle-daily");
        assert!(telemetry_dims("plain.txt").is_empty());
        assert!(telemetry_dims("a/b/c/d/e.txt").is_empty());
    }

    #[test]
    fn escapes_only_lines_starting_with_nul() {
        let mut out = Vec::new();
        escape_into(b"a\0b\n\0c\n\0\nd\n", &mut out, true);
        assert_eq!(out, b"a\0b\n\0=\0c\n\0=\0\nd\n");
        let mut out = Vec::new();
        escape_into(b"plain\n", &mut out, true);
        assert_eq!(out, b"plain\n");
        let mut out = Vec::new();
        escape_into(b"\0rest of a long line\n\0x\n", &mut out, false);
        assert_eq!(out, b"\0rest of a long line\n\0=\0x\n");
    }

    #[test]
    fn marker_is_one_line() {
        let m = file_marker(3, "a\tb");
        assert_eq!(m, b"\0F\t3\t[]\ta b\n");
        assert_eq!(count_lines(&m), 1);
    }
}
