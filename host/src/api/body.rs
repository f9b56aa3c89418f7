//! Reading request bodies under a size limit, whatever the client claims in `Content-Length`.

use super::problem::{ApiError, Kind};
use poem::Body;
use tokio::io::AsyncReadExt;

/// Reads `body` up to `limit` bytes; more is a 413 naming `what`.
pub async fn read_limited(body: Body, limit: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    body.into_async_read()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| {
            ApiError::new(
                Kind::InvalidRequest,
                format!("could not read the body: {e}"),
            )
        })?;
    if bytes.len() > limit {
        return Err(ApiError::new(
            Kind::PayloadTooLarge,
            format!("the {what} is larger than the limit of {limit} bytes"),
        ));
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid(format!(
            "the body is empty; send the {what}"
        )));
    }
    Ok(bytes)
}
