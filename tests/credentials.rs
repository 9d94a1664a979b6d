//! Credentials: values made by an independent implementation (Python's `cryptography`, in
//! `tests/fixtures/credentials_vectors.py`) are decrypted by polymr, polymr's are decrypted
//! by it, keys are written safely, and a bad value is refused without leaking a secret.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::util::*;

fn python() -> String {
    std::env::var("POLYMR_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/credentials_vectors.py")
}

/// The vectors need `cryptography`; without it the tests fail (never skip) and say how to
/// get it.
fn require_cryptography() {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import cryptography"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{py}` (POLYMR_TEST_PYTHON): {e}; run `make test-deps`")
        });
    assert!(
        out.status.success(),
        "`{py}` cannot import `cryptography`, which the credentials tests need for independent \
         test vectors: run `make test-deps` (it makes target/test-venv), or set \
         POLYMR_TEST_PYTHON to a Python that has it\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh key and the same credentials in both formats, from the Python script.
fn vectors() -> Value {
    require_cryptography();
    let out = Command::new(python())
        .arg(script())
        .arg("generate")
        .output()
        .expect("run credentials_vectors.py");
    assert!(
        out.status.success(),
        "credentials_vectors.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("vectors are JSON")
}

/// Writes a private key as its owner alone may read it.
fn write_key(t: &TestContext, rel: &str, pem: &str) -> PathBuf {
    let p = t.write(rel, pem);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

/// The credentials JSON that the Python script gets out of `value` with `key`.
fn python_decrypt(key: &Path, value: &str) -> Value {
    let out = Command::new(python())
        .arg(script())
        .arg("decrypt")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(value.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run credentials_vectors.py decrypt");
    assert!(
        out.status.success(),
        "Python could not decrypt polymr's value: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plaintext is JSON")
}

/// `polymr credentials decrypt-check` on `value`: (exit code, stdout, stderr).
fn decrypt_check(t: &TestContext, value: &str, key: Option<&Path>) -> (i32, String, String) {
    let mut cmd = t.cmd();
    cmd.args(["credentials", "decrypt-check"])
        .env("CREDENTIALS", value);
    if let Some(k) = key {
        cmd.arg("--private-key").arg(k);
    }
    let out = cmd.output().expect("run polymr");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn secrets(v: &Value) -> [String; 2] {
    [
        v["plaintext"]["secretAccessKey"]
            .as_str()
            .unwrap()
            .to_string(),
        v["plaintext"]["sessionToken"].as_str().unwrap().to_string(),
    ]
}

fn assert_no_secret(v: &Value, text: &str) {
    for s in secrets(v) {
        assert!(!text.contains(&s), "a secret leaked: {text}");
    }
}

#[test]
fn both_formats_decrypt_with_pkcs1_and_pkcs8_keys() {
    let t = TestContext::new();
    let v = vectors();
    let pkcs1 = write_key(&t, "k1.pem", v["private_key_pkcs1_pem"].as_str().unwrap());
    let pkcs8 = write_key(&t, "k8.pem", v["private_key_pkcs8_pem"].as_str().unwrap());
    for (format, field) in [("original", "original"), ("v2", "new")] {
        for key in [&pkcs1, &pkcs8] {
            let (code, stdout, stderr) = decrypt_check(&t, v[field].as_str().unwrap(), Some(key));
            assert_eq!(code, 0, "{format} with {}: {stderr}", key.display());
            let got: Value = serde_json::from_str(&stdout).expect("summary is JSON");
            assert_eq!(got["format"], format);
            assert_eq!(got["accessKeyId"], v["plaintext"]["accessKeyId"]);
            assert_eq!(got["region"], "us-west-2");
            assert_eq!(got["sessionToken"], true);
            assert_no_secret(&v, &stdout);
            assert_no_secret(&v, &stderr);
        }
    }
}

#[test]
fn private_key_path_comes_from_polymr_private_key() {
    let t = TestContext::new();
    let v = vectors();
    let key = write_key(
        &t,
        "keys/k.pem",
        v["private_key_pkcs1_pem"].as_str().unwrap(),
    );
    let out = t
        .cmd()
        .args(["credentials", "decrypt-check"])
        .env("CREDENTIALS", v["original"].as_str().unwrap())
        .env("POLYMR_PRIVATE_KEY", &key)
        .assert()
        .success();
    let got: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(got["accessKeyId"], v["plaintext"]["accessKeyId"]);
}

#[test]
fn encrypt_output_is_decrypted_by_python() {
    let t = TestContext::new();
    let v = vectors();
    let key = write_key(&t, "k.pem", v["private_key_pkcs8_pem"].as_str().unwrap());
    let spki = t.write("pub.pem", v["public_key_pem"].as_str().unwrap());
    let pkcs1 = t.write("pub1.pem", v["public_key_pkcs1_pem"].as_str().unwrap());
    let plaintext = v["plaintext"].clone();
    let input = t.write("creds.json", plaintext.to_string());

    let encrypt = |public: &Path| {
        let mut c = t.cmd();
        c.args(["credentials", "encrypt", "--public-key"])
            .arg(public);
        c
    };
    let mut values = vec![];
    for public in [&spki, &pkcs1] {
        let out = encrypt(public)
            .arg("--input")
            .arg(&input)
            .assert()
            .success();
        values.push(String::from_utf8(out.get_output().stdout.clone()).unwrap());
    }
    let out = encrypt(&spki)
        .args(["--input", "-"])
        .write_stdin(plaintext.to_string())
        .assert()
        .success();
    values.push(String::from_utf8(out.get_output().stdout.clone()).unwrap());
    let out = encrypt(&spki)
        .env(
            "AWS_ACCESS_KEY_ID",
            plaintext["accessKeyId"].as_str().unwrap(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            plaintext["secretAccessKey"].as_str().unwrap(),
        )
        .env(
            "AWS_SESSION_TOKEN",
            plaintext["sessionToken"].as_str().unwrap(),
        )
        .env("AWS_DEFAULT_REGION", "us-west-2")
        .assert()
        .success();
    values.push(String::from_utf8(out.get_output().stdout.clone()).unwrap());

    for value in &values {
        assert_no_secret(&v, value);
        let outer: Value = serde_json::from_slice(&STANDARD.decode(value.trim()).unwrap()).unwrap();
        assert_eq!(outer["v"], 2);
        assert_eq!(outer["alg"], "RSA-OAEP-256+A256GCM");
        assert_eq!(python_decrypt(&key, value), plaintext);
    }
}

#[test]
fn encrypt_accepts_sts_output_and_takes_the_region_from_the_environment() {
    let t = TestContext::new();
    let v = vectors();
    let key = write_key(&t, "k.pem", v["private_key_pkcs1_pem"].as_str().unwrap());
    t.write("pub.pem", v["public_key_pem"].as_str().unwrap());
    let p = &v["plaintext"];
    let sts = serde_json::json!({
        "Credentials": {
            "AccessKeyId": p["accessKeyId"],
            "SecretAccessKey": p["secretAccessKey"],
            "SessionToken": p["sessionToken"],
            "Expiration": "2014-08-01T00:00:00Z",
        },
        "FederatedUser": {"FederatedUserId": "1:telemetry", "Arn": "arn:aws:sts::1:federated-user/telemetry"},
    });
    t.write("sts.json", sts.to_string());
    let out = t
        .cmd()
        .args([
            "credentials",
            "encrypt",
            "--public-key",
            "pub.pem",
            "--input",
            "sts.json",
        ])
        .env("AWS_REGION", "us-west-2")
        .assert()
        .success();
    let value = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(python_decrypt(&key, &value), *p);
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read() {
    let t = TestContext::new();
    t.cmd()
        .args(["credentials", "keygen", "--out-dir", "keys"])
        .assert()
        .success();
    let private = t.path("keys/key.pem");
    let public = t.path("keys/key.pub.pem");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key.pem has mode {mode:o}");
    let pem = t.read("keys/key.pem");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    assert!(t
        .read("keys/key.pub.pem")
        .starts_with("-----BEGIN PUBLIC KEY-----"));

    // An existing key is never overwritten.
    let out = t
        .cmd()
        .args(["credentials", "keygen", "--out-dir", "keys"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(t.read("keys/key.pem"), pem);

    // The pair works, and Python reads the private key polymr wrote.
    let v = vectors();
    t.write("creds.json", v["plaintext"].to_string());
    let out = t
        .cmd()
        .args([
            "credentials",
            "encrypt",
            "--input",
            "creds.json",
            "--public-key",
        ])
        .arg(&public)
        .assert()
        .success();
    let value = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(python_decrypt(&private, &value), v["plaintext"]);
    let (code, stdout, stderr) = decrypt_check(&t, &value, Some(&private));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(v["plaintext"]["accessKeyId"].as_str().unwrap()));
    // Owner-only permissions mean no warning about them.
    assert!(!stderr.contains("group or others"), "{stderr}");
}

/// Decodes a base64 JSON value, lets `f` change it, encodes it again.
fn tamper(value: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut obj: Value = serde_json::from_slice(&STANDARD.decode(value).unwrap()).unwrap();
    f(&mut obj);
    STANDARD.encode(obj.to_string())
}

fn flip(b64: &Value, at: impl FnOnce(usize) -> usize) -> Value {
    let mut bytes = STANDARD.decode(b64.as_str().unwrap()).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0x01;
    STANDARD.encode(bytes).into()
}

#[test]
fn tampered_values_are_refused_saying_which_layer_failed() {
    let t = TestContext::new();
    let v = vectors();
    let key = write_key(&t, "k.pem", v["private_key_pkcs8_pem"].as_str().unwrap());
    let new = v["new"].as_str().unwrap();
    let original = v["original"].as_str().unwrap();
    let other = vectors();
    let other_key = write_key(
        &t,
        "other.pem",
        other["private_key_pkcs1_pem"].as_str().unwrap(),
    );

    let tampered_original = tamper(original, |o| {
        let mut inner: Value = serde_json::from_str(o["credentials"].as_str().unwrap()).unwrap();
        inner["ct"] = flip(&inner["ct"], |_| 3);
        o["credentials"] = inner.to_string().into();
    });
    let (key, other_key) = (key.as_path(), other_key.as_path());
    let cases: Vec<(&str, String, &Path, Vec<&str>)> = vec![
        (
            "ct byte",
            tamper(new, |o| o["ct"] = flip(&o["ct"], |_| 0)),
            key,
            vec!["authentication failed"],
        ),
        (
            "tag byte",
            tamper(new, |o| o["ct"] = flip(&o["ct"], |n| n - 1)),
            key,
            vec!["authentication failed"],
        ),
        (
            "iv byte",
            tamper(new, |o| o["iv"] = flip(&o["iv"], |_| 0)),
            key,
            vec!["authentication failed"],
        ),
        (
            "wrapped key byte",
            tamper(new, |o| o["key"] = flip(&o["key"], |_| 7)),
            key,
            vec!["key unwrap failed"],
        ),
        (
            "version",
            tamper(new, |o| o["v"] = 3.into()),
            key,
            vec!["unknown credentials envelope version 3"],
        ),
        (
            "truncated",
            new[..(new.len() / 2) & !3].to_string(),
            key,
            vec!["CREDENTIALS", "JSON", "truncated"],
        ),
        (
            "not base64",
            format!("{}!", &new[..40]),
            key,
            vec!["not valid base64"],
        ),
        (
            "wrong key (v2)",
            new.to_string(),
            other_key,
            vec!["key unwrap failed"],
        ),
        (
            "wrong key (original)",
            original.to_string(),
            other_key,
            vec!["key unwrap failed", "symmetricKey"],
        ),
        (
            "original ct byte",
            tampered_original,
            key,
            vec!["decrypted credentials are not valid credentials JSON"],
        ),
    ];
    for (what, value, key, needles) in cases {
        let (code, stdout, stderr) = decrypt_check(&t, &value, Some(key));
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(stdout.is_empty(), "{what}: {stdout}");
        for n in needles {
            assert!(stderr.contains(n), "{what}: stderr lacks {n:?}: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert_no_secret(&v, &stderr);
    }
}

#[test]
fn missing_or_bad_keys_are_usage_errors() {
    let t = TestContext::new();
    let v = vectors();
    let new = v["new"].as_str().unwrap();

    let (code, _, stderr) = decrypt_check(&t, new, Some(Path::new("nowhere/key.pem")));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nowhere/key.pem"), "{stderr}");
    assert!(stderr.contains("--private-key"), "{stderr}");

    let bad = write_key(&t, "bad.pem", "not a key\n");
    let (code, _, stderr) = decrypt_check(&t, new, Some(&bad));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid RSA private key PEM"), "{stderr}");

    // A public key where the private one belongs, and the reverse.
    let public = write_key(&t, "pub.pem", v["public_key_pem"].as_str().unwrap());
    let (code, _, stderr) = decrypt_check(&t, new, Some(&public));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("public key"), "{stderr}");
    let private = write_key(&t, "k.pem", v["private_key_pkcs8_pem"].as_str().unwrap());
    let out = t
        .cmd()
        .args(["credentials", "encrypt", "--public-key"])
        .arg(&private)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("private key"), "{stderr}");

    // No CREDENTIALS at all.
    let out = t
        .cmd()
        .args(["credentials", "decrypt-check", "--private-key"])
        .arg(&private)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("CREDENTIALS"), "{stderr}");
}

#[test]
fn world_readable_private_key_is_warned_about() {
    let t = TestContext::new();
    let v = vectors();
    let key = t.write("k.pem", v["private_key_pkcs1_pem"].as_str().unwrap());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = decrypt_check(&t, v["new"].as_str().unwrap(), Some(&key));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("group or others"), "{stderr}");
}
