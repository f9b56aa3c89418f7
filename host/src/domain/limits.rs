use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What one call of a tenant's plugin may use. Part of the tenant; defaults from DESIGN.md §3.
///
/// The fuel budget scales with the message: `fuel_base + fuel_per_byte * size`, so it is deterministic
/// for a given message and can be reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Largest linear memory of the plugin, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline of one call, in milliseconds.
    pub deadline_ms: u64,
    /// Fuel (roughly: WebAssembly instructions) every call gets.
    pub fuel_base: u64,
    /// Extra fuel per byte of the message.
    pub fuel_per_byte: u64,
    /// Log text (log import plus stdout/stderr) kept per call, in bytes.
    pub log_bytes: usize,
    /// Largest component accepted at upload, in bytes.
    pub upload_bytes: usize,
    /// Most actions one call may return.
    pub max_actions: usize,
    /// Wall-clock time compiling one uploaded component may take, in milliseconds (also its CPU
    /// time, rounded up to whole seconds). Real plugins in other languages need tens of seconds:
    /// a componentize-py one ~21 s of CPU, a componentize-js one ~25 s.
    pub compile_timeout_ms: u64,
    /// Memory compiling one component may take, in bytes (the compiler's data segment: heap and
    /// thread stacks). A componentize-py plugin needs ~550 MB, a componentize-js one ~610 MB.
    pub compile_memory_bytes: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 32 << 20,
            deadline_ms: 250,
            fuel_base: 200_000_000,
            fuel_per_byte: 200,
            log_bytes: 16 << 10,
            upload_bytes: 16 << 20,
            max_actions: 64,
            compile_timeout_ms: 60_000,
            compile_memory_bytes: 1 << 30,
        }
    }
}

impl PluginLimits {
    /// The wall-clock deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The wall-clock budget of compiling a component.
    pub fn compile_timeout(&self) -> Duration {
        Duration::from_millis(self.compile_timeout_ms)
    }

    /// The fuel budget for a message of `size` bytes.
    pub fn fuel_for(&self, size: u64) -> u64 {
        self.fuel_base
            .saturating_add(self.fuel_per_byte.saturating_mul(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_keeps_defaults_and_unknown_keys_fail() {
        let limits: PluginLimits = serde_json::from_str(r#"{"deadline_ms": 10}"#).expect("valid");
        assert_eq!(limits.deadline(), Duration::from_millis(10));
        assert_eq!(limits.memory_bytes, 32 << 20);
        assert!(serde_json::from_str::<PluginLimits>(r#"{"deadline": 10}"#).is_err());
        assert_eq!(limits.fuel_for(10), 200_000_000 + 2_000);
        let huge = PluginLimits {
            fuel_per_byte: u64::MAX,
            ..limits
        };
        assert_eq!(huge.fuel_for(2), u64::MAX);
    }
}
