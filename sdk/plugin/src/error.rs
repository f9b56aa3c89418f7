use std::fmt;

/// A failure the plugin reports: bad configuration, a message it cannot handle.
///
/// The host shows it as a `plugin` error with this message. Any standard error converts into it with
/// `?`, like `anyhow::Error`:
///
/// ```
/// use wasmail_plugin::Error;
///
/// fn threshold(text: &str) -> Result<f64, Error> {
///     Ok(text.parse::<f64>()?)
/// }
/// assert!(threshold("x").is_err());
/// assert_eq!(Error::new("no rules").to_string(), "no rules");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with the given message.
    ///
    /// ```
    /// let error = wasmail_plugin::Error::new("threshold must be positive");
    /// assert_eq!(error.message(), "threshold must be positive");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    ///
    /// ```
    /// assert_eq!(wasmail_plugin::Error::new("x").message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Self::new(error.to_string())
    }
}
