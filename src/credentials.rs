//! AWS credentials that arrive encrypted in the `CREDENTIALS` environment variable, decrypted
//! in memory only (the original wrote them to a file), and the tools to make them.
//!
//! Two formats are read, told apart by the keys of the JSON object inside the base64:
//!
//! * **v2** (the default, written by [`encrypt`]): an authenticated envelope
//!   `{"v":2,"alg":"RSA-OAEP-256+A256GCM","key":…,"iv":…,"ct":…}` — a random 32-byte key
//!   wrapped with RSA-OAEP (SHA-256), the credentials JSON sealed with AES-256-GCM under the
//!   associated data [`AAD`]. Any altered byte is refused.
//! * **original** (telemetry-analysis-base, CryptoJS): `{"credentials":…,"symmetricKey":…}` —
//!   128 random bytes wrapped with RSA-OAEP (SHA-1), whose base64 *text* is a CryptoJS
//!   passphrase; `credentials` is CryptoJS's JsonFormatter text `{"ct","iv","s"}`, decrypted
//!   with AES-256-CBC under OpenSSL's `EVP_BytesToKey` (MD5, one round, the salt `s`).
//!   It is not authenticated: a tampered value shows up as bad padding or bad JSON.
//!
//! No error message and no `Debug` output carries a secret: errors name the layer that failed
//! and, for JSON, only the position.

use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The environment variable a task receives its encrypted credentials in.
pub const ENV_VAR: &str = "CREDENTIALS";
/// The environment variable naming the private key's path (after `--private-key`).
pub const KEY_ENV_VAR: &str = "POLYMR_PRIVATE_KEY";
/// Where the original image kept its private key.
pub const DEFAULT_KEY_PATH: &str = "/opt/analysis-tools/key.pem";
/// The v2 envelope's algorithm name.
pub const ALG_V2: &str = "RSA-OAEP-256+A256GCM";
/// Associated data of the v2 envelope's AES-GCM seal: binds the ciphertext to this use.
pub const AAD: &[u8] = b"polymr-credentials-v2";

const GCM_NONCE_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const AES256_KEY_LEN: usize = 32;
const AES_BLOCK_LEN: usize = 16;
const CRYPTOJS_SALT_LEN: usize = 8;

/// Base64 as the original's Node.js `Buffer` wrote it; padding optional on input.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Temporary AWS credentials (an STS federation token in the original), as the JSON the
/// task receives: `{"accessKeyId", "secretAccessKey", "sessionToken", "region"}`.
/// The AWS CLI's PascalCase names (`AccessKeyId`, …) are accepted too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct AwsCredentials {
    #[serde(rename = "accessKeyId", alias = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "secretAccessKey", alias = "SecretAccessKey")]
    pub secret_access_key: String,
    #[serde(
        rename = "sessionToken",
        alias = "SessionToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_token: Option<String>,
    #[serde(
        rename = "region",
        alias = "Region",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub region: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("AwsCredentials")
            .field(
                "access_key_id",
                &format_args!("{}", self.access_key_id_hint()),
            )
            .field("secret_access_key", &format_args!("<redacted>"))
            .field("session_token", &redacted(&self.session_token))
            .field("region", &redacted(&self.region))
            .finish()
    }
}

impl AwsCredentials {
    /// The access key id's first four characters (`AKIA…`, `ASIA…`), safe for logs.
    pub fn access_key_id_hint(&self) -> String {
        let head: String = self.access_key_id.chars().take(4).collect();
        format!("{head}…")
    }
}

