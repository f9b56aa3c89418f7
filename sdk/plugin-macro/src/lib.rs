//! The entry macro of the wasmail plugin SDK. Use it through `wasmail_plugin::filter`; see that crate's docs.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, Path, parse_macro_input};

/// Marks the function that filters a message and exports it as the plugin's `filter-stage`.
///
/// The function takes `&wasmail_plugin::Message` and returns
/// `Result<Vec<wasmail_plugin::Action>, wasmail_plugin::Error>`. `#[filter(prepare = f)]` names a
/// `fn() -> Result<(), wasmail_plugin::Error>` run once per configuration before any message; see
/// `wasmail_plugin::filter`.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut prepare: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("prepare") {
            prepare = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("expected `prepare = function`"))
        }
    });
    parse_macro_input!(attr with parser);
    let func = parse_macro_input!(item as ItemFn);
    let name = &func.sig.ident;
    if func.sig.inputs.len() != 1
        || func.sig.asyncness.is_some()
        || !func.sig.generics.params.is_empty()
    {
        return syn::Error::new_spanned(
            &func.sig,
            "#[filter] expects `fn name(message: &Message) -> Result<Vec<Action>, Error>`",
        )
        .to_compile_error()
        .into();
    }
    // Natively the export does not exist; naming the prepare function keeps it from looking unused.
    let (prepare, native_use) = match prepare {
        Some(path) => (
            quote! { ::wasmail_plugin::__private::prepare(#path) },
            quote! {
                #[cfg(not(target_arch = "wasm32"))]
                const _: fn() -> ::core::result::Result<(), ::wasmail_plugin::Error> = #path;
            },
        ),
        None => (
            quote! { ::wasmail_plugin::__private::prepare(|| Ok(())) },
            quote! {},
        ),
    };
    // The export exists only in the component: a native build (tests, docs, benchmarks of the same
    // crate) has no component exports to link, and their names are not valid native symbols.
    quote! {
        #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
        #func

        #native_use

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        struct __WasmailFilterExport;

        #[cfg(target_arch = "wasm32")]
        impl ::wasmail_plugin::__private::Guest for __WasmailFilterExport {
            fn prepare() -> ::core::result::Result<(), ::wasmail_plugin::__private::WitPluginError> {
                #prepare
            }

            fn filter(
                message: ::wasmail_plugin::__private::MessageHandle<'_>,
            ) -> ::core::result::Result<
                ::std::vec::Vec<::wasmail_plugin::__private::WitAction>,
                ::wasmail_plugin::__private::WitPluginError,
            > {
                ::wasmail_plugin::__private::run(message, #name)
            }
        }

        #[cfg(target_arch = "wasm32")]
        ::wasmail_plugin::__private::export!(__WasmailFilterExport);
    }
    .into()
}
