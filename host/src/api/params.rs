//! Checks of free-text request parameters before they reach a query.
//!
//! Filters are plain text: a control character in one is refused (400 `invalid-request`) rather
//! than passed on. SQLite's `LIKE` stops at a NUL (`subject=%00` matched every message) and its
//! full-text `MATCH` fails on one (a 500); CR, LF and the rest have no business in a folder, a tag
//! or a search either.

use super::problem::{ApiError, Kind};

/// Longest free-text filter, bytes.
pub const MAX_FILTER_BYTES: usize = 1024;

/// Checks each `(name, value)` present.
pub fn plain_text<'a>(
    params: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), ApiError> {
    for (name, value) in params {
        let Some(value) = value else { continue };
        if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
            return Err(ApiError::new(
                Kind::InvalidRequest,
                format!(
                    "`{name}` has a control character (U+{:04X}) at byte {at}; filters are plain text",
                    u32::from(c)
                ),
            ));
        }
        if value.len() > MAX_FILTER_BYTES {
            return Err(ApiError::new(
                Kind::InvalidRequest,
                format!(
                    "`{name}` is {} bytes long; filters are at most {MAX_FILTER_BYTES}",
                    value.len()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_overlong_values_are_refused() {
        for bad in ["\0", "a\rb", "x\n", "\u{7f}", "\u{85}", "tab\there"] {
            let err = plain_text([("q", Some(bad))]).expect_err(bad);
            assert_eq!(err.status(), 400, "{bad:?}");
        }
        assert!(plain_text([("q", Some("x".repeat(MAX_FILTER_BYTES + 1).as_str()))]).is_err());
        plain_text([
            ("q", Some("héllo wörld \"quoted\" * % _")),
            ("subject", None),
            ("from", Some(&"x".repeat(MAX_FILTER_BYTES))),
        ])
        .expect("plain text passes");
    }
}
