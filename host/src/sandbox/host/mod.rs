//! Host implementations of the WIT imports, one file per interface.

mod clock;
mod config;
mod log;
mod message;

pub(crate) use message::HostRefused;
pub use message::MessageResource;

/// The `types` interface holds only types; the linker still wants its (empty) host trait.
impl crate::sandbox::bindings::wasmail::plugin::types::Host
    for crate::sandbox::state::SandboxState
{
}