/// Which format a `CREDENTIALS` value was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The authenticated envelope, `{"v":2,…}`.
    V2,
    /// The original CryptoJS format, `{"credentials","symmetricKey"}`.
    Original,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::V2 => "v2",
            Format::Original => "original",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("`{ENV_VAR}` is not valid base64")]
    NotBase64(#[source] base64::DecodeError),
    #[error("`{ENV_VAR}` does not hold a JSON object ({0})")]
    NotJson(String),
    #[error("unknown credentials envelope version {0} (this polymr reads version 2 and the original format)")]
    UnknownVersion(String),
    #[error("unknown credentials envelope algorithm {0:?} (expected {ALG_V2:?})")]
    UnknownAlgorithm(String),
    #[error("unrecognized credentials envelope: expected the keys v, alg, key, iv, ct (v2) or credentials, symmetricKey (original); found {0}")]
    UnknownFormat(String),
    #[error("credentials envelope field `{field}` is malformed: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("key unwrap failed: `{field}` could not be decrypted with this RSA private key (a different key, or an altered value)")]
    KeyUnwrap { field: &'static str },
    #[error("authentication failed: the encrypted credentials were altered or truncated")]
    Authentication,
    #[error("decryption failed: bad padding (a different key, or an altered value)")]
    Padding,
    #[error("decrypted credentials are not valid credentials JSON ({0})")]
    Plaintext(String),
    #[error("credentials input is not valid credentials JSON ({0})")]
    InputJson(String),
    #[error(
        "failed to read the RSA private key `{path}` (set it with --private-key or {KEY_ENV_VAR})"
    )]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the RSA public key `{path}`")]
    ReadPublicKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid RSA {what} PEM: {reason}")]
    BadPem { what: &'static str, reason: String },
    #[error("RSA key size {0} is not supported (use 2048 to 16384 bits)")]
    KeySize(usize),
    #[error("RSA key generation failed")]
    Keygen(#[source] rsa::Error),
    #[error("failed to encode the RSA key as PEM")]
    EncodeKey(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
    #[error("{0} holds AWS credentials in clear, not a `{ENV_VAR}` value: encrypt them with `polymr credentials encrypt`; clear credentials are never put into a task")]
    Clear(String),
}

impl CredentialsError {
    /// Bad input or configuration (a missing key, a bad PEM, a corrupt `CREDENTIALS`), as
    /// opposed to a failure inside polymr. Commands map these to exit code 2.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            CredentialsError::Keygen(_)
                | CredentialsError::EncodeKey(_)
                | CredentialsError::Encrypt(_)
        )
    }
}

/// A JSON error reduced to its kind and position: serde's own messages can quote the
/// offending value, which may be a secret.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Eof => "unexpected end (truncated?)",
        // "missing field `x`" names a field, never a value; other data errors may quote one.
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("missing field") {
                return msg;
            }
            "wrong type or value"
        }
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

fn b64_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Vec<u8>, CredentialsError> {
    let s = str_field(obj, field)?;
    B64_LENIENT
        .decode(s.as_bytes())
        .map_err(|e| CredentialsError::BadField {
            field,
            reason: format!("not base64 ({e})"),
        })
}

fn str_field<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<&'a str, CredentialsError> {
    match obj.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(CredentialsError::BadField {
            field,
            reason: "not a string".into(),
        }),
        None => Err(CredentialsError::BadField {
            field,
            reason: "missing".into(),
        }),
    }
}

