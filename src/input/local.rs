//! Local inputs: files, directories (recursively, in name order) and glob patterns.

use std::path::{Path, PathBuf};

use super::{Input, Location};

/// Expands command-line arguments into inputs. An argument that matches nothing becomes a
/// `Missing` input, so the report names it and the other inputs still run.
pub fn expand_local(args: &[String]) -> Vec<Input> {
    let mut out = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files);
            if files.is_empty() {
                out.push(missing(arg, "directory holds no files"));
            }
            out.extend(files.into_iter().map(file_input));
        } else if path.exists() {
            out.push(file_input(path.to_path_buf()));
        } else if arg.contains(['*', '?', '[']) {
            let matched: Vec<PathBuf> = match glob::glob(arg) {
                Ok(paths) => paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .collect(),
                Err(e) => {
                    out.push(missing(arg, &format!("bad glob pattern: {e}")));
                    continue;
                }
            };
            if matched.is_empty() {
                out.push(missing(arg, "glob pattern matched no file"));
            }
            out.extend(matched.into_iter().map(file_input));
        } else {
            out.push(missing(arg, "no such file or directory"));
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, files);
        } else if p.is_file() {
            files.push(p);
        }
    }
}

fn file_input(path: PathBuf) -> Input {
    let size = std::fs::metadata(&path).ok().map(|m| m.len());
    Input {
        name: path.display().to_string(),
        location: Location::Local(path),
        size,
    }
}

fn missing(arg: &str, why: &str) -> Input {
    Input {
        name: arg.to_string(),
        location: Location::Missing(format!("{arg}: {why}")),
        size: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_dirs_globs_and_keeps_missing() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("a/b")).expect("mkdir");
        std::fs::write(d.path().join("a/b/2.xz"), "x").expect("write");
        std::fs::write(d.path().join("a/1.gz"), "x").expect("write");
        let dir = d.path().join("a").display().to_string();
        let pat = d.path().join("a/*.gz").display().to_string();
        let nope = d.path().join("nope").display().to_string();
        let got = expand_local(&[dir, pat, nope]);
        let names: Vec<String> = got
            .iter()
            .map(|i| i.name.rsplit('/').next().unwrap_or("").to_string())
            .collect();
        assert_eq!(names, vec!["1.gz", "2.xz", "1.gz", "nope"]);
        assert!(matches!(got[3].location, Location::Missing(_)));
    }
}
