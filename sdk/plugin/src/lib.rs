//! Write [wasmail](https://example.invalid/wasmail) filter plugins in idiomatic Rust.
//!
//! A plugin is a WebAssembly component that the wasmail host runs once per message, in a fresh sandbox,
//! under a memory limit, a fuel budget and a wall-clock deadline. This crate hides the generated
//! component bindings behind a [`Message`] type, typed [`Action`]s, an [`Error`] and one attribute,
//! [`filter`]:
//!
//! ```no_run
//! use wasmail_plugin::{Action, Error, Field, Message};
//!
//! #[wasmail_plugin::filter]
//! fn filter(message: &Message) -> Result<Vec<Action>, Error> {
//!     if message.contains(&Field::Subject, "invoice") {
//!         return Ok(vec![Action::MoveTo("Invoices".into()), Action::Tag("billing".into())]);
//!     }
//!     Ok(vec![])
//! }
//! ```
//!
//! # Building
//!
//! A plugin crate is a `cdylib` built for `wasm32-wasip2`, which produces a component directly:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wasmail-plugin = "0.1"
//! ```
//!
//! ```text
//! cargo build --target wasm32-wasip2 --release
//! wasmail plugin test target/wasm32-wasip2/release/my_plugin.wasm message.eml
//! ```
//!
//! # Making a plugin fast
//!
//! The host instantiates the plugin for every message, so what costs is instantiation and scanning:
//!
//! - Prefer the host's match primitives, [`Message::contains`], [`Message::equals`] and
//!   [`Message::matches`]: they run natively over the host's copy of the message and never copy the
//!   body into the sandbox.
//! - When the plugin scans text itself, build with WebAssembly SIMD so `memchr`-style searches are
//!   vectorised (Rust's `str::contains` is not, in wasm, and is ~10x slower than native), and give the
//!   module an initial memory large enough that a typical call never grows it. Put this in the
//!   plugin's `.cargo/config.toml` (the wasmail workspace does the same):
//!
//!   ```toml
//!   [target.wasm32-wasip2]
//!   rustflags = ["-C", "target-feature=+simd128", "-C", "link-arg=--initial-memory=2097152"]
//!   ```
//! - Read large bodies in chunks ([`Message::text_chunks`]) rather than whole: the plugin's memory
//!   limit (32 MiB by default) then holds for any message size.
//!
//! # Panics
//!
//! A panic ends the call with a `trap` error. The [`filter`] attribute installs a panic hook that
//! reports the panic message and location through the log import, so the host can show it.

#![deny(missing_docs)]

// The generated bindings name this crate by its absolute path, so they work from plugin crates too.
extern crate self as wasmail_plugin;

mod action;
mod error;
mod message;
mod prepared;

pub mod clock;
pub mod config;
pub mod log;

pub use action::Action;
pub use error::Error;
pub use message::{Address, Attachment, Field, Message, TextChunks};
pub use prepared::Prepared;

/// Marks the function that filters a message.
///
/// The function takes `&Message` and returns `Result<Vec<Action>, Error>`. The attribute exports it
/// as the component's `wasmail:plugin/filter-stage` and installs the panic hook. Use it once per crate.
///
/// Work that depends only on the configuration belongs in a *prepare* function,
/// `#[wasmail_plugin::filter(prepare = my_prepare)]`: the host runs it once per configuration and
/// may start every message's instance from a snapshot taken after it, so what it computes into a
/// [`Prepared`] `static` is there, for free, in every call. Its error rejects the
/// configuration before any message is touched. Keep the `filter` function correct without it (read
/// the same [`Prepared`] with the same initialiser): a dry run may skip preparation.
///
/// ```no_run
/// use wasmail_plugin::{Action, Error, Message, Prepared};
///
/// #[derive(serde::Deserialize)]
/// struct Config { folder: String }
///
/// static CONFIG: Prepared<Config> = Prepared::new();
///
/// fn prepare() -> Result<(), Error> {
///     CONFIG.get_or_init(wasmail_plugin::config::parse).map(|_| ())
/// }
///
/// #[wasmail_plugin::filter(prepare = prepare)]
/// fn filter(message: &Message) -> Result<Vec<Action>, Error> {
///     let config = CONFIG.get_or_init(wasmail_plugin::config::parse)?;
///     Ok(vec![Action::MoveTo(config.folder.clone())])
/// }
/// ```
///
/// ```no_run
/// use wasmail_plugin::{Action, Error, Message};
///
/// #[wasmail_plugin::filter]
/// fn filter(message: &Message) -> Result<Vec<Action>, Error> {
///     match message.subject() {
///         Some(subject) if subject.starts_with("[list]") => Ok(vec![Action::MoveTo("Lists".into())]),
///         _ => Ok(vec![]),
///     }
/// }
/// ```
pub use wasmail_plugin_macro::filter;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "filter",
        pub_export_macro: true,
        export_macro_name: "__export_filter_world",
        default_bindings_module: "::wasmail_plugin::bindings",
        runtime_path: "::wasmail_plugin::__private::wit_bindgen::rt",
    });
}

/// What the [`filter`] attribute expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::__export_filter_world as export;
    pub use crate::bindings::exports::wasmail::plugin::filter_stage::{
        Action as WitAction, Guest, PluginError as WitPluginError,
    };
    pub use crate::bindings::wasmail::plugin::message::Message as WitMessage;
    pub use wit_bindgen;

    /// The borrowed message handle the export receives.
    pub type MessageHandle<'a> = &'a WitMessage;

    /// Runs a user filter function: installs the panic hook, wraps the handle, converts the result.
    pub fn run(
        handle: MessageHandle<'_>,
        user: fn(&crate::Message) -> Result<Vec<crate::Action>, crate::Error>,
    ) -> Result<Vec<WitAction>, WitPluginError> {
        install_panic_hook();
        let message = crate::Message::from_handle(handle);
        match user(&message) {
            Ok(actions) => Ok(actions.into_iter().map(WitAction::from).collect()),
            Err(error) => Err(WitPluginError {
                message: error.to_string(),
            }),
        }
    }

    /// Runs the user's prepare function (configuration parsing, tables) with the panic hook installed.
    pub fn prepare(user: fn() -> Result<(), crate::Error>) -> Result<(), WitPluginError> {
        install_panic_hook();
        user().map_err(|error| WitPluginError {
            message: error.to_string(),
        })
    }

    fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                // The host recognises this prefix and reports the text as the plugin's panic message.
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "Box<dyn Any>".to_string());
                crate::log::error(&format!("panicked at {location}: {payload}"));
            }));
        });
    }
}
