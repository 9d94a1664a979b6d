//! `polymr credentials`: make a key pair, encrypt AWS credentials into a `CREDENTIALS` value,
//! and check that a task's key opens one — without ever printing a secret.

use std::fmt::Display;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use zeroize::Zeroizing;

use crate::cli::{CredentialsArgs, CredentialsCommand, DecryptCheckArgs, EncryptArgs, KeygenArgs};
use crate::credentials::{self as creds, AwsCredentials, CredentialsError};
use crate::exit::{UsageError, SUCCESS};

pub fn credentials(args: CredentialsArgs) -> anyhow::Result<u8> {
    match args.command {
        CredentialsCommand::Keygen(a) => keygen(a),
        CredentialsCommand::Encrypt(a) => encrypt(a),
        CredentialsCommand::DecryptCheck(a) => decrypt_check(a),
    }
}

/// Bad input (a missing key, a bad PEM, a corrupt value) exits 2; the rest is an internal
/// error. `UsageError` holds text only, so the chain is flattened into it.
fn classify(context: impl Display, err: CredentialsError) -> anyhow::Error {
    if err.is_usage() {
        let mut msg = format!("{context}: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            msg.push_str(&format!(": {s}"));
            source = s.source();
        }
        UsageError(msg).into()
    } else {
        anyhow::Error::new(err).context(context.to_string())
    }
}

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

fn keygen(args: KeygenArgs) -> anyhow::Result<u8> {
    let private_path = args.out_dir.join("key.pem");
    let public_path = args.out_dir.join("key.pub.pem");
    // Checked before the (slow) generation; `create_new` below closes the race.
    for p in [&private_path, &public_path] {
        if p.symlink_metadata().is_ok() {
            return Err(usage(format!(
                "refusing to overwrite the existing key `{}`",
                p.display()
            )));
        }
    }
    std::fs::create_dir_all(&args.out_dir).map_err(|e| {
        usage(format!(
            "failed to create the key directory `{}`: {e}",
            args.out_dir.display()
        ))
    })?;
    let (private_pem, public_pem) =
        creds::keygen(args.bits).map_err(|e| classify("failed to generate a key pair", e))?;
    write_new(&private_path, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_path, public_pem.as_bytes(), 0o644) {
        // Half a key pair is worse than none: the next run would refuse to overwrite it.
        let _ = std::fs::remove_file(&private_path);
        return Err(e);
    }
    eprintln!(
        "polymr: wrote {} (private, mode 600: keep it with the tasks) and {} (public: give it to whoever runs `polymr credentials encrypt`)",
        private_path.display(),
        public_path.display()
    );
    Ok(SUCCESS)
}

/// Creates `path` with `mode` from the start (never readable by others, even briefly), and
/// never over an existing file.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                usage(format!(
                    "refusing to overwrite the existing key `{}`",
                    path.display()
                ))
            } else {
                usage(format!("failed to create `{}`: {e}", path.display()))
            }
        })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("failed to write `{}`", path.display()));
    }
    Ok(())
}

fn encrypt(args: EncryptArgs) -> anyhow::Result<u8> {
    let public_pem = std::fs::read_to_string(&args.public_key).map_err(|source| {
        classify(
            "cannot encrypt",
            CredentialsError::ReadPublicKey {
                path: args.public_key.clone(),
                source,
            },
        )
    })?;
    // A wrong key file is reported before anything is read from stdin or the environment.
    creds::parse_public_key(&public_pem).map_err(|e| {
        classify(
            format!("cannot encrypt for `{}`", args.public_key.display()),
            e,
        )
    })?;
    let credentials = match &args.input {
        Some(path) => read_input(path)?,
        None => from_aws_env()?,
    };
    let value = creds::encrypt(&credentials, &public_pem).map_err(|e| {
        classify(
            format!("failed to encrypt for `{}`", args.public_key.display()),
            e,
        )
    })?;
    super::write_stdout(format!("{value}\n").as_bytes())?;
    Ok(SUCCESS)
}

/// Credentials JSON from a file or stdin (`-`); a missing region comes from the environment.
fn read_input(path: &Path) -> anyhow::Result<AwsCredentials> {
    let mut text = Zeroizing::new(String::new());
    let (name, read) = if path == Path::new("-") {
        (
            "stdin".to_string(),
            std::io::stdin().read_to_string(&mut text),
        )
    } else {
        let name = format!("`{}`", path.display());
        let read = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
        (name, read)
    };
    read.map_err(|e| usage(format!("failed to read the credentials from {name}: {e}")))?;
    let mut credentials = creds::parse_credentials_json(&text)
        .map_err(|e| classify(format!("failed to read the credentials from {name}"), e))?;
    if credentials.region.is_none() {
        credentials.region = env_region();
    }
    Ok(credentials)
}

fn env_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Credentials from the variables the AWS CLI and SDKs read.
fn from_aws_env() -> anyhow::Result<AwsCredentials> {
    let required = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            usage(format!(
                "no --input and {name} is not set: give the credentials as JSON with --input FILE (or - for stdin), or in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
            ))
        })
    };
    Ok(AwsCredentials {
        access_key_id: required("AWS_ACCESS_KEY_ID")?,
        secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
        session_token: std::env::var("AWS_SESSION_TOKEN")
            .ok()
            .filter(|v| !v.is_empty()),
        region: env_region(),
    })
}

/// A debugging aid: proves the key opens `CREDENTIALS`, printing only what is not secret.
fn decrypt_check(args: DecryptCheckArgs) -> anyhow::Result<u8> {
    let value = match std::env::var(creds::ENV_VAR) {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => {
            return Err(usage(format!(
                "`{}` is not set: decrypt-check reads the value from the environment",
                creds::ENV_VAR
            )))
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(usage(format!("`{}` is not UTF-8 text", creds::ENV_VAR)))
        }
    };
    let key_path = creds::private_key_path(args.private_key.as_deref());
    let pem = creds::load_private_key(&key_path)
        .map_err(|e| classify(format!("cannot decrypt `{}`", creds::ENV_VAR), e))?;
    let (credentials, format) = creds::decrypt_with_format(&value, &pem).map_err(|e| {
        classify(
            format!(
                "failed to decrypt `{}` with the key `{}`",
                creds::ENV_VAR,
                key_path.display()
            ),
            e,
        )
    })?;
    let summary = serde_json::json!({
        "format": format.as_str(),
        "accessKeyId": credentials.access_key_id,
        "region": credentials.region,
        "sessionToken": credentials.session_token.is_some(),
    });
    super::write_stdout(format!("{summary}\n").as_bytes())?;
    Ok(SUCCESS)
}
