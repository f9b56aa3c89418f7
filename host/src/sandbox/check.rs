//! What is checked before a component is compiled: size, that it is a component, that it exports the
//! filter interface, that it imports only what the host allows, and that it defines no more
//! memories, tables, instances, table elements or segments than the engine allows
//! ([`COMPONENT_LIMITS`]).

use super::LoadError;
use super::engine::{COMPONENT_LIMITS, ComponentLimits};
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
    within_limits(bytes, &COMPONENT_LIMITS)?;
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

/// What a core module defines, while it is being read.
#[derive(Default)]
struct ModuleCounts {
    memories: u32,
    tables: u32,
}

/// Refuses a component that defines more than `limits` allow. Each nested module and component is
/// counted once (the engine counts a nested component once per instantiation, and checks that
/// exact count again when the compiled component is loaded: see `Runtime::deserialize`).
fn within_limits(bytes: &[u8], limits: &ComponentLimits) -> Result<(), LoadError> {
    let invalid = |e: wasmparser::BinaryReaderError| LoadError::Invalid(e.to_string());
    let over = |what: &str, count: u64, limit: u64| {
        LoadError::ExceedsLimits(format!("{what}: {count}; at most {limit} are allowed"))
    };
    // One entry per module or component being read; `None` for a component.
    let mut stack: Vec<Option<ModuleCounts>> = Vec::new();
    let (mut memories, mut tables, mut core_instances, mut component_instances) =
        (0u64, 0u64, 0u64, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        match payload {
            Payload::Version { encoding, .. } => stack.push(match encoding {
                wasmparser::Encoding::Module => Some(ModuleCounts::default()),
                wasmparser::Encoding::Component => None,
            }),
            Payload::End(_) => {
                stack.pop();
            }
            Payload::MemorySection(reader) => {
                if let Some(Some(module)) = stack.last_mut() {
                    module.memories = module.memories.saturating_add(reader.count());
                    if module.memories > limits.memories_per_module {
                        return Err(over(
                            "memories defined by one core module",
                            module.memories.into(),
                            limits.memories_per_module.into(),
                        ));
                    }
                }
                memories += u64::from(reader.count());
            }
            Payload::TableSection(reader) => {
                if let Some(Some(module)) = stack.last_mut() {
                    module.tables = module.tables.saturating_add(reader.count());
                    if module.tables > limits.tables_per_module {
                        return Err(over(
                            "tables defined by one core module",
                            module.tables.into(),
                            limits.tables_per_module.into(),
                        ));
                    }
                }
                tables += u64::from(reader.count());
                for table in reader {
                    let initial = table.map_err(invalid)?.ty.initial;
                    if initial > limits.table_elements {
                        return Err(over(
                            "initial elements of a table",
                            initial,
                            limits.table_elements,
                        ));
                    }
                }
            }
            Payload::DataSection(reader) if reader.count() > limits.data_segments_per_module => {
                return Err(over(
                    "data segments of one core module",
                    reader.count().into(),
                    limits.data_segments_per_module.into(),
                ));
            }
            Payload::ElementSection(reader)
                if reader.count() > limits.element_segments_per_module =>
            {
                return Err(over(
                    "element segments of one core module",
                    reader.count().into(),
                    limits.element_segments_per_module.into(),
                ));
            }
            Payload::InstanceSection(reader) => {
                for instance in reader {
                    if matches!(
                        instance.map_err(invalid)?,
                        wasmparser::Instance::Instantiate { .. }
                    ) {
                        core_instances += 1;
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                for instance in reader {
                    if matches!(
                        instance.map_err(invalid)?,
                        wasmparser::ComponentInstance::Instantiate { .. }
                    ) {
                        component_instances += 1;
                    }
                }
            }
            _ => {}
        }
    }
    let totals = [
        (
            "linear memories of the component",
            memories,
            limits.memories_per_component,
        ),
        (
            "tables of the component",
            tables,
            limits.tables_per_component,
        ),
        (
            "core module instances of the component",
            core_instances,
            limits.core_instances_per_component,
        ),
        (
            "component instances nested in the component",
            component_instances,
            limits.component_instances_per_component,
        ),
    ];
    for (what, count, limit) in totals {
        if count > u64::from(limit) {
            return Err(over(what, count, limit.into()));
        }
    }
    Ok(())
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

    /// A filter-shaped component around `inner` (core definitions inside the component).
    fn filter_around(inner: &str) -> Vec<u8> {
        let wat = format!(
            r#"(component
                {inner}
                (component $c)
                (instance $f (instantiate $c))
                (export "{FILTER_EXPORT}" (instance $f)))"#
        );
        wat::parse_str(&wat).expect("wat")
    }

    fn refused_for(bytes: &[u8]) -> String {
        match check(bytes, 16 << 20) {
            Err(LoadError::ExceedsLimits(why)) => why,
            other => panic!("expected ExceedsLimits, got {other:?}"),
        }
    }

    #[test]
    fn components_within_the_limits_pass() {
        let ok = filter_around(
            r#"(core module $m (memory 1) (table 10 funcref) (data (i32.const 0) "x"))
               (core instance (instantiate $m))"#,
        );
        check(&ok, 1 << 20).expect("within limits");
    }

    #[test]
    fn refuses_components_over_the_engine_limits() {
        let two_memories = filter_around(r#"(core module $m (memory 1) (memory 1))"#);
        assert!(refused_for(&two_memories).contains("memories defined by one core module: 2"));

        let huge_table = filter_around(r#"(core module $m (table 1000000 funcref))"#);
        let why = refused_for(&huge_table);
        assert!(
            why.contains("initial elements of a table: 1000000"),
            "{why}"
        );
        assert!(
            why.contains(&COMPONENT_LIMITS.table_elements.to_string()),
            "{why}"
        );

        let n = COMPONENT_LIMITS.core_instances_per_component + 1;
        let many = (0..n)
            .map(|_| "(core instance (instantiate $m))")
            .collect::<String>();
        let instances = filter_around(&format!("(core module $m) {many}"));
        assert!(refused_for(&instances).contains("core module instances of the component"));

        let n = COMPONENT_LIMITS.memories_per_component + 1;
        let modules = (0..n)
            .map(|i| format!("(core module $m{i} (memory 1))"))
            .collect::<String>();
        let memories = filter_around(&modules);
        assert!(refused_for(&memories).contains("linear memories of the component"));

        let n = COMPONENT_LIMITS.data_segments_per_module + 1;
        let segments = (0..n)
            .map(|_| r#"(data (i32.const 0) "x")"#)
            .collect::<String>();
        let data = filter_around(&format!("(core module $m (memory 1) {segments})"));
        assert!(refused_for(&data).contains("data segments of one core module"));
    }
}
