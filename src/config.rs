//! The `analysis-tools.yml` schema, in its original three-key form and the extended form,
//! and its loader. Errors name the file, the key path and, where known, the line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the config is looked for when `--config` is not given, in order.
pub const DEFAULT_LOCATIONS: &[&str] = &["analysis-tools.yml", "/etc/analysis-tools.yml"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration found: looked for {}", .0.join(", "))]
    NotFound(Vec<String>),
    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid `{path}` at {key}{}: {message}", line_suffix(*.line))]
    Invalid {
        path: PathBuf,
        key: String,
        line: Option<usize>,
        message: String,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    #[serde(alias = "js", alias = "node")]
    Javascript,
    Binary,
}

impl Language {
    fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::Javascript => "js",
            Language::Binary => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decompression {
    #[default]
    Auto,
    None,
    Xz,
    #[serde(alias = "gz")]
    Gzip,
    #[serde(alias = "zst")]
    Zstd,
    #[serde(alias = "bz2")]
    Bzip2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// `<uuid><TAB><json>` per line.
    #[default]
    Telemetry,
    /// Any newline-delimited text.
    Lines,
}

/// What the mapper's stdin carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Feed {
    #[default]
    Records,
    /// One ready local (decompressed) file path per line: the original binary mode.
    Paths,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    Mapper,
    Combiner,
    Reducer,
}

impl Role {
    pub fn key(self) -> &'static str {
        match self {
            Role::Mapper => "mapper",
            Role::Combiner => "combiner",
            Role::Reducer => "reducer",
        }
    }
    fn custom_dir(self) -> &'static str {
        match self {
            Role::Mapper => "custom-mappers",
            Role::Combiner | Role::Reducer => "custom-reducers",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One step (mapper, combiner or reducer) as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    language: Language,
    script: String,
    #[serde(default)]
    arguments: Vec<String>,
    #[serde(default)]
    function: Option<String>,
}

/// The file, either form. Untagged parsing would lose serde_yaml's precise messages, so both
/// forms share one struct and the form is decided by which keys are present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    // The original form.
    language: Option<Language>,
    script: Option<String>,
    arguments: Option<Vec<String>>,
    // The extended form.
    mapper: Option<RawStep>,
    combiner: Option<RawStep>,
    reducer: Option<RawStep>,
    #[serde(default)]
    decompression: Decompression,
    record_format: Option<RecordFormat>,
    key_separator: Option<String>,
    #[serde(default)]
    feed: Feed,
    /// Which part of an input's key is which `Filter.json` dimension.
    key_layout: Option<crate::plan::KeyLayout>,
}

/// A step with its script resolved to a path that exists.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub role: Role,
    pub language: Language,
    pub script: PathBuf,
    pub arguments: Vec<String>,
    pub function: Option<String>,
}

/// A step whose script may not exist yet: the legacy reducer is only needed by reduce tasks.
#[derive(Debug, Clone)]
pub enum StepRef {
    Ready(Step),
    Missing { key: String, message: String },
}

#[derive(Debug, Clone)]
pub struct JobConfig {
    pub path: PathBuf,
    /// The original three-key form: space separator, legacy helper API.
    pub legacy: bool,
    pub mapper: Step,
    pub combiner: Option<Step>,
    pub reducer: Option<StepRef>,
    pub decompression: Decompression,
    pub record_format: RecordFormat,
    pub key_separator: Vec<u8>,
    pub feed: Feed,
    /// Which part of an input's key is which `Filter.json` dimension (`key_layout:`;
    /// telemetry's layout by default).
    pub key_layout: crate::plan::KeyLayout,
    /// `--task-timeout`, set from the command line (not the YAML): a child making no
    /// progress for this long fails its attempt.
    pub task_timeout: Option<std::time::Duration>,
}

