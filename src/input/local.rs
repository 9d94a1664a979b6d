//! Local inputs: files, directories (recursively, in name order, following symlinks) and
//! glob patterns. Each file is read once, however many names lead to it: symlink loops,
//! two links to one file, and a file named twice all come down to one input.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Input, Location};

/// A file or directory as the kernel knows it: (device, inode).
type FileId = (u64, u64);

fn id_of(m: &std::fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

/// Expands arguments one after another, remembering every directory walked and every file
/// taken, so that no directory is walked twice and no file becomes two inputs.
#[derive(Default)]
pub struct LocalExpander {
    dirs: HashSet<FileId>,
    /// The name each file was first taken under, for the message about a later one.
    files: HashMap<FileId, String>,
}

/// Expands command-line arguments into inputs. An argument that matches nothing becomes a
/// `Missing` input, so the report names it and the other inputs still run.
pub fn expand_local(args: &[String]) -> Vec<Input> {
    let mut e = LocalExpander::default();
    args.iter().flat_map(|a| e.expand(a)).collect()
}

impl LocalExpander {
    pub fn expand(&mut self, arg: &str) -> Vec<Input> {
        let path = Path::new(arg);
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                if self.dirs.contains(&id_of(&m)) {
                    tracing::warn!(
                        "`{arg}` was already read as part of another directory: skipped"
                    );
                    return Vec::new();
                }
                let (files, found) = self.walk(path);
                if found == 0 {
                    return vec![missing(arg, "directory holds no files")];
                }
                files
            }
            Ok(m) => self.take(path.to_path_buf(), &m).into_iter().collect(),
            Err(_) if arg.contains(['*', '?', '[']) => self.glob(arg),
            Err(_) if path.symlink_metadata().is_ok() => {
                vec![missing(arg, "a symlink to nothing (or a loop of symlinks)")]
            }
            Err(_) => vec![missing(arg, "no such file or directory")],
        }
    }

    fn glob(&mut self, arg: &str) -> Vec<Input> {
        let paths = match glob::glob(arg) {
            Ok(paths) => paths,
            Err(e) => return vec![missing(arg, &format!("bad glob pattern: {e}"))],
        };
        let mut out = Vec::new();
        let mut found = 0;
        for p in paths.filter_map(Result::ok) {
            if let Ok(m) = std::fs::metadata(&p) {
                if m.is_file() {
                    found += 1;
                    out.extend(self.take(p, &m));
                }
            }
        }
        if found == 0 {
            return vec![missing(arg, "glob pattern matched no file")];
        }
        out
    }

    /// The files under `root` in name order, depth first, symlinks followed; and how many
    /// files were found, counting those already taken under another name.
    fn walk(&mut self, root: &Path) -> (Vec<Input>, usize) {
        let mut out = Vec::new();
        let mut found = 0;
        // An explicit stack: a deep tree must not overflow the thread's.
        let mut stack = vec![root.to_path_buf()];
        while let Some(p) = stack.pop() {
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                if !self.dirs.insert(id_of(&m)) {
                    tracing::debug!("`{}`: directory already walked, skipped", p.display());
                    continue;
                }
                let Ok(entries) = std::fs::read_dir(&p) else {
                    continue;
                };
                let mut children: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort_by(|a, b| b.cmp(a));
                stack.extend(children);
            } else if m.is_file() {
                found += 1;
                out.extend(self.take(p, &m));
            }
        }
        (out, found)
    }

    /// The input for `path`, unless its file was taken already.
    fn take(&mut self, path: PathBuf, m: &std::fs::Metadata) -> Option<Input> {
        let name = path.display().to_string();
        if let Some(first) = self.files.get(&id_of(m)) {
            tracing::warn!("`{name}` is the same file as `{first}`: read once");
            return None;
        }
        self.files.insert(id_of(m), name.clone());
        Some(Input {
            name,
            location: Location::Local(path),
            size: Some(m.len()),
        })
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
        // The glob's `1.gz` was already taken from the directory.
        assert_eq!(names, vec!["1.gz", "2.xz", "nope"]);
        assert!(matches!(got[2].location, Location::Missing(_)));
    }

    fn names_under(root: &Path, got: &[Input]) -> Vec<String> {
        got.iter()
            .map(|i| {
                i.name
                    .strip_prefix(&format!("{}/", root.display()))
                    .unwrap_or(&i.name)
                    .to_string()
            })
            .collect()
    }

    /// Regression: a `self -> .` link made the walk read the directory dozens of times
    /// (until the path grew too long), multiplying every count.
    #[test]
    fn symlink_loops_and_aliases_yield_each_file_once() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("in/sub")).expect("mkdir");
        std::fs::write(r.join("in/a"), "a").expect("write");
        std::fs::write(r.join("in/sub/b"), "b").expect("write");
        std::os::unix::fs::symlink(".", r.join("in/self")).expect("symlink");
        std::os::unix::fs::symlink("a", r.join("in/a-again")).expect("symlink");
        std::os::unix::fs::symlink("sub", r.join("in/sub-again")).expect("symlink");
        std::os::unix::fs::symlink("..", r.join("in/sub/up")).expect("symlink");
        std::fs::hard_link(r.join("in/a"), r.join("in/z-hard")).expect("link");
        let dir = r.join("in").display().to_string();
        let a = r.join("in/a").display().to_string();
        let got = expand_local(&[a.clone(), dir.clone(), a, dir]);
        assert_eq!(names_under(r, &got), vec!["in/a", "in/sub/b"]);
    }

    #[test]
    fn symlinked_directory_argument_is_walked_once() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        std::fs::create_dir_all(r.join("in")).expect("mkdir");
        std::fs::write(r.join("in/a"), "a").expect("write");
        std::os::unix::fs::symlink("in", r.join("link")).expect("symlink");
        std::os::unix::fs::symlink("loop", r.join("loop")).expect("symlink");
        let args: Vec<String> = ["link", "in", "loop"]
            .iter()
            .map(|n| r.join(n).display().to_string())
            .collect();
        let got = expand_local(&args);
        assert_eq!(names_under(r, &got), vec!["link/a", "loop"]);
        assert!(matches!(got[1].location, Location::Missing(_)));
    }
}
