//! `analysis-tools.yml` (src/config.rs): any text is parsed or refused with an error that
//! names the file, never a panic (serde_yaml parses with unsafe-libyaml: run with ASan).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polymr::config::JobConfig;

/// A config directory with the scripts the dictionary names, so configs can be valid.
fn config_path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        for f in [
            "m.py",
            "m.js",
            "custom-mappers/cm.py",
            "custom-reducers/reducer.py",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, "").expect("write");
        }
        let path = d.path().join("analysis-tools.yml");
        (d, path)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = JobConfig::parse(config_path(), text) {
        let m = e.to_string();
        assert!(m.contains("analysis-tools.yml"), "{m}");
    }
});