impl JobConfig {
    /// Finds the config: the given path, else the first of [`DEFAULT_LOCATIONS`] that exists.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if let Some(p) = explicit {
            return Ok(p.to_path_buf());
        }
        DEFAULT_LOCATIONS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                ConfigError::NotFound(DEFAULT_LOCATIONS.iter().map(|s| s.to_string()).collect())
            })
    }

    pub fn load(path: &Path) -> Result<JobConfig, ConfigError> {
        Ok(Self::load_with_text(path)?.0)
    }

    /// The config and the text it was parsed from, read once: a plan carries the text.
    pub fn load_with_text(path: &Path) -> Result<(JobConfig, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((Self::parse(path, &text)?, text))
    }

    pub fn parse(path: &Path, text: &str) -> Result<JobConfig, ConfigError> {
        let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: yaml_message(text, &e),
        })?;
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        let ctx = Resolver {
            path,
            text,
            base: &base,
        };

        let legacy = raw.language.is_some() || raw.script.is_some();
        if legacy && raw.mapper.is_some() {
            return Err(ctx.invalid(
                "mapper",
                "mix of the original form (language/script at the top) and the extended form (mapper:); use one",
            ));
        }
        let (mapper, combiner, reducer) = if legacy {
            let language = raw.language.ok_or_else(|| {
                ctx.invalid("language", "missing: the original form needs `language`")
            })?;
            let script = raw.script.ok_or_else(|| {
                ctx.invalid("script", "missing: the original form needs `script`")
            })?;
            let step = RawStep {
                language,
                script,
                arguments: raw.arguments.unwrap_or_default(),
                function: None,
            };
            let mapper = ctx.step(Role::Mapper, "", step)?;
            // The original reduce task ran `reducer.<ext>` of the mapper's language.
            let reducer = if language == Language::Binary {
                ctx.step_ref(Role::Reducer, "reducer", "reducer".to_string(), language)
            } else {
                ctx.step_ref(
                    Role::Reducer,
                    "reducer",
                    format!("reducer.{}", language.extension()),
                    language,
                )
            };
            (mapper, None, Some(reducer))
        } else {
            if raw.arguments.is_some() {
                return Err(ctx.invalid(
                    "arguments",
                    "top-level `arguments` belongs to the original form; put it under `mapper:`",
                ));
            }
            let mapper = raw.mapper.ok_or_else(|| {
                ctx.invalid(
                    "mapper",
                    "missing: give `mapper:` (or the original `language`/`script`)",
                )
            })?;
            let mapper = ctx.step(Role::Mapper, "mapper.", mapper)?;
            let combiner = raw
                .combiner
                .map(|c| ctx.step(Role::Combiner, "combiner.", c))
                .transpose()?;
            let reducer = raw
                .reducer
                .map(|r| ctx.step(Role::Reducer, "reducer.", r).map(StepRef::Ready))
                .transpose()?;
            (mapper, combiner, reducer)
        };

        let key_separator = match raw.key_separator {
            Some(s) if s.is_empty() => {
                return Err(ctx.invalid("key_separator", "must not be empty"))
            }
            Some(s) if s.contains('\n') => {
                return Err(ctx.invalid("key_separator", "must not contain a newline"))
            }
            Some(s) => s.into_bytes(),
            None if legacy => b" ".to_vec(),
            None => b"\t".to_vec(),
        };
        let key_layout = raw.key_layout.unwrap_or_default();
        if key_layout.is_empty() {
            return Err(ctx.invalid(
                "key_layout",
                "names no part: give `directories:` and/or `file_name:`",
            ));
        }
        Ok(JobConfig {
            key_layout,
            path: path.to_path_buf(),
            legacy,
            mapper,
            combiner,
            reducer,
            decompression: raw.decompression,
            record_format: raw.record_format.unwrap_or_default(),
            key_separator,
            feed: raw.feed,
            task_timeout: None,
        })
    }

    /// The reducer, or a clear error when the job has none or its script is missing.
    pub fn reducer(&self) -> Result<&Step, ConfigError> {
        match &self.reducer {
            Some(StepRef::Ready(step)) => Ok(step),
            Some(StepRef::Missing { key, message }) => Err(ConfigError::Invalid {
                path: self.path.clone(),
                key: key.clone(),
                line: None,
                message: message.clone(),
            }),
            None => Err(ConfigError::Invalid {
                path: self.path.clone(),
                key: "reducer".into(),
                line: None,
                message: "this job has no reducer (it is map-only)".into(),
            }),
        }
    }
}

struct Resolver<'a> {
    path: &'a Path,
    text: &'a str,
    base: &'a Path,
}

