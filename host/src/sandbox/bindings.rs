//! The one place that generates host bindings for the WIT contract in `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "filter",
    imports: { default: trappable },
    // Async exports: the call is a future the runtime can time out and drop wherever the guest is.
    exports: { default: async },
    with: {
        "wasmail:plugin/message.message": crate::sandbox::host::MessageResource,
    },
});

pub use self::exports::wasmail::plugin::filter_stage::Action as WitAction;
pub use self::wasmail::plugin::types::{
    Address as WitAddress, Attachment as WitAttachment, Field as WitField,
};
