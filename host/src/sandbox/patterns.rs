//! Compiled `matches` patterns, cached per tenant within a byte budget.
//!
//! A plugin runs in a fresh instance per message, so without a cache every message would recompile
//! the same rules' patterns. The cache was process-wide and counted entries, not bytes: distinct
//! patterns from one tenant grew the host past 1.5 GiB and evicted everyone else's. Now each entry
//! is weighed by what it holds ([`Pattern::memory_bytes`]); a tenant keeps at most `per_tenant`
//! bytes (its own least recently used patterns go first), and when all tenants together pass
//! `total`, the tenant holding the most loses its least recently used pattern — so a flood from one
//! tenant evicts that tenant's patterns, never a quiet tenant's.

use crate::message::{MatchError, Pattern};
use lru::LruCache;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Byte budgets of the pattern cache.
#[derive(Debug, Clone, Copy)]
pub struct PatternBudget {
    /// All tenants together.
    pub total: usize,
    /// One tenant.
    pub per_tenant: usize,
}

impl Default for PatternBudget {
    fn default() -> Self {
        Self {
            total: 64 << 20,
            per_tenant: 8 << 20,
        }
    }
}

struct TenantPatterns {
    lru: LruCache<String, Arc<Pattern>>,
    bytes: usize,
}

struct Inner {
    tenants: HashMap<Arc<str>, TenantPatterns>,
    bytes: usize,
}

/// The cache. Cheap to clone.
#[derive(Clone)]
pub(crate) struct PatternCache {
    budget: PatternBudget,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for PatternCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternCache")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// What a lookup did, so the caller can charge compilation to the plugin.
pub(crate) enum Lookup {
    Hit(Arc<Pattern>),
    Compiled(Arc<Pattern>),
}

impl PatternCache {
    pub fn new(budget: PatternBudget) -> Self {
        Self {
            budget,
            inner: Arc::new(Mutex::new(Inner {
                tenants: HashMap::new(),
                bytes: 0,
            })),
        }
    }

    /// `pattern` compiled, from `tenant`'s cache or compiled now (outside the lock).
    pub fn get(&self, tenant: &Arc<str>, pattern: &str) -> Result<Lookup, MatchError> {
        if let Some(hit) = self
            .inner
            .lock()
            .tenants
            .get_mut(tenant)
            .and_then(|t| t.lru.get(pattern).cloned())
        {
            return Ok(Lookup::Hit(hit));
        }
        let compiled = Arc::new(Pattern::new(pattern)?);
        self.insert(tenant, pattern, compiled.clone());
        Ok(Lookup::Compiled(compiled))
    }

    fn insert(&self, tenant: &Arc<str>, pattern: &str, compiled: Arc<Pattern>) {
        let weight = compiled.memory_bytes();
        if weight > self.budget.per_tenant {
            return; // used for this call only
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let entry = inner
            .tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantPatterns {
                lru: LruCache::unbounded(),
                bytes: 0,
            });
        if let Some(old) = entry.lru.put(pattern.to_string(), compiled) {
            entry.bytes -= old.memory_bytes().min(entry.bytes);
            inner.bytes -= old.memory_bytes().min(inner.bytes);
        }
        entry.bytes += weight;
        inner.bytes += weight;
        while entry.bytes > self.budget.per_tenant {
            let Some((_, evicted)) = entry.lru.pop_lru() else {
                break;
            };
            let w = evicted.memory_bytes();
            entry.bytes -= w.min(entry.bytes);
            inner.bytes -= w.min(inner.bytes);
        }
        while inner.bytes > self.budget.total {
            // The heaviest tenant pays for the overflow.
            let Some((name, heaviest)) = inner.tenants.iter_mut().max_by_key(|(_, t)| t.bytes)
            else {
                break;
            };
            let Some((_, evicted)) = heaviest.lru.pop_lru() else {
                let name = name.clone();
                inner.tenants.remove(&name);
                continue;
            };
            let w = evicted.memory_bytes();
            heaviest.bytes -= w.min(heaviest.bytes);
            inner.bytes -= w.min(inner.bytes);
        }
        inner.tenants.retain(|_, t| !t.lru.is_empty());
    }

    /// Bytes held for `tenant`, and in total.
    pub fn bytes(&self, tenant: &str) -> (usize, usize) {
        let inner = self.inner.lock();
        let mine = inner.tenants.get(tenant).map_or(0, |t| t.bytes);
        (mine, inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight() -> usize {
        Pattern::new("p0").expect("compiles").memory_bytes()
    }

    #[test]
    fn a_flooding_tenant_evicts_its_own_patterns_not_others() {
        let w = weight();
        // Room for ~10 small patterns in all, ~6 per tenant.
        let cache = PatternCache::new(PatternBudget {
            total: w * 10 + w / 2,
            per_tenant: w * 6 + w / 2,
        });
        let (quiet, loud): (Arc<str>, Arc<str>) = ("quiet".into(), "loud".into());
        for i in 0..4 {
            cache.get(&quiet, &format!("q{i}")).expect("compiles");
        }
        for i in 0..1000 {
            cache.get(&loud, &format!("p{i}")).expect("compiles");
        }
        let (loud_bytes, total) = cache.bytes("loud");
        assert!(loud_bytes <= w * 7, "{loud_bytes}");
        assert!(total <= w * 11, "{total}");
        for i in 0..4 {
            assert!(
                matches!(
                    cache.get(&quiet, &format!("q{i}")).expect("compiles"),
                    Lookup::Hit(_)
                ),
                "quiet tenant's pattern q{i} was evicted"
            );
        }
        assert!(matches!(
            cache.get(&loud, "p999").expect("compiles"),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            cache.get(&loud, "p0").expect("compiles"),
            Lookup::Compiled(_)
        ));
    }
}