impl Resolver<'_> {
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            line: find_key_line(self.text, key),
            message: message.into(),
        }
    }

    fn step(&self, role: Role, prefix: &str, raw: RawStep) -> Result<Step, ConfigError> {
        let key = format!("{prefix}script");
        let script = self
            .resolve_script(role, &raw.script)
            .map_err(|m| self.invalid(&key, m))?;
        if raw.function.is_some() && raw.language == Language::Binary {
            return Err(self.invalid(
                &format!("{prefix}function"),
                "`function` names a helper function; a binary has none",
            ));
        }
        Ok(Step {
            role,
            language: raw.language,
            script,
            arguments: raw.arguments,
            function: raw.function,
        })
    }

    fn step_ref(&self, role: Role, key: &str, script: String, language: Language) -> StepRef {
        match self.resolve_script(role, &script) {
            Ok(script) => StepRef::Ready(Step {
                role,
                language,
                script,
                arguments: Vec::new(),
                function: None,
            }),
            Err(message) => StepRef::Missing {
                key: key.to_string(),
                message: format!("the original form's reducer: {message}"),
            },
        }
    }

    /// Relative scripts resolve against the config's directory, then its `custom-mappers/`
    /// (or `custom-reducers/`).
    fn resolve_script(&self, role: Role, script: &str) -> Result<PathBuf, String> {
        let given = Path::new(script);
        let candidates: Vec<PathBuf> = if given.is_absolute() {
            vec![given.to_path_buf()]
        } else {
            vec![
                self.base.join(given),
                self.base.join(role.custom_dir()).join(given),
            ]
        };
        candidates
            .iter()
            .find(|c| c.is_file())
            .cloned()
            .ok_or_else(|| {
                let looked: Vec<String> =
                    candidates.iter().map(|c| c.display().to_string()).collect();
                format!(
                    "script `{script}` not found (looked in {})",
                    looked.join(", ")
                )
            })
    }
}

/// serde_yaml's message, with the line of the key at fault when it shows none (it shows none
/// for an unknown key at the top level, nor for any position at line 1 column 1).
fn yaml_message(text: &str, e: &serde_yaml::Error) -> String {
    let message = e.to_string();
    if message.contains(" at line ") {
        return message;
    }
    let located = |message: String| match e.location() {
        Some(l) => format!("{message} at line {}", l.line()),
        None => message,
    };
    let Some((before, after)) = message.split_once("unknown field `") else {
        return located(message);
    };
    let Some((field, _)) = after.split_once('`') else {
        return located(message);
    };
    let key = match before.strip_suffix(": ") {
        Some(parent) => format!("{parent}.{field}"),
        None => field.to_string(),
    };
    match find_key_line(text, &key) {
        Some(line) => format!("{message} at line {line}"),
        None => located(message),
    }
}

/// Best-effort line of the key at `path` (`reducer.script`) in the YAML text, for errors
/// found after deserialization. Each level is looked for within the value of the level
/// above, in block style (`script:` on a line of its own) or flow style (`{…, script: x}`);
/// when a level is absent, the line of the nearest one found.
fn find_key_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut from, mut to) = (0, lines.len());
    let mut found = None;
    for (level, key) in path.split('.').filter(|k| !k.is_empty()).enumerate() {
        let Some(hit) = (from..to).find(|&i| has_key(lines[i], key, level == 0)) else {
            break;
        };
        found = Some(hit);
        // The value runs from the key's own line (flow style) to the next line indented no
        // deeper than the key.
        let indent = indent_of(lines[hit]);
        from = hit;
        to = (hit + 1..lines.len())
            .find(|&i| {
                let t = lines[i].trim_start();
                !t.is_empty() && !t.starts_with('#') && indent_of(lines[i]) <= indent
            })
            .unwrap_or(lines.len());
    }
    found.map(|i| i + 1)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Whether `line` holds `key:` as a mapping key: at the start of the line (after a `- `),