fn hex_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Vec<u8>, CredentialsError> {
    let s = str_field(obj, field)?;
    let bad = || CredentialsError::BadField {
        field,
        reason: "not hex".into(),
    };
    if s.len() % 2 != 0 || !s.is_ascii() {
        return Err(bad());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// Decrypts a `CREDENTIALS` value (either format) with a PEM private key.
pub fn decrypt(value: &str, private_key_pem: &str) -> Result<AwsCredentials, CredentialsError> {
    decrypt_with_format(value, private_key_pem).map(|(c, _)| c)
}

/// [`decrypt`], also telling which format the value was in.
pub fn decrypt_with_format(
    value: &str,
    private_key_pem: &str,
) -> Result<(AwsCredentials, Format), CredentialsError> {
    // Wrapped base64 (`base64` wraps at 76 columns) and a trailing newline are harmless.
    let compact: String = value.split_ascii_whitespace().collect();
    let outer = B64_LENIENT
        .decode(compact.as_bytes())
        .map_err(CredentialsError::NotBase64)?;
    let envelope: serde_json::Value =
        serde_json::from_slice(&outer).map_err(|e| CredentialsError::NotJson(json_error(&e)))?;
    let serde_json::Value::Object(obj) = envelope else {
        return Err(CredentialsError::NotJson("not an object".into()));
    };
    if obj.contains_key("v") {
        let key = parse_private_key(private_key_pem)?;
        return Ok((decrypt_v2(&obj, &key)?, Format::V2));
    }
    if obj.contains_key("credentials") && obj.contains_key("symmetricKey") {
        let key = parse_private_key(private_key_pem)?;
        return Ok((decrypt_original(&obj, &key)?, Format::Original));
    }
    let mut keys: Vec<String> = obj
        .keys()
        .take(8)
        .map(|k| format!("{:?}", k.chars().take(32).collect::<String>()))
        .collect();
    if keys.is_empty() {
        keys.push("no keys".into());
    }
    Err(CredentialsError::UnknownFormat(keys.join(", ")))
}

fn decrypt_v2(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &RsaPrivateKey,
) -> Result<AwsCredentials, CredentialsError> {
    let version = obj.get("v").unwrap_or(&serde_json::Value::Null);
    if version.as_u64() != Some(2) {
        let shown: String = version.to_string().chars().take(32).collect();
        return Err(CredentialsError::UnknownVersion(shown));
    }
    let alg = str_field(obj, "alg")?;
    if alg != ALG_V2 {
        return Err(CredentialsError::UnknownAlgorithm(
            alg.chars().take(64).collect(),
        ));
    }
    let wrapped = b64_field(obj, "key")?;
    let iv = b64_field(obj, "iv")?;
    let ct = b64_field(obj, "ct")?;
    if iv.len() != GCM_NONCE_LEN {
        return Err(CredentialsError::BadField {
            field: "iv",
            reason: format!("{} bytes, expected {GCM_NONCE_LEN}", iv.len()),
        });
    }
    if ct.len() < GCM_TAG_LEN {
        return Err(CredentialsError::BadField {
            field: "ct",
            reason: format!(
                "{} bytes, shorter than the {GCM_TAG_LEN}-byte tag (truncated)",
                ct.len()
            ),
        });
    }
    let aes_key = Zeroizing::new(
        key.decrypt(Oaep::new::<sha2::Sha256>(), &wrapped)
            .map_err(|_| CredentialsError::KeyUnwrap { field: "key" })?,
    );
    if aes_key.len() != AES256_KEY_LEN {
        return Err(CredentialsError::BadField {
            field: "key",
            reason: format!(
                "unwraps to {} bytes, expected {AES256_KEY_LEN}",
                aes_key.len()
            ),
        });
    }
    let cipher = Aes256Gcm::new_from_slice(&aes_key)
        .map_err(|_| CredentialsError::KeyUnwrap { field: "key" })?;
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(Nonce::from_slice(&iv), Payload { msg: &ct, aad: AAD })
            .map_err(|_| CredentialsError::Authentication)?,
    );
    parse_plaintext(&plaintext)
}

fn decrypt_original(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &RsaPrivateKey,
) -> Result<AwsCredentials, CredentialsError> {
    let wrapped = b64_field(obj, "symmetricKey")?;
    let symmetric = Zeroizing::new(key.decrypt(Oaep::new::<sha1::Sha1>(), &wrapped).map_err(
        |_| CredentialsError::KeyUnwrap {
            field: "symmetricKey",
        },
    )?);
    // CryptoJS was handed the key's base64 text, so that text (not the bytes) is the passphrase.
    let passphrase = Zeroizing::new(STANDARD.encode(&symmetric[..]));

    // `credentials` is the JsonFormatter's text; accept an already-parsed object too.
    let formatted = match obj.get("credentials") {
        Some(serde_json::Value::String(s)) => serde_json::from_str::<serde_json::Value>(s)
            .map_err(|e| CredentialsError::BadField {
                field: "credentials",
                reason: format!("not JSON ({})", json_error(&e)),
            })?,
        Some(v @ serde_json::Value::Object(_)) => v.clone(),
        _ => {
            return Err(CredentialsError::BadField {
                field: "credentials",
                reason: "not a string".into(),
            })
        }
    };
    let serde_json::Value::Object(cipher_params) = formatted else {
        return Err(CredentialsError::BadField {
            field: "credentials",
            reason: "not a JSON object".into(),
        });
    };
    let ct = b64_field(&cipher_params, "ct").map_err(|e| rename_field(e, "credentials.ct"))?;
    let salt = hex_field(&cipher_params, "s").map_err(|e| rename_field(e, "credentials.s"))?;
    if salt.len() != CRYPTOJS_SALT_LEN {
        return Err(CredentialsError::BadField {
            field: "credentials.s",
            reason: format!("{} bytes, expected {CRYPTOJS_SALT_LEN}", salt.len()),
        });
    }
    if ct.is_empty() || ct.len() % AES_BLOCK_LEN != 0 {
        return Err(CredentialsError::BadField {
            field: "credentials.ct",
            reason: format!(
                "{} bytes, not a whole number of {AES_BLOCK_LEN}-byte blocks (truncated)",
                ct.len()
            ),
        });
    }
    // CryptoJS ignores the formatter's `iv` when decrypting with a passphrase: it derives the
    // IV again from the passphrase and salt, and so do we.
    let derived = evp_bytes_to_key(passphrase.as_bytes(), &salt);
    let (aes_key, iv) = derived.split_at(AES256_KEY_LEN);
    let plaintext = Zeroizing::new(
        cbc::Decryptor::<aes::Aes256>::new_from_slices(aes_key, iv)
            .map_err(|_| CredentialsError::Padding)?
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .map_err(|_| CredentialsError::Padding)?,
    );
    parse_plaintext(&plaintext)
}

fn rename_field(e: CredentialsError, field: &'static str) -> CredentialsError {
    match e {
        CredentialsError::BadField { reason, .. } => CredentialsError::BadField { field, reason },
        other => other,
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one round, as CryptoJS's `OpenSSLKdf` uses it:
/// `D_i = MD5(D_{i-1} || passphrase || salt)`, concatenated to a 32-byte key and a 16-byte IV.
fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8]) -> Zeroizing<[u8; 48]> {
    let mut out = Zeroizing::new([0u8; 48]);
    let mut filled = 0;
    let mut prev: Option<Zeroizing<[u8; 16]>> = None;
    while filled < out.len() {
        let mut md5 = Md5::new();
        if let Some(p) = &prev {
            md5.update(&p[..]);
        }
        md5.update(passphrase);
        md5.update(salt);
        let block = Zeroizing::new(<[u8; 16]>::from(md5.finalize()));
        let n = (out.len() - filled).min(block.len());
        out[filled..filled + n].copy_from_slice(&block[..n]);
        filled += n;
        prev = Some(block);
    }
    out
}

fn parse_plaintext(plaintext: &[u8]) -> Result<AwsCredentials, CredentialsError> {
    serde_json::from_slice(plaintext).map_err(|e| CredentialsError::Plaintext(json_error(&e)))
}

/// Credentials JSON as a person hands it to `polymr credentials encrypt`: the task's own
/// shape, or the output of `aws sts get-federation-token` (`{"Credentials": {…}}`).
pub fn parse_credentials_json(text: &str) -> Result<AwsCredentials, CredentialsError> {
    #[derive(Deserialize)]
    struct StsOutput {
        #[serde(rename = "Credentials")]
        credentials: AwsCredentials,
    }
    match serde_json::from_str::<AwsCredentials>(text) {
        Ok(c) => Ok(c),
        Err(first) => match serde_json::from_str::<StsOutput>(text) {
            Ok(sts) => Ok(sts.credentials),
            Err(_) => Err(CredentialsError::InputJson(json_error(&first))),
        },
    }
}

/// The label of the first PEM block (`RSA PRIVATE KEY`, `PUBLIC KEY`, …) and the block itself,
/// without any text around it (`openssl` can print "Bag Attributes" before it).
fn pem_block(pem: &str) -> Option<(&str, &str)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start..];
    let label_end = rest["-----BEGIN ".len()..].find("-----")? + "-----BEGIN ".len();
    let label = &rest["-----BEGIN ".len()..label_end];
    let end_marker = format!("-----END {label}-----");
    let end = rest.find(&end_marker)? + end_marker.len();
    Some((label, &rest[..end]))
}

