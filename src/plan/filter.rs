//! `Filter.json`: which files of a telemetry-laid-out store a job reads. Semantics follow
//! mozilla/telemetry-server's `TelemetrySchema` (`is_allowed`, `sanitize_allowed_values`,
//! `get_dimensions`): dimensions are matched by position against the parts of a key, as
//! the [`KeyLayout`] names them (directories, then the first `.`-separated parts of the
//! file name).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which part of a key is which dimension: `directories` are the first path segments under
/// the root, in order; `file_name` names the first `.`-separated parts of the file name.
/// The default is telemetry v2's
/// `reason/appName/appUpdateChannel/appVersion/appBuildID.submission_date.v2.log.<uuid>.lzma`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLayout {
    #[serde(default)]
    pub directories: Vec<String>,
    #[serde(default)]
    pub file_name: Vec<String>,
}

impl Default for KeyLayout {
    fn default() -> KeyLayout {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        KeyLayout {
            directories: names(&["reason", "appName", "appUpdateChannel", "appVersion"]),
            file_name: names(&["appBuildID", "submission_date"]),
        }
    }
}

impl KeyLayout {
    /// Every dimension's name, in key order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.directories
            .iter()
            .chain(&self.file_name)
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.directories.len() + self.file_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dimensions of `key` (relative to the root, `/`-separated), or `None` when the
    /// key does not have the layout's shape: exactly one segment per directory dimension,
    /// then a file name with at least as many `.`-separated parts as there are file-name
    /// dimensions.
    pub fn dimensions_of(&self, key: &str) -> Option<Vec<String>> {
        let mut segments: Vec<&str> = key.split('/').collect();
        let file = segments.pop()?;
        if segments.len() != self.directories.len() || file.is_empty() {
            return None;
        }
        let parts: Vec<&str> = file.split('.').collect();
        if parts.len() < self.file_name.len() {
            return None;
        }
        Some(
            segments
                .into_iter()
                .chain(parts.into_iter().take(self.file_name.len()))
                .map(str::to_string)
                .collect(),
        )
    }
}

/// What one dimension accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `"*"`.
    Any,
    /// A string: that value exactly (telemetry does not sanitize it).
    Exact(String),
    /// A list: membership, each listed value sanitized as telemetry writes path parts.
    OneOf(Vec<String>),
    /// `{"min", "max"}`: either bound optional, inclusive, compared as strings.
    Range {
        min: Option<String>,
        max: Option<String>,
    },
}

impl Allowed {
    /// Telemetry's `is_allowed`.
    pub fn allows(&self, value: &str) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::Exact(v) => v == value,
            Allowed::OneOf(vs) => vs.iter().any(|v| v == value),
            Allowed::Range { min, max } => {
                min.as_deref().map_or(true, |m| value >= m)
                    && max.as_deref().map_or(true, |m| value <= m)
            }
        }
    }

    /// The values this dimension can only be, when they can be named without listing:
    /// a string or a list of plain path segments (a listing never yields `""`, `.`, `..` or
    /// a segment holding `/`, so those fall back to listing and matching).
    pub fn exact_values(&self) -> Option<Vec<&str>> {
        let plain = |v: &str| !v.is_empty() && v != "." && v != ".." && !v.contains('/');
        let values: Vec<&str> = match self {
            Allowed::Exact(v) => vec![v.as_str()],
            Allowed::OneOf(vs) => vs.iter().map(String::as_str).collect(),
            _ => return None,
        };
        values.iter().all(|v| plain(v)).then_some(values)
    }
}

/// Telemetry's `safe_filename`: anything but `[A-Za-z0-9_/.]` becomes `_`, per character.
pub fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    pub field_name: String,
    pub allowed: Allowed,
}

/// A parsed `Filter.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub path: PathBuf,
    pub dimensions: Vec<Dimension>,
}

/// A filter that cannot be used; always the user's to fix (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("failed to read the filter `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the filter `{path}` is not JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid filter `{path}` at {at}: {message}")]
    Invalid {
        path: PathBuf,
        at: String,
        message: String,
    },
}

