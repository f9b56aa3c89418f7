//! The stage's configuration: JSON given by whoever runs the stage (a pipeline definition, the CLI's
//! `--config`, a dry run).
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Config { folder: String }
//!
//! let config: Config = wasmail_plugin::config::parse()?;
//! # Ok::<(), wasmail_plugin::Error>(())
//! ```

use crate::Error;
use serde::de::DeserializeOwned;

/// The configuration as JSON text; `"null"` when none was given.
///
/// ```no_run
/// let text = wasmail_plugin::config::raw();
/// assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
/// ```
pub fn raw() -> String {
    crate::bindings::wasmail::plugin::config::get()
}

/// The configuration parsed into `T`, with an error naming the offending field and position.
///
/// Use `Option<T>` or `#[serde(default)]` to accept a stage run without configuration.
///
/// ```no_run
/// #[derive(serde::Deserialize, Default)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { threshold: f64 }
///
/// let config: Option<Config> = wasmail_plugin::config::parse()?;
/// let config = config.unwrap_or_default();
/// # Ok::<(), wasmail_plugin::Error>(())
/// ```
pub fn parse<T: DeserializeOwned>() -> Result<T, Error> {
    parse_text(&raw())
}

/// The configuration parsed into `T`, or `T::default()` when the stage was given none (`null`).
///
/// ```no_run
/// #[derive(serde::Deserialize, Default)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { threshold: f64 }
///
/// let config: Config = wasmail_plugin::config::parse_or_default()?;
/// # Ok::<(), wasmail_plugin::Error>(())
/// ```
pub fn parse_or_default<T: DeserializeOwned + Default>() -> Result<T, Error> {
    Ok(parse::<Option<T>>()?.unwrap_or_default())
}

/// Parses configuration text; separate from [`parse`] so it can be tested outside a component.
///
/// ```
/// let n: u32 = wasmail_plugin::config::parse_text("7").unwrap();
/// assert_eq!(n, 7);
/// let error = wasmail_plugin::config::parse_text::<u32>("\"x\"").unwrap_err();
/// assert!(error.message().starts_with("invalid configuration"));
/// ```
pub fn parse_text<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::new(format!("invalid configuration: {e}")))
}