/// Parses a PEM RSA private key: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
pub fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, CredentialsError> {
    let bad = |reason: String| CredentialsError::BadPem {
        what: "private key",
        reason,
    };
    let Some((label, block)) = pem_block(pem) else {
        return Err(bad("no PEM block (expected `-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`)".into()));
    };
    match label {
        "RSA PRIVATE KEY" => {
            RsaPrivateKey::from_pkcs1_pem(block).map_err(|e| bad(format!("PKCS#1: {e}")))
        }
        "PRIVATE KEY" => {
            RsaPrivateKey::from_pkcs8_pem(block).map_err(|e| bad(format!("PKCS#8: {e}")))
        }
        "ENCRYPTED PRIVATE KEY" => Err(bad("passphrase-protected keys are not supported".into())),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {
            Err(bad("this is a public key; pass the private key".into()))
        }
        other => Err(bad(format!(
            "unexpected PEM label {:?} (expected `RSA PRIVATE KEY` or `PRIVATE KEY`)",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

/// Parses a PEM RSA public key: SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`).
pub fn parse_public_key(pem: &str) -> Result<RsaPublicKey, CredentialsError> {
    let bad = |reason: String| CredentialsError::BadPem {
        what: "public key",
        reason,
    };
    let Some((label, block)) = pem_block(pem) else {
        return Err(bad("no PEM block (expected `-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`)".into()));
    };
    match label {
        "PUBLIC KEY" => {
            RsaPublicKey::from_public_key_pem(block).map_err(|e| bad(format!("SPKI: {e}")))
        }
        "RSA PUBLIC KEY" => {
            RsaPublicKey::from_pkcs1_pem(block).map_err(|e| bad(format!("PKCS#1: {e}")))
        }
        "RSA PRIVATE KEY" | "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => Err(bad(
            "this is a private key; pass the public key (key.pub.pem)".into(),
        )),
        other => Err(bad(format!(
            "unexpected PEM label {:?} (expected `PUBLIC KEY` or `RSA PUBLIC KEY`)",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

#[derive(Serialize)]
struct EnvelopeV2<'a> {
    v: u32,
    alg: &'a str,
    key: String,
    iv: String,
    ct: String,
}

/// Encrypts credentials for the holder of `public_key_pem`'s private key, in the v2 format;
/// returns the `CREDENTIALS` value.
pub fn encrypt(creds: &AwsCredentials, public_key_pem: &str) -> Result<String, CredentialsError> {
    let public = parse_public_key(public_key_pem)?;
    let plaintext = Zeroizing::new(
        serde_json::to_vec(creds).map_err(|e| CredentialsError::Encrypt(json_error(&e)))?,
    );
    let mut aes_key = Zeroizing::new([0u8; AES256_KEY_LEN]);
    OsRng.fill_bytes(&mut aes_key[..]);
    let mut iv = [0u8; GCM_NONCE_LEN];
    OsRng.fill_bytes(&mut iv);
    let wrapped = public
        .encrypt(&mut OsRng, Oaep::new::<sha2::Sha256>(), &aes_key[..])
        .map_err(|e| CredentialsError::Encrypt(format!("RSA-OAEP: {e}")))?;
    let cipher = Aes256Gcm::new_from_slice(&aes_key[..])
        .map_err(|e| CredentialsError::Encrypt(format!("AES-GCM key: {e}")))?;
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: &plaintext,
                aad: AAD,
            },
        )
        .map_err(|_| CredentialsError::Encrypt("AES-GCM seal failed".into()))?;
    let envelope = EnvelopeV2 {
        v: 2,
        alg: ALG_V2,
        key: STANDARD.encode(wrapped),
        iv: STANDARD.encode(iv),
        ct: STANDARD.encode(ct),
    };
    let json =
        serde_json::to_vec(&envelope).map_err(|e| CredentialsError::Encrypt(json_error(&e)))?;
    Ok(STANDARD.encode(json))
}

/// A new RSA key pair: the private key as PKCS#8 PEM, the public key as SPKI PEM.
pub fn keygen(bits: usize) -> Result<(Zeroizing<String>, String), CredentialsError> {
    if !(2048..=16384).contains(&bits) {
        return Err(CredentialsError::KeySize(bits));
    }
    let private = RsaPrivateKey::new(&mut OsRng, bits).map_err(CredentialsError::Keygen)?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| CredentialsError::EncodeKey(e.to_string()))?;
    let public_pem = RsaPublicKey::from(&private)
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| CredentialsError::EncodeKey(e.to_string()))?;
    Ok((private_pem, public_pem))
}

/// The private key's path: `--private-key`, else `$POLYMR_PRIVATE_KEY`, else where the
/// original image kept it.
pub fn private_key_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(KEY_ENV_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_KEY_PATH),
    }
}

/// Reads a private key file, warning when its mode lets group or others read it.
pub fn load_private_key(path: &Path) -> Result<Zeroizing<String>, CredentialsError> {
    let read_err = |source| CredentialsError::ReadKey {
        path: path.to_path_buf(),
        source,
    };
    let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(read_err)?);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the RSA private key can be read by group or others; `chmod 600` it"
                );
            }
        }
    }
    Ok(pem)
}

