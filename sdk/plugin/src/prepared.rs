use crate::Error;
use std::sync::OnceLock;

/// A value computed once per configuration, typically the parsed configuration itself.
///
/// Put it in a `static`, fill it from the plugin's prepare function and read it from the filter
/// function with the same initialiser: when the host prepares the plugin, the value is computed
/// once and every call starts with it already in memory; when it does not (a dry run), the first
/// read computes it.
///
/// ```no_run
/// use wasmail_plugin::{Action, Error, Message, Prepared};
///
/// #[derive(serde::Deserialize)]
/// struct Config { folder: String }
///
/// static CONFIG: Prepared<Config> = Prepared::new();
///
/// fn config() -> Result<&'static Config, Error> {
///     CONFIG.get_or_init(wasmail_plugin::config::parse)
/// }
///
/// fn prepare() -> Result<(), Error> {
///     config().map(|_| ())
/// }
///
/// #[wasmail_plugin::filter(prepare = prepare)]
/// fn filter(message: &Message) -> Result<Vec<Action>, Error> {
///     Ok(vec![Action::MoveTo(config()?.folder.clone())])
/// }
/// ```
#[derive(Debug)]
pub struct Prepared<T> {
    cell: OnceLock<Result<T, Error>>,
}

impl<T> Prepared<T> {
    /// An empty slot, for a `static`.
    ///
    /// ```
    /// static TABLE: wasmail_plugin::Prepared<Vec<String>> = wasmail_plugin::Prepared::new();
    /// ```
    pub const fn new() -> Self {
        Self {
            cell: OnceLock::new(),
        }
    }

    /// The value, computing it with `init` the first time; an error is kept and returned again.
    ///
    /// ```
    /// static N: wasmail_plugin::Prepared<u32> = wasmail_plugin::Prepared::new();
    /// assert_eq!(N.get_or_init(|| Ok(7)).unwrap(), &7);
    /// assert_eq!(N.get_or_init(|| Ok(8)).unwrap(), &7);
    /// ```
    pub fn get_or_init(&self, init: impl FnOnce() -> Result<T, Error>) -> Result<&T, Error> {
        self.cell.get_or_init(init).as_ref().map_err(Clone::clone)
    }
}

impl<T> Default for Prepared<T> {
    fn default() -> Self {
        Self::new()
    }
}
