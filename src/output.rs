//! Publishing results atomically: everything is written to a temporary file beside the
//! target and renamed over it only when the task succeeded, so a reader never sees half a
//! result and a failed task leaves the previous result (or nothing) in place.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::process::{register_temp, unregister_temp};

pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    registered: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)?;
        register_temp(temp.path());
        Ok(AtomicFile {
            registered: temp.path().to_path_buf(),
            temp,
            target: target.to_path_buf(),
        })
    }

    /// A second handle on the temporary file, for async writers.
    pub fn reopen(&self) -> io::Result<std::fs::File> {
        self.temp.reopen()
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes to disk and renames over the target.
    pub fn publish(self) -> io::Result<()> {
        self.temp.as_file().sync_all()?;
        unregister_temp(&self.registered);
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let out = AtomicFile::create(target)?;
    out.temp.as_file().write_all(bytes)?;
    out.publish()
    // On an error above, the NamedTempFile removes itself; the registry entry stays until exit,
    // harmless since removing a missing file is a no-op.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpublished_file_leaves_nothing() {
        let d = tempfile::tempdir().expect("tempdir");
        let target = d.path().join("out/result.txt");
        {
            let f = AtomicFile::create(&target).expect("create");
            f.reopen()
                .expect("reopen")
                .write_all(b"partial")
                .expect("write");
        }
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(d.path().join("out"))
                .expect("dir")
                .count(),
            0
        );
        write_atomic(&target, b"done").expect("publish");
        assert_eq!(std::fs::read(&target).expect("read"), b"done");
    }
}
