//! What is checked before a component is compiled: size, that it is a component, that it exports the
//! filter interface, and that it imports only what the host allows.

use super::LoadError;
use serde::Serialize;
use wasmparser::{Parser, Payload};

/// The interface a filter component must export.
pub const FILTER_EXPORT: &str = "wasmail:plugin/filter-stage@0.1.0";

/// Import name prefixes a plugin may use. Everything WASI offers beyond these (sockets, HTTP) and
/// anything else is refused at upload. Filesystem types are allowed because Rust's standard library
/// links them; no directory is ever opened to a plugin, so they reach nothing.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasmail:plugin/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
];

/// What a checked component is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentInfo {
    /// Hex SHA-256 of the component's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
    /// The world it targets.
    pub world: String,
    /// Its imports, by name.
    pub imports: Vec<String>,
    /// Its exports, by name.
    pub exports: Vec<String>,
}

/// Checks `bytes` and describes the component; the error says precisely what is wrong.
pub(crate) fn check(bytes: &[u8], upload_limit: usize) -> Result<ComponentInfo, LoadError> {
    if bytes.len() > upload_limit {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: upload_limit,
        });
    }
    if !Parser::is_component(bytes) {
        let what = if Parser::is_core_wasm(bytes) {
            "this is a core WebAssembly module; build for wasm32-wasip2 (or run `wasm-tools component new`)"
        } else {
            "the bytes do not start with the WebAssembly component header"
        };
        return Err(LoadError::NotComponent(what.to_string()));
    }
    let (imports, exports) = top_level_names(bytes)?;
    if !exports.iter().any(|e| e == FILTER_EXPORT) {
        return Err(LoadError::WrongWorld {
            exports,
            expected: FILTER_EXPORT,
        });
    }
    if let Some(bad) = imports
        .iter()
        .find(|i| !ALLOWED_IMPORTS.iter().any(|p| i.starts_with(p)))
    {
        return Err(LoadError::ForbiddenImport(bad.clone()));
    }
    Ok(ComponentInfo {
        sha256: sha256_hex(bytes),
        size: bytes.len(),
        world: "wasmail:plugin/filter@0.1.0".to_string(),
        imports,
        exports,
    })
}

/// The component's own (outermost) import and export names; nested components are skipped.
fn top_level_names(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::Invalid(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_oversized_and_non_components() {
        assert!(matches!(
            check(&[0u8; 10], 5),
            Err(LoadError::TooLarge { size: 10, limit: 5 })
        ));
        let core = wat::parse_str("(module)").expect("wat");
        match check(&core, 1 << 20) {
            Err(LoadError::NotComponent(why)) => assert!(why.contains("core WebAssembly module")),
            other => panic!("expected NotComponent, got {other:?}"),
        }
        assert!(matches!(
            check(b"GIF89a", 1 << 20),
            Err(LoadError::NotComponent(_))
        ));
    }

    #[test]
    fn refuses_components_without_the_filter_export() {
        let empty = wat::parse_str("(component)").expect("wat");
        assert!(matches!(
            check(&empty, 1 << 20),
            Err(LoadError::WrongWorld { .. })
        ));
    }

    #[test]
    fn refuses_forbidden_imports() {
        let wat = format!(
            r#"(component
                (import "wasi:sockets/tcp@0.2.0" (instance))
                (core module $m)
                (core instance $i (instantiate $m))
                (component $c)
                (instance $f (instantiate $c))
                (export "{FILTER_EXPORT}" (instance $f)))"#
        );
        let bytes = wat::parse_str(&wat).expect("wat");
        match check(&bytes, 1 << 20) {
            Err(LoadError::ForbiddenImport(name)) => assert_eq!(name, "wasi:sockets/tcp@0.2.0"),
            other => panic!("expected ForbiddenImport, got {other:?}"),
        }
    }
}
