//! What a store holds during one call: the message, the stage config, capped logs, the memory limiter,
//! the call's budget for host work, and (only when the guest touches WASI) a WASI context with no
//! filesystem and no network.

use super::patterns::PatternCache;
use super::{LogLevel, LogLine, PluginLimits};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub(crate) struct SandboxState {
    pub table: ResourceTable,
    pub config: Arc<str>,
    pub logs: LogBuffer,
    pub limiter: MemoryLimiter,
    pub budget: HostBudget,
    /// Whose call this is, and where its compiled `matches` patterns are kept.
    pub tenant: Arc<str>,
    pub patterns: PatternCache,
    wasi: Option<(WasiCtx, MemoryOutputPipe)>,
    output_cap: usize,
}

impl SandboxState {
    pub fn new(
        config: Arc<str>,
        limits: &PluginLimits,
        budget: HostBudget,
        tenant: Arc<str>,
        patterns: PatternCache,
    ) -> Self {
        Self {
            table: ResourceTable::new(),
            config,
            logs: LogBuffer::new(limits.log_bytes),
            limiter: MemoryLimiter {
                limit: limits.memory_bytes,
                hit: false,
            },
            budget,
            tenant,
            patterns,
            wasi: None,
            output_cap: limits.log_bytes,
        }
    }

    /// What the guest wrote to stdout/stderr, lossy UTF-8.
    pub fn output(&self) -> String {
        self.wasi
            .as_ref()
            .map(|(_, pipe)| String::from_utf8_lossy(&pipe.contents()).into_owned())
            .unwrap_or_default()
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Built on first use: most filters never call WASI, and building a context per call would cost
        // more than instantiating the plugin.
        let cap = self.output_cap;
        let (ctx, _) = self.wasi.get_or_insert_with(|| {
            let pipe = MemoryOutputPipe::new(cap);
            let mut builder = WasiCtxBuilder::new();
            builder
                .stdout(pipe.clone())
                .stderr(pipe.clone())
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
            (builder.build(), pipe)
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// What host work (the match primitives' scans, pattern compilation) a call may still do.
///
/// Host primitives run native code that the epoch deadline cannot interrupt, so they check the
/// deadline before they start, and pay for the bytes they scan out of the call's fuel. The fuel
/// itself lives in the wasm store, which host functions cannot reach: charges are counted here, and
/// the epoch callback (every tick, with the store in hand) checks wasm fuel used plus host charges
/// against the one budget. Between ticks a charge is checked against what was left at the last
/// tick; the report adds both.
#[derive(Debug)]
pub(crate) struct HostBudget {
    /// When the call must end.
    pub deadline: Instant,
    /// Fuel left (wasm and host together) at the last tick.
    pub fuel_seen: u64,
    /// Host charges since the last tick.
    pub pending: u64,
    /// All host charges of the call, for the report.
    pub charged: u64,
    /// Why the host refused work, once it did (so the failure says so).
    pub exhausted: Option<HostExhausted>,
}

/// Why host work was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostExhausted {
    Deadline,
    Fuel,
}

impl HostBudget {
    pub fn new(deadline: Instant, fuel: u64) -> Self {
        Self {
            deadline,
            fuel_seen: fuel,
            pending: 0,
            charged: 0,
            exhausted: None,
        }
    }

    /// Pays `fuel` for host work about to start; false (and remembered) when the call cannot.
    pub fn charge(&mut self, fuel: u64) -> bool {
        if self.exhausted.is_some() {
            return false;
        }
        if Instant::now() >= self.deadline {
            self.exhausted = Some(HostExhausted::Deadline);
            return false;
        }
        if self.pending.saturating_add(fuel) > self.fuel_seen {
            self.exhausted = Some(HostExhausted::Fuel);
            return false;
        }
        self.pending += fuel;
        self.charged = self.charged.saturating_add(fuel);
        true
    }
}

/// Log lines kept within a byte budget; what does not fit is counted, not kept.
pub(crate) struct LogBuffer {
    pub lines: Vec<LogLine>,
    pub dropped: u64,
    remaining: usize,
}

impl LogBuffer {
    fn new(budget: usize) -> Self {
        Self {
            lines: Vec::new(),
            dropped: 0,
            remaining: budget,
        }
    }

    pub fn push(&mut self, level: LogLevel, message: &str) {
        if self.remaining == 0 {
            self.dropped += 1;
            return;
        }
        let mut end = message.len().min(self.remaining);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        // An empty line still costs a byte, so a flood of empty lines is bounded too.
        self.remaining -= end.max(1).min(self.remaining);
        self.lines.push(LogLine {
            level,
            message: message[..end].to_string(),
        });
    }

    /// The panic message the SDK's hook logged, if any.
    pub fn panic_message(&self) -> Option<String> {
        self.lines
            .iter()
            .rev()
            .filter(|l| l.level == LogLevel::Error)
            .find_map(|l| l.message.strip_prefix("panicked at ").map(str::to_string))
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        self.lines[self.lines.len().saturating_sub(n)..].to_vec()
    }
}

/// Refuses memory growth past the tenant's limit and remembers that it did, so the failure is
/// reported as `memory` rather than as whatever trap the guest's allocator turns it into.
pub(crate) struct MemoryLimiter {
    limit: u64,
    pub hit: bool,
}

/// The error a refused `memory.grow` traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the plugin asked for {desired} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub limit: u64,
    pub desired: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any real filter.
        Ok(desired <= 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_budget_cuts_and_counts() {
        let mut logs = LogBuffer::new(10);
        logs.push(LogLevel::Info, "hello");
        logs.push(LogLevel::Info, "wörld!!");
        logs.push(LogLevel::Info, "dropped");
        assert_eq!(logs.lines.len(), 2);
        assert_eq!(logs.lines[1].message, "wörl");
        assert_eq!(logs.dropped, 1);
        assert_eq!(logs.tail(1)[0].message, "wörl");
    }

    #[test]
    fn panic_message_comes_from_the_hook_line() {
        let mut logs = LogBuffer::new(1000);
        logs.push(LogLevel::Error, "panicked at src/lib.rs:3:5: boom");
        assert_eq!(
            logs.panic_message().as_deref(),
            Some("src/lib.rs:3:5: boom")
        );
    }
}
