//! Who may call: the admin (one opaque token, kept only as a hash) and tenants (signed JWTs that name
//! the tenant and expire).

mod keys;

use crate::store::{Store, StoreError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Issuer and audience of tenant tokens.
const ISSUER: &str = "wasmail";

/// The settings key of the generated admin token's hash.
const ADMIN_HASH_KEY: &str = "admin_token_sha256";

/// Why a caller was refused, or auth could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials for something else.
    #[error("{0}")]
    Forbidden(String),
    /// Setting up keys failed.
    #[error("{0}")]
    Setup(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a tenant token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issue time, Unix seconds.
    pub iat: u64,
    /// Issuer.
    pub iss: String,
    /// Token id.
    pub jti: String,
}

/// Checks tokens and mints tenant tokens.
pub struct Auth {
    admin_sha256: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Sets up auth. The admin token is the configured one, else the one generated for this data dir
    /// earlier (its hash is stored), else a new one: returned so the caller can print it once.
    pub async fn init(
        store: &Store,
        data_dir: &Path,
        admin_token: Option<&SecretString>,
        jwt_secret: Option<&SecretString>,
    ) -> Result<(Self, Option<String>), AuthError> {
        let (admin_sha256, generated) = match admin_token {
            Some(token) => {
                let token = token.expose_secret();
                if token.len() < 16 {
                    return Err(AuthError::Setup(
                        "WASMAIL_ADMIN_TOKEN must be at least 16 characters".into(),
                    ));
                }
                (sha256(token), None)
            }
            None => {
                let token = format!("wma_{}", keys::random_hex(32));
                let hash = hex::encode(sha256(&token));
                if store.init_setting(ADMIN_HASH_KEY, &hash).await? {
                    (sha256(&token), Some(token))
                } else {
                    let stored = store.setting(ADMIN_HASH_KEY).await?.unwrap_or_default();
                    let mut bytes = [0u8; 32];
                    hex::decode_to_slice(stored, &mut bytes).map_err(|e| {
                        AuthError::Setup(format!("stored admin token hash is damaged: {e}"))
                    })?;
                    (bytes, None)
                }
            }
        };
        let secret = keys::signing_secret(data_dir, jwt_secret)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        let auth = Self {
            admin_sha256,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
        };
        Ok((auth, generated))
    }

    /// Whether `token` is the admin token (compared in constant time).
    pub fn is_admin(&self, token: &str) -> bool {
        sha256(token).ct_eq(&self.admin_sha256).into()
    }

    /// Checks an admin request's token.
    pub fn admin(&self, token: &str) -> Result<(), AuthError> {
        if self.is_admin(token) {
            Ok(())
        } else if self.verify(token).is_ok() {
            Err(AuthError::Forbidden(
                "this operation needs the admin token, not a tenant token".into(),
            ))
        } else {
            Err(AuthError::Unauthorized("invalid admin token".into()))
        }
    }

    /// Mints a token for `tenant` valid for `ttl_secs`; returns it and its expiry (Unix seconds).
    pub fn mint(&self, tenant: &str, ttl_secs: u64) -> Result<(String, u64), AuthError> {
        let iat = unix_now();
        let claims = Claims {
            sub: tenant.to_string(),
            exp: iat + ttl_secs,
            iat,
            iss: ISSUER.to_string(),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Setup(format!("cannot sign a token: {e}")))?;
        Ok((token, claims.exp))
    }

    /// Checks a tenant token's signature and expiry; the caller still checks the tenant exists.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if self.is_admin(token) {
            return Err(AuthError::Forbidden(
                "this operation needs a tenant token; the admin token does not act as a tenant"
                    .into(),
            ));
        }
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                let why = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                    _ => "invalid token",
                };
                AuthError::Unauthorized(why.into())
            })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
