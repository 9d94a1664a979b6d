//! `CREDENTIALS` (src/credentials.rs), both formats: any value, given as text or as the
//! base64 of any bytes (so the fuzzer reaches the JSON envelope directly), is refused with an
//! error and never a panic: only the holder of the key can make a value that decrypts.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;

fn private_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        polymr::credentials::keygen(2048)
            .expect("keygen")
            .0
            .to_string()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let value = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        STANDARD.encode(rest)
    };
    assert!(polymr::credentials::decrypt(&value, private_key()).is_err());
});