/// The task's credentials: `value` (`CREDENTIALS`, as captured at start-up) decrypted with
/// the key at `path`; `None` when it is unset or blank (the standard AWS provider chain
/// applies then).
pub fn decrypt_value(
    value: Option<&std::ffi::OsStr>,
    path: &Path,
) -> Result<Option<AwsCredentials>, CredentialsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(value) = value.to_str() else {
        return Err(CredentialsError::NotJson("not UTF-8 text".into()));
    };
    if value.trim().is_empty() {
        tracing::warn!("`{ENV_VAR}` is set but empty; using the standard AWS credential chain");
        return Ok(None);
    }
    let pem = load_private_key(path)?;
    let (creds, format) = decrypt_with_format(value, &pem)?;
    tracing::info!(
        format = format.as_str(),
        access_key_id = %creds.access_key_id_hint(),
        key = %path.display(),
        "decrypted `{ENV_VAR}`"
    );
    Ok(Some(creds))
}

/// What a value handed on to a task must be: an encrypted `CREDENTIALS` envelope (either
/// format), checked for shape without a private key, so that whoever emits tasks can pass it
/// on and never a clear secret. `what` names the value's origin in the error.
pub fn check_encrypted(value: &str, what: &str) -> Result<Format, CredentialsError> {
    let looks_clear = |text: &str| {
        parse_credentials_json(text).is_ok()
            || [
                "secretAccessKey",
                "SecretAccessKey",
                "aws_secret_access_key",
            ]
            .iter()
            .any(|k| text.contains(k))
    };
    if looks_clear(value) {
        return Err(CredentialsError::Clear(what.to_string()));
    }
    let compact: String = value.split_ascii_whitespace().collect();
    let outer = B64_LENIENT
        .decode(compact.as_bytes())
        .map_err(CredentialsError::NotBase64)?;
    if looks_clear(&String::from_utf8_lossy(&outer)) {
        return Err(CredentialsError::Clear(what.to_string()));
    }
    let envelope: serde_json::Value =
        serde_json::from_slice(&outer).map_err(|e| CredentialsError::NotJson(json_error(&e)))?;
    let serde_json::Value::Object(obj) = envelope else {
        return Err(CredentialsError::NotJson("not an object".into()));
    };
    if obj.contains_key("v") {
        if obj.get("v").and_then(|v| v.as_u64()) != Some(2) {
            return Err(CredentialsError::UnknownVersion(
                obj["v"].to_string().chars().take(32).collect(),
            ));
        }
        if str_field(&obj, "alg")? != ALG_V2 {
            return Err(CredentialsError::UnknownAlgorithm(
                str_field(&obj, "alg")?.chars().take(64).collect(),
            ));
        }
        for field in ["key", "iv", "ct"] {
            b64_field(&obj, field)?;
        }
        return Ok(Format::V2);
    }
    if obj.contains_key("credentials") && obj.contains_key("symmetricKey") {
        b64_field(&obj, "symmetricKey")?;
        return Ok(Format::Original);
    }
    Err(CredentialsError::UnknownFormat(
        obj.keys()
            .take(8)
            .map(|k| format!("{:?}", k.chars().take(32).collect::<String>()))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use cbc::cipher::BlockEncryptMut;

    use super::*;

    fn keys() -> &'static (Zeroizing<String>, String) {
        static KEYS: OnceLock<(Zeroizing<String>, String)> = OnceLock::new();
        KEYS.get_or_init(|| keygen(2048).expect("keygen"))
    }

    fn other_keys() -> &'static (Zeroizing<String>, String) {
        static KEYS: OnceLock<(Zeroizing<String>, String)> = OnceLock::new();
        KEYS.get_or_init(|| keygen(2048).expect("keygen"))
    }

    fn creds() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAEXAMPLEKEYID0001".into(),
            secret_access_key: "s3cr3t/Secret+Access+Key/EXAMPLE0000000000".into(),
            session_token: Some("SessionTokenEXAMPLE//////////wEaDEXAMPLE".into()),
            region: Some("us-west-2".into()),
        }
    }

    /// The original format, built the way CryptoJS did (the Python vectors in the
    /// integration tests check the same thing with an independent implementation).
    fn encrypt_original(creds: &AwsCredentials, public_pem: &str) -> String {
        let public = parse_public_key(public_pem).unwrap();
        let mut symmetric = [0u8; 128];
        OsRng.fill_bytes(&mut symmetric);
        let wrapped = public
            .encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), &symmetric)
            .unwrap();
        let passphrase = STANDARD.encode(symmetric);
        let mut salt = [0u8; 8];
        OsRng.fill_bytes(&mut salt);
        let derived = evp_bytes_to_key(passphrase.as_bytes(), &salt);
        let (k, iv) = derived.split_at(32);
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(k, iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(&serde_json::to_vec(creds).unwrap());
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let formatted =
            serde_json::json!({"ct": STANDARD.encode(ct), "iv": hex(iv), "s": hex(&salt)});
        let outer = serde_json::json!({
            "credentials": formatted.to_string(),
            "symmetricKey": STANDARD.encode(wrapped),
        });
        STANDARD.encode(outer.to_string())
    }

    /// Decodes a v2 value, lets `f` change the envelope, encodes it again.
    fn tamper(
        value: &str,
        f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> String {
        let mut obj: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(value).unwrap()).unwrap();
        f(obj.as_object_mut().unwrap());
        STANDARD.encode(obj.to_string())
    }

    fn flip_byte(obj: &mut serde_json::Map<String, serde_json::Value>, field: &str, at: usize) {
        let mut bytes = STANDARD.decode(obj[field].as_str().unwrap()).unwrap();
        bytes[at] ^= 0x01;
        obj.insert(field.into(), STANDARD.encode(bytes).into());
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // `openssl enc -aes-256-cbc -P -md md5 -S 0102030405060708 -pass pass:polymr-passphrase`
        let d = evp_bytes_to_key(b"polymr-passphrase", &[1, 2, 3, 4, 5, 6, 7, 8]);
        let hex: String = d.iter().map(|x| format!("{x:02X}")).collect();
        assert_eq!(
            hex,
            "32D23E84EA5112A18CD391A42DFF67705A061BDC1FB258891D008BECF02BF3B0\
             2829D80E08063F89F6D873DFD5596ED8"
        );
    }

    #[test]
    fn v2_round_trip() {
        let (private, public) = keys();
        let value = encrypt(&creds(), public).unwrap();
        let (back, format) = decrypt_with_format(&value, private).unwrap();
        assert_eq!(back, creds());
        assert_eq!(format, Format::V2);
        // Two encryptions of the same credentials differ (fresh key and nonce).
        assert_ne!(value, encrypt(&creds(), public).unwrap());
    }

    #[test]
    fn v2_envelope_is_compact_json_with_the_documented_keys() {
        let (_, public) = keys();
        let json = String::from_utf8(STANDARD.decode(encrypt(&creds(), public).unwrap()).unwrap())
            .unwrap();
        assert!(
            json.starts_with(r#"{"v":2,"alg":"RSA-OAEP-256+A256GCM","key":""#),
            "{json}"
        );
        let obj: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            STANDARD.decode(obj["iv"].as_str().unwrap()).unwrap().len(),
            12
        );
    }

    #[test]
    fn optional_fields_round_trip_absent() {
        let (private, public) = keys();
        let mut c = creds();
        c.session_token = None;
        c.region = None;
        assert_eq!(decrypt(&encrypt(&c, public).unwrap(), private).unwrap(), c);
    }

    #[test]
    fn original_format_round_trip() {
        let (private, public) = keys();
        let value = encrypt_original(&creds(), public);
        let (back, format) = decrypt_with_format(&value, private).unwrap();
        assert_eq!(back, creds());
        assert_eq!(format, Format::Original);
    }

    #[test]
    fn tampered_ct_iv_or_key_is_refused() {
        let (private, public) = keys();
        let value = encrypt(&creds(), public).unwrap();
        for (field, at) in [("ct", 0), ("ct", 5), ("iv", 3)] {
            let bad = tamper(&value, |o| flip_byte(o, field, at));
            let err = decrypt(&bad, private).unwrap_err();
            assert!(
                matches!(err, CredentialsError::Authentication),
                "{field}: {err}"
            );
        }
        // The GCM tag is the ciphertext's last 16 bytes.
        let bad = tamper(&value, |o| {
            let n = STANDARD.decode(o["ct"].as_str().unwrap()).unwrap().len();
            flip_byte(o, "ct", n - 1)
        });
        assert!(matches!(
            decrypt(&bad, private).unwrap_err(),
            CredentialsError::Authentication
        ));
        let bad = tamper(&value, |o| flip_byte(o, "key", 10));
        let err = decrypt(&bad, private).unwrap_err();
        assert!(matches!(err, CredentialsError::KeyUnwrap { .. }), "{err}");
        assert!(err.to_string().starts_with("key unwrap failed"));
    }

    #[test]
    fn changed_version_or_algorithm_is_refused() {
        let (private, public) = keys();
        let value = encrypt(&creds(), public).unwrap();
        let bad = tamper(&value, |o| {
            o.insert("v".into(), 3.into());
        });
        let err = decrypt(&bad, private).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown credentials envelope version 3"),
            "{err}"
        );
        let bad = tamper(&value, |o| {
            o.insert("alg".into(), "RSA1_5+A128CBC".into());
        });
        assert!(matches!(
            decrypt(&bad, private).unwrap_err(),
            CredentialsError::UnknownAlgorithm(_)
        ));
    }

    #[test]
    fn truncated_values_are_refused() {
        let (private, public) = keys();
        let value = encrypt(&creds(), public).unwrap();
        for cut in [1, 4, 7, value.len() / 2, value.len() - 4, value.len() - 3] {
            let err = decrypt(&value[..cut], private).unwrap_err();
            assert!(
                matches!(
                    err,
                    CredentialsError::NotBase64(_) | CredentialsError::NotJson(_)
                ),
                "cut at {cut}: {err}"
            );
        }
        // A ciphertext cut inside a well-formed envelope.
        let bad = tamper(&value, |o| {
            let ct = STANDARD.decode(o["ct"].as_str().unwrap()).unwrap();
            o.insert("ct".into(), STANDARD.encode(&ct[..ct.len() - 1]).into());
        });
        assert!(matches!(
            decrypt(&bad, private).unwrap_err(),
            CredentialsError::Authentication
        ));
        let bad = tamper(&value, |o| {
            o.insert("ct".into(), STANDARD.encode([0u8; 8]).into());
        });
        assert!(matches!(
            decrypt(&bad, private).unwrap_err(),
            CredentialsError::BadField { field: "ct", .. }
        ));
        assert!(matches!(
            decrypt("", private).unwrap_err(),
            CredentialsError::NotJson(_)
        ));
    }

    #[test]
    fn wrong_key_is_refused() {
        let (private, public) = keys();
        let (other, _) = other_keys();
        let value = encrypt(&creds(), public).unwrap();
        assert!(matches!(
            decrypt(&value, other).unwrap_err(),
            CredentialsError::KeyUnwrap { field: "key" }
        ));
        let value = encrypt_original(&creds(), public);
        assert!(matches!(
            decrypt(&value, other).unwrap_err(),
            CredentialsError::KeyUnwrap {
                field: "symmetricKey"
            }
        ));
        assert!(decrypt(&value, private).is_ok());
    }

    #[test]
    fn tampered_original_is_refused_without_panicking() {
        let (private, public) = keys();
        let value = encrypt_original(&creds(), public);
        let obj: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&value).unwrap()).unwrap();
        let inner: serde_json::Value =
            serde_json::from_str(obj["credentials"].as_str().unwrap()).unwrap();
        let ct = STANDARD.decode(inner["ct"].as_str().unwrap()).unwrap();
        for at in 0..ct.len() {
            let mut bad_ct = ct.clone();
            bad_ct[at] ^= 0x80;
            let mut inner = inner.clone();
            inner["ct"] = STANDARD.encode(&bad_ct).into();
            let bad = tamper(&value, |o| {
                o.insert("credentials".into(), inner.to_string().into());
            });
            // CBC is not authenticated: an altered block garbles the JSON or the padding
            // (or, for a byte in the next-to-last block, a single character of it).
            if let Err(e) = decrypt(&bad, private) {
                assert!(
                    matches!(
                        e,
                        CredentialsError::Padding | CredentialsError::Plaintext(_)
                    ),
                    "{e}"
                );
                assert!(!e.to_string().contains("s3cr3t"));
            }
        }
        let bad = tamper(&value, |o| {
            o.insert("credentials".into(), r#"{"ct":"AAAA","s":"0102"}"#.into());
        });
        assert!(matches!(
            decrypt(&bad, private).unwrap_err(),
            CredentialsError::BadField { .. }
        ));
    }

    #[test]
    fn unknown_shapes_are_refused() {
        let (private, _) = keys();
        let err = decrypt(&STANDARD.encode(r#"{"hello":1}"#), private).unwrap_err();
        assert!(matches!(err, CredentialsError::UnknownFormat(_)), "{err}");
        let err = decrypt(&STANDARD.encode("[1,2]"), private).unwrap_err();
        assert!(matches!(err, CredentialsError::NotJson(_)), "{err}");
        let err = decrypt("%%%not base64%%%", private).unwrap_err();
        assert!(matches!(err, CredentialsError::NotBase64(_)), "{err}");
    }

    #[test]
    fn plaintext_errors_do_not_quote_values() {
        let err =
            parse_plaintext(br#"{"accessKeyId":"AKIA","secretAccessKey":12345678}"#).unwrap_err();
        assert!(!err.to_string().contains("12345678"), "{err}");
        let err = parse_plaintext(br#"{"accessKeyId":"AKIA"}"#).unwrap_err();
        assert!(
            err.to_string().contains("missing field `secretAccessKey`"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_has_no_secret() {
        let c = creds();
        let shown = format!("{c:?} {c:#?}");
        assert!(shown.contains("ASIA…"), "{shown}");
        for secret in [
            c.access_key_id.as_str(),
            "EXAMPLEKEYID",
            c.secret_access_key.as_str(),
            c.session_token.as_deref().unwrap(),
            "us-west-2",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn private_keys_in_pkcs1_and_pkcs8_are_read() {
        let (private, public) = keys();
        let key = parse_private_key(private).unwrap();
        let pkcs1 = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&key, LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let value = encrypt(&creds(), public).unwrap();
        assert_eq!(decrypt(&value, &pkcs1).unwrap(), creds());
        let noisy = format!("Bag Attributes\n    friendlyName: x\n{}", &**private);
        assert_eq!(decrypt(&value, &noisy).unwrap(), creds());
        // A PKCS#1 public key encrypts too.
        let public_pkcs1 =
            rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&RsaPublicKey::from(&key), LineEnding::LF)
                .unwrap();
        assert_eq!(
            decrypt(&encrypt(&creds(), &public_pkcs1).unwrap(), private).unwrap(),
            creds()
        );
    }

    #[test]
    fn bad_pem_is_a_usage_error() {
        let (private, public) = keys();
        for (pem, needle) in [
            ("not a key", "no PEM block"),
            (public.as_str(), "public key"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "CERTIFICATE",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "PKCS#8",
            ),
        ] {
            let err = parse_private_key(pem).unwrap_err();
            assert!(err.is_usage());
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(parse_public_key(private)
            .unwrap_err()
            .to_string()
            .contains("private key"));
    }

    #[test]
    fn key_sizes_are_bounded() {
        assert!(matches!(
            keygen(1024).unwrap_err(),
            CredentialsError::KeySize(1024)
        ));
    }

    #[test]
    fn explicit_key_path_wins() {
        assert_eq!(
            private_key_path(Some(Path::new("/k.pem"))),
            PathBuf::from("/k.pem")
        );
    }
}
