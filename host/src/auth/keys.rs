//! The secret that signs tenant tokens: configured, or generated once into the data dir.

use super::AuthError;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::Path;

/// `n` random bytes, hex.
pub(super) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The signing secret: `configured`, else `<data_dir>/jwt.key` (created on first use, readable by the
/// owner only).
pub(super) fn signing_secret(
    data_dir: &Path,
    configured: Option<&SecretString>,
) -> Result<Vec<u8>, AuthError> {
    if let Some(secret) = configured {
        let secret = secret.expose_secret().as_bytes();
        if secret.len() < 32 {
            return Err(AuthError::Setup(
                "WASMAIL_JWT_SECRET must be at least 32 bytes".into(),
            ));
        }
        return Ok(secret.to_vec());
    }
    let path = data_dir.join("jwt.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() >= 32)
            .ok_or_else(|| {
                AuthError::Setup(format!(
                    "{} is damaged: expected 64 hex digits",
                    path.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_hex(32);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let written = options
                .open(&path)
                .and_then(|mut f| f.write_all(key.as_bytes()));
            match written {
                Ok(()) => Ok(hex::decode(key).unwrap_or_default()),
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    signing_secret(data_dir, None)
                }
                Err(e) => Err(AuthError::Setup(format!(
                    "cannot write {}: {e}",
                    path.display()
                ))),
            }
        }
        Err(e) => Err(AuthError::Setup(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}
