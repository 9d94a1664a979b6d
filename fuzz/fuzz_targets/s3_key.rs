//! S3 keys as paths (`--keep-downloads`, src/input/s3.rs): an accepted key is the download
//! directory plus plain names; `..`, NUL and keys that name no file are refused.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use polymr::input::s3::safe_download_path;

fuzz_target!(|key: &str| {
    let root = Path::new("/work/downloads/s3");
    let parts: Vec<&str> = key
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let refused = key.contains('\0') || parts.is_empty() || parts.contains(&"..");
    match safe_download_path(root, key) {
        Ok(path) => {
            assert!(!refused, "{key:?} accepted as {path:?}");
            let rel = path.strip_prefix(root).expect("inside the root");
            assert!(
                rel.components().all(|c| matches!(c, Component::Normal(_))),
                "{path:?}"
            );
            let got: Vec<&str> = rel.iter().map(|c| c.to_str().expect("utf-8")).collect();
            assert_eq!(got, parts);
        }
        Err(e) => assert!(refused && !e.is_empty(), "{key:?} refused: {e}"),
    }
});
