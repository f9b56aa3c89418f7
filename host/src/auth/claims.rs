//! What a tenant token says, and every check of it that needs no database: the signature (HS256
//! only: `none`, other HMAC sizes and public-key algorithms are refused), `exp`, `nbf` when present,
//! `iss`, `iat` (present, not in the future) and `jti` (present, not empty). `aud` is not used by
//! wasmail, so a token naming any audience is refused. Revocation and the tenant are checked by
//! [`super::Auth::tenant`].

use super::AuthError;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

/// Issuer of tenant tokens.
pub(super) const ISSUER: &str = "wasmail";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
const LEEWAY_SECS: u64 = 5;

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
    /// Token id (a UUIDv7): what revocation by id names.
    pub jti: String,
}

/// The claims as decoded: `iat` and `jti` are optional here so that a token lacking one is refused
/// with that reason rather than as "malformed".
#[derive(Debug, Deserialize)]
struct Decoded {
    sub: String,
    exp: u64,
    iat: Option<u64>,
    iss: String,
    jti: Option<String>,
}

/// How tokens are validated by jsonwebtoken.
pub(super) fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    validation
}

/// Decodes and checks `token`; `now` is Unix seconds.
pub(super) fn check(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    validation: &Validation,
    now: u64,
) -> Result<Claims, AuthError> {
    let refused = |why: &str| AuthError::Unauthorized(why.to_string());
    let decoded = jsonwebtoken::decode::<Decoded>(token, key, validation)
        .map_err(|e| refused(reason(e.kind())))?
        .claims;
    let iat = decoded
        .iat
        .ok_or_else(|| refused("the token has no `iat` claim"))?;
    if iat > now + LEEWAY_SECS {
        return Err(refused("the token's `iat` is in the future"));
    }
    let jti = decoded
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| refused("the token has no `jti` claim"))?;
    if decoded.sub.is_empty() {
        return Err(refused("the token names no tenant"));
    }
    Ok(Claims {
        sub: decoded.sub,
        exp: decoded.exp,
        iat,
        iss: decoded.iss,
        jti,
    })
}

/// What a refusal says. A bad signature or a malformed token gets no detail (nothing to learn from
/// it); the claims of a correctly signed token are the holder's own, so those are named.
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)",
        ErrorKind::InvalidIssuer => "the token was not issued by wasmail (`iss`)",
        ErrorKind::InvalidAudience => "the token is meant for another audience (`aud`)",
        ErrorKind::InvalidAlgorithm => "the token is not signed with HS256",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "the token has no `exp` claim",
            "iss" => "the token has no `iss` claim",
            _ => "the token names no tenant",
        },
        _ => "invalid token",
    }
}
