//! What the plugin caches hold, for operators (and the tests that check the budgets hold).

use crate::sandbox::{CacheStats, TenantUsage};
use poem_openapi::Object;

/// The plugin caches: compiled artifacts on disk, prepared stages and trials in memory.
#[derive(Debug, Clone, Object)]
pub struct Caches {
    /// Compiled plugins on disk (uploaded components and prepared stages); budget
    /// `artifact_cache_bytes`.
    pub artifacts: Cache,
    /// Prepared stages pipelines use, in memory; budget `stage_cache_bytes`.
    pub stages: Cache,
    /// Plugins prepared by dry runs with a configuration no pipeline uses, in memory; budget
    /// `trial_cache_bytes`.
    pub trials: Cache,
}

/// One cache's use.
#[derive(Debug, Clone, Object)]
pub struct Cache {
    /// Its byte budget.
    pub budget_bytes: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Entries held.
    pub entries: u64,
    /// Entries evicted since the server started.
    pub evictions: u64,
    /// Per tenant that used it since the server started, by tenant id.
    pub tenants: Vec<CacheTenant>,
}

/// One tenant's use of a cache.
#[derive(Debug, Clone, Object)]
pub struct CacheTenant {
    /// The tenant's id.
    pub tenant: String,
    /// Bytes its entries weigh.
    pub bytes: u64,
    /// Entries it holds.
    pub entries: u64,
    /// Lookups that found an entry.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Entries of its that were evicted.
    pub evictions: u64,
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl From<CacheStats> for Cache {
    fn from(s: CacheStats) -> Self {
        Self {
            budget_bytes: s.budget_bytes,
            bytes: s.bytes,
            entries: count(s.entries),
            evictions: s.evictions,
            tenants: s.tenants.into_iter().map(CacheTenant::from).collect(),
        }
    }
}

impl From<TenantUsage> for CacheTenant {
    fn from(t: TenantUsage) -> Self {
        Self {
            tenant: t.tenant,
            bytes: t.bytes,
            entries: count(t.entries),
            hits: t.hits,
            misses: t.misses,
            evictions: t.evictions,
        }
    }
}