impl Filter {
    pub fn load(path: &Path) -> Result<Filter, FilterError> {
        let text = std::fs::read_to_string(path).map_err(|source| FilterError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Filter::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Filter, FilterError> {
        let value: Value = serde_json::from_str(text).map_err(|source| FilterError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |at: &str, message: String| FilterError::Invalid {
            path: path.to_path_buf(),
            at: at.to_string(),
            message,
        };
        let top = value
            .as_object()
            .ok_or_else(|| invalid("the top", "want an object with `dimensions`".into()))?;
        only_keys(top, &["version", "dimensions"]).map_err(|m| invalid("the top", m))?;
        match top.get("version") {
            None => {}
            Some(v) if v.as_u64() == Some(1) => {}
            Some(v) => return Err(invalid("version", format!("{v}: only version 1 is known"))),
        }
        let dims = top
            .get("dimensions")
            .ok_or_else(|| invalid("the top", "missing `dimensions`".into()))?
            .as_array()
            .ok_or_else(|| invalid("dimensions", "want a list of dimensions".into()))?;
        let dimensions = dims
            .iter()
            .enumerate()
            .map(|(i, d)| dimension(d).map_err(|(name, m)| invalid(&dimension_at(i, name), m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            path: path.to_path_buf(),
            dimensions,
        })
    }

    /// What dimension `i` (in key order) accepts: anything beyond the filter's last one,
    /// as telemetry checks only the dimensions its filter has.
    pub fn allowed(&self, i: usize) -> &Allowed {
        self.dimensions
            .get(i)
            .map(|d| &d.allowed)
            .unwrap_or(&Allowed::Any)
    }

    /// Refuses a filter with more dimensions than the layout has parts, and warns of a
    /// field name that is not the layout's at its position (matching is by position).
    pub fn check_layout(&self, layout: &KeyLayout) -> Result<(), FilterError> {
        if let Some(extra) = self.dimensions.get(layout.len()) {
            return Err(FilterError::Invalid {
                path: self.path.clone(),
                at: dimension_at(layout.len(), Some(&extra.field_name)),
                message: format!(
                    "the key layout has only {} parts ({}); set `key_layout` in analysis-tools.yml",
                    layout.len(),
                    layout.names().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        for (i, (d, name)) in self.dimensions.iter().zip(layout.names()).enumerate() {
            if d.field_name != name {
                tracing::warn!(
                    "filter `{}`: dimension {i} is `{}` but the key layout calls that part `{name}`; dimensions match by position",
                    self.path.display(),
                    d.field_name
                );
            }
        }
        Ok(())
    }

    /// The dimension's name for tables: the filter's, else the layout's.
    pub fn name_of<'a>(&'a self, i: usize, layout: &'a KeyLayout) -> &'a str {
        self.dimensions
            .get(i)
            .map(|d| d.field_name.as_str())
            .or_else(|| layout.names().nth(i))
            .unwrap_or("?")
    }
}

fn dimension_at(i: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("dimensions[{i}] (`{n}`)"),
        None => format!("dimensions[{i}]"),
    }
}

fn only_keys(object: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown key `{k}` (known: {})",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(()),
    }
}

/// One dimension, or (its name if known, what is wrong).
fn dimension(value: &Value) -> Result<Dimension, (Option<&str>, String)> {
    let object = value.as_object().ok_or((
        None,
        "want an object with `field_name` and `allowed_values`".into(),
    ))?;
    let name = object.get("field_name").and_then(Value::as_str);
    only_keys(object, &["field_name", "allowed_values"]).map_err(|m| (name, m))?;
    let field_name = match object.get("field_name") {
        None => return Err((None, "missing `field_name`".into())),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) => return Err((None, format!("field_name {v}: want a non-empty string"))),
    };
    let allowed = object
        .get("allowed_values")
        .ok_or_else(|| "missing `allowed_values`".to_string())
        .and_then(allowed)
        .map_err(|m| (name, format!("allowed_values: {m}")))?;
    Ok(Dimension {
        field_name,
        allowed,
    })
}

fn allowed(value: &Value) -> Result<Allowed, String> {
    match value {
        Value::String(s) if s == "*" => Ok(Allowed::Any),
        Value::String(s) => Ok(Allowed::Exact(s.clone())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                scalar(v)
                    .map(|s| sanitize(&s))
                    .map_err(|m| format!("[{i}]: {m}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Allowed::OneOf),
        Value::Object(range) => {
            only_keys(range, &["min", "max"])?;
            let bound = |k: &str| {
                range
                    .get(k)
                    .map(|v| scalar(v).map_err(|m| format!("{k}: {m}")))
                    .transpose()
            };
            let (min, max) = (bound("min")?, bound("max")?);
            if let (Some(lo), Some(hi)) = (&min, &max) {
                if lo > hi {
                    return Err(format!(
                        "min {lo:?} is above max {hi:?} (compared as strings): nothing could match"
                    ));
                }
            }
            Ok(Allowed::Range { min, max })
        }
        other => Err(format!(
            "{other}: want \"*\", a string, a list, or {{\"min\": …, \"max\": …}}"
        )),
    }
}

/// A value as the string it is compared as: strings as they are, integers by their digits
/// (`{"min": 20140101}` means the string "20140101").
fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        other => Err(format!("{other}: want a string (or an integer)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Filter, FilterError> {
        Filter::parse(Path::new("F.json"), text)
    }

    #[test]
    fn all_four_forms_parse_and_lists_are_sanitized() {
        let f = parse(
            r#"{"version": 1, "dimensions": [
                {"field_name": "reason", "allowed_values": ["saved-session", "idle daily"]},
                {"field_name": "appName", "allowed_values": "Firefox"},
                {"field_name": "appUpdateChannel", "allowed_values": "*"},
                {"field_name": "appVersion", "allowed_values": {"min": "27", "max": 30}}]}"#,
        )
        .expect("valid");
        assert_eq!(
            f.allowed(0),
            &Allowed::OneOf(vec!["saved_session".into(), "idle_daily".into()])
        );
        assert!(f.allowed(0).allows("saved_session"));
        assert!(!f.allowed(0).allows("saved-session"));
        assert_eq!(f.allowed(1), &Allowed::Exact("Firefox".into()));
        assert!(f.allowed(2).allows("anything"));
        assert!(f.allowed(3).allows("27.0") && f.allowed(3).allows("30"));
        assert!(!f.allowed(3).allows("30.0") && !f.allowed(3).allows("26"));
        // Beyond the filter's last dimension, anything goes.
        assert_eq!(f.allowed(9), &Allowed::Any);
    }

    #[test]
    fn open_ranges_and_exact_strings_are_not_sanitized() {
        let only_min = allowed(&serde_json::json!({"min": "b"})).expect("ok");
        assert!(only_min.allows("b") && only_min.allows("zzz") && !only_min.allows("a"));
        let any = allowed(&serde_json::json!({})).expect("ok");
        assert!(any.allows(""));
        let exact = allowed(&serde_json::json!("saved-session")).expect("ok");
        assert!(exact.allows("saved-session") && !exact.allows("saved_session"));
    }

    #[test]
    fn errors_name_the_dimension_at_fault() {
        let cases = [
            (
                r#"{"dimensions": [{"field_name": "reason", "allowed_values": "*"},
                    {"field_name": "appName", "allowed_values": 3}]}"#,
                "dimensions[1] (`appName`)",
            ),
            (
                r#"{"dimensions": [{"field_name": "reason", "allowed_values": {"min": "b", "max": "a"}}]}"#,
                "dimensions[0] (`reason`)",
            ),
            (
                r#"{"dimensions": [{"field_name": "x", "allowed_values": {"mn": "a"}}]}"#,
                "unknown key `mn`",
            ),
            (
                r#"{"dimensions": [{"field_name": "x", "allowed_values": [true]}]}"#,
                "[0]: true",
            ),
            (
                r#"{"dimensions": [{"field_name": "x"}]}"#,
                "missing `allowed_values`",
            ),
            (
                r#"{"dimensions": [{"allowed_values": "*"}]}"#,
                "dimensions[0]: missing `field_name`",
            ),
            (r#"{"version": 2, "dimensions": []}"#, "only version 1"),
            (r#"{"dimension": []}"#, "unknown key `dimension`"),
            (r#"[]"#, "the top"),
        ];
        for (text, want) in cases {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("F.json"), "{e}");
        }
        assert!(matches!(parse("{"), Err(FilterError::Json { .. })));
    }

    #[test]
    fn a_filter_longer_than_the_layout_is_refused() {
        let dims: Vec<String> = (0..7)
            .map(|i| format!(r#"{{"field_name": "d{i}", "allowed_values": "*"}}"#))
            .collect();
        let f = parse(&format!(r#"{{"dimensions": [{}]}}"#, dims.join(","))).expect("valid");
        let e = f.check_layout(&KeyLayout::default()).expect_err("too long");
        assert!(e.to_string().contains("dimensions[6] (`d6`)"), "{e}");
    }

    #[test]
    fn keys_split_as_telemetry_does() {
        let l = KeyLayout::default();
        assert_eq!(
            l.dimensions_of("saved_session/Firefox/nightly/30.0a1/20140101.20140105.v2.log.x.lzma"),
            Some(
                [
                    "saved_session",
                    "Firefox",
                    "nightly",
                    "30.0a1",
                    "20140101",
                    "20140105"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(l.dimensions_of("a/b/c/20140101.20140105.v2.log"), None);
        assert_eq!(l.dimensions_of("a/b/c/d/e/20140101.20140105.v2.log"), None);
        assert_eq!(l.dimensions_of("a/b/c/d/nodots"), None);
        assert_eq!(l.dimensions_of("a/b/c/d/"), None);
    }

    #[test]
    fn only_plain_segments_are_named_without_listing() {
        assert_eq!(
            Allowed::OneOf(vec!["a".into(), "b".into()]).exact_values(),
            Some(vec!["a", "b"])
        );
        assert_eq!(Allowed::OneOf(vec!["a/b".into()]).exact_values(), None);
        assert_eq!(Allowed::Exact("..".into()).exact_values(), None);
        assert_eq!(Allowed::Any.exact_values(), None);
    }
}
