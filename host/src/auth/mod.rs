//! Who may call: the admin (one opaque token, kept only as a hash) and tenants (signed JWTs that name
//! the tenant and expire, and can be revoked one by one or all those issued before a time).

mod claims;
mod keys;

pub use claims::Claims;

use crate::store::{Store, StoreError, TenantRow, TokenCheck, TokenRow, now_ms};
use claims::ISSUER;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

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
    /// A correctly signed tenant token that was revoked.
    #[error("{0}")]
    Revoked(String),
    /// Setting up keys failed.
    #[error("{0}")]
    Setup(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just minted.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The token, for `Authorization: Bearer <token>`.
    pub token: String,
    /// Its id, issue time and expiry, as recorded.
    pub row: TokenRow,
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
        let auth = Self {
            admin_sha256,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation: claims::validation(),
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

    /// Mints a token for `tenant` valid for `ttl_secs`. The caller records it
    /// ([`Store::record_token`]) before handing it out, so it can be listed and revoked.
    pub fn mint(&self, tenant: &str, ttl_secs: u64) -> Result<Minted, AuthError> {
        // The recorded issue time keeps the milliseconds `iat` drops, so a cut-off at "now" revokes
        // exactly the tokens minted before it, even within the same second.
        let issued_at = now_ms();
        let iat = u64::try_from(issued_at / 1000).unwrap_or(0);
        let claims = Claims {
            sub: tenant.to_string(),
            exp: iat + ttl_secs,
            iat,
            iss: ISSUER.to_string(),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Setup(format!("cannot sign a token: {e}")))?;
        Ok(Minted {
            token,
            row: TokenRow {
                jti: claims.jti,
                issued_at,
                expires_at: i64::try_from(claims.exp.saturating_mul(1000)).unwrap_or(i64::MAX),
                revoked_at: None,
            },
        })
    }

    /// Checks a tenant token's signature and claims; [`Auth::tenant`] also checks the tenant and
    /// revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if self.is_admin(token) {
            return Err(AuthError::Forbidden(
                "this operation needs a tenant token; the admin token does not act as a tenant"
                    .into(),
            ));
        }
        claims::check(token, &self.decoding, &self.validation, unix_now())
    }

    /// The tenant a request's token acts as: the token verifies, its tenant exists, and it is not
    /// revoked. One database statement.
    pub async fn tenant(&self, store: &Store, token: &str) -> Result<TenantRow, AuthError> {
        let claims = self.verify(token)?;
        let check = match store
            .token_check(
                &crate::domain::TenantId::new(claims.sub.clone()),
                &claims.jti,
            )
            .await
        {
            Ok(check) => check,
            Err(StoreError::NotFound) => {
                return Err(AuthError::Unauthorized(
                    "the token's tenant no longer exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(why) = revoked(&check, &claims) {
            return Err(AuthError::Revoked(why));
        }
        Ok(check.tenant)
    }
}

/// Why a verified token is revoked, if it is.
fn revoked(check: &TokenCheck, claims: &Claims) -> Option<String> {
    if check.token.as_ref().is_some_and(|t| t.revoked_at.is_some()) {
        return Some(format!("the token {} was revoked", claims.jti));
    }
    // A token not recorded here (signed elsewhere with the configured secret) has only its `iat`.
    let issued_at = check
        .token
        .as_ref()
        .map(|t| t.issued_at)
        .unwrap_or_else(|| i64::try_from(claims.iat.saturating_mul(1000)).unwrap_or(i64::MAX));
    match check.issued_before {
        Some(before) if issued_at < before => Some(format!(
            "the token was revoked: every token of this tenant issued before {} was",
            chrono::DateTime::from_timestamp_millis(before)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default()
        )),
        _ => None,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