/// or after a flow mapping's `{` or `,`; at column 0 only for a top-level key.
fn has_key(line: &str, key: &str, top: bool) -> bool {
    let code = line.split(" #").next().unwrap_or(line);
    code.match_indices(key).any(|(i, _)| {
        let before = code[..i].trim_end();
        let (before, quote) = match before.strip_suffix(['"', '\'']) {
            Some(b) => (b.trim_end(), code[..i].trim_end().chars().last()),
            None => (before, None),
        };
        let starts = if top {
            i == usize::from(quote.is_some())
        } else {
            before.is_empty() || before.ends_with(['{', ',', '-'])
        };
        let mut after = &code[i + key.len()..];
        if let Some(q) = quote {
            match after.strip_prefix(q) {
                Some(a) => after = a,
                None => return false,
            }
        }
        starts && after.trim_start().starts_with(':')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, "").expect("write");
        }
        d
    }

    #[test]
    fn original_form_resolves_custom_mappers_and_legacy_reducer() {
        let d = dir_with(&["custom-mappers/m.py", "custom-reducers/reducer.py"]);
        let p = d.path().join("analysis-tools.yml");
        let c = JobConfig::parse(&p, "language: python\nscript: m.py\narguments: [a]\n")
            .expect("parse");
        assert!(c.legacy);
        assert_eq!(c.key_separator, b" ");
        assert!(c.mapper.script.ends_with("custom-mappers/m.py"));
        assert_eq!(c.mapper.arguments, vec!["a"]);
        assert!(c
            .reducer()
            .expect("reducer")
            .script
            .ends_with("custom-reducers/reducer.py"));
    }

    #[test]
    fn unknown_language_names_key_and_line() {
        let d = dir_with(&[]);
        let p = d.path().join("a.yml");
        let e = JobConfig::parse(&p, "mapper:\n  language: ruby\n  script: x\n")
            .expect_err("must fail");
        let m = e.to_string();
        assert!(m.contains("a.yml"), "{m}");
        assert!(m.contains("mapper.language"), "{m}");
        assert!(m.contains("line 2"), "{m}");
    }

    #[test]
    fn missing_script_names_key_and_line() {
        let d = dir_with(&[]);
        let p = d.path().join("a.yml");
        let e = JobConfig::parse(&p, "mapper:\n  language: binary\n  script: nope.sh\n")
            .expect_err("must fail");
        let m = e.to_string();
        assert!(
            m.contains("mapper.script") && m.contains("line 3") && m.contains("nope.sh"),
            "{m}"
        );
    }

    /// Regression: the line was found only for block style, so a flow-style step's error
    /// named no line (or the line of another step's key of the same name).
    #[test]
    fn flow_style_error_names_the_line() {
        let d = dir_with(&["m.py"]);
        let p = d.path().join("a.yml");
        let text = "mapper:\n  language: python\n  script: m.py\nreducer: {language: python, script: gone.py}\n";
        let m = JobConfig::parse(&p, text)
            .expect_err("must fail")
            .to_string();
        assert!(
            m.contains("reducer.script") && m.contains("line 4") && m.contains("gone.py"),
            "{m}"
        );
        let text = "mapper: {language: python, script: m.py}\ncombiner: {language: python,\n   script: gone.py}\n";
        let m = JobConfig::parse(&p, text)
            .expect_err("must fail")
            .to_string();
        assert!(m.contains("combiner.script") && m.contains("line 3"), "{m}");
        let text = "{mapper: {language: binary, function: f, script: m.py}}\n";
        let m = JobConfig::parse(&p, text)
            .expect_err("must fail")
            .to_string();
        assert!(m.contains("mapper.function"), "{m}");
    }

    #[test]
    fn key_lines_follow_the_path() {
        let text = "# mapper: commented\nreducer:\n  script: r\nmapper:\n  - x\n  \"script\" : m\nscript: top\n";
        assert_eq!(find_key_line(text, "mapper.script"), Some(6));
        assert_eq!(find_key_line(text, "reducer.script"), Some(3));
        assert_eq!(find_key_line(text, "script"), Some(7));
        assert_eq!(find_key_line(text, "reducer.language"), Some(2));
        assert_eq!(find_key_line(text, "combiner"), None);
    }

    #[test]
    fn extended_form_options() {
        let d = dir_with(&["m.js", "custom-reducers/r.js"]);
        let p = d.path().join("a.yml");
        let c = JobConfig::parse(
            &p,
            "mapper: {language: javascript, script: m.js}\nreducer: {language: javascript, script: r.js, function: red}\ndecompression: zstd\nrecord_format: lines\nkey_separator: ','\nfeed: paths\n",
        )
        .expect("parse");
        assert!(!c.legacy);
        assert_eq!(c.decompression, Decompression::Zstd);
        assert_eq!(c.record_format, RecordFormat::Lines);
        assert_eq!(c.key_separator, b",");
        assert_eq!(c.feed, Feed::Paths);
        assert_eq!(
            c.reducer().expect("reducer").function.as_deref(),
            Some("red")
        );
    }

    #[test]
    fn unknown_key_is_refused() {
        let d = dir_with(&["m.py"]);
        let p = d.path().join("a.yml");
        let e = JobConfig::parse(
            &p,
            "mapper: {language: python, script: m.py}\ndecompress: xz\n",
        )
        .expect_err("fail");
        assert!(e.to_string().contains("decompress"), "{e}");
    }
}
