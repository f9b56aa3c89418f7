//! The eviction policy shared by the plugin caches (compiled artifacts on disk, prepared stages in
//! memory): a byte budget, least-recently-used order, and a per-tenant share.
//!
//! Every entry belongs to one tenant and weighs a number of bytes. The ledger may fill up to its
//! budget with anyone's entries (an idle cache is not wasted on fairness); when an insertion takes
//! the total over the budget, entries are evicted until it fits again:
//!
//! - A tenant's **share** is `budget / active tenants` (tenants holding at least one entry, the
//!   inserting one included), recomputed after every eviction.
//! - The victim is the least recently used entry among the tenants **over** their share. A tenant at
//!   or under its share loses nothing to anyone else's insertions, so one tenant flooding the cache
//!   with distinct configurations only evicts its own entries once it is over its share.
//! - The shares add up to the budget, so while the total is over the budget some tenant is over its
//!   share; the global least recently used entry is only a fallback that keeps the loop total.
//! - An entry heavier than the whole budget is not kept at all (it would only evict everything).
//!
//! The ledger is pure bookkeeping: callers delete what it evicts (files, in-memory plugins).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

/// One tenant's use of a cache, as reported by [`Ledger::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantUsage {
    /// The tenant (for the artifact cache: the name of its directory, which is its id for ids made
    /// of letters, digits, `-` and `_`).
    pub tenant: String,
    /// Bytes its entries weigh.
    pub bytes: u64,
    /// Entries it holds.
    pub entries: usize,
    /// Lookups that found an entry.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Entries of its that were evicted.
    pub evictions: u64,
}

/// A cache's use: the budget, what is held, and by whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The byte budget.
    pub budget_bytes: u64,
    /// Bytes held in total.
    pub bytes: u64,
    /// Entries held in total.
    pub entries: usize,
    /// Entries evicted since start.
    pub evictions: u64,
    /// Per tenant, by tenant name; tenants that never used the cache are absent.
    pub tenants: Vec<TenantUsage>,
}

impl CacheStats {
    /// The usage of `tenant`, zero if it has none.
    pub fn tenant(&self, tenant: &str) -> TenantUsage {
        self.tenants
            .iter()
            .find(|t| t.tenant == tenant)
            .cloned()
            .unwrap_or_else(|| TenantUsage {
                tenant: tenant.to_string(),
                ..TenantUsage::default()
            })
    }
}

struct Entry<V> {
    tenant: Arc<str>,
    bytes: u64,
    used: u64,
    value: V,
}

struct Tenant<K> {
    bytes: u64,
    /// The tenant's entries by last use, oldest first.
    order: BTreeMap<u64, K>,
    hits: u64,
    misses: u64,
    evictions: u64,
}

// Not derived: that would require `K: Default`.
impl<K> Default for Tenant<K> {
    fn default() -> Self {
        Self {
            bytes: 0,
            order: BTreeMap::new(),
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }
}

/// Entries `K` (with values `V`) by tenant, weighed in bytes, under a budget.
pub(crate) struct Ledger<K, V = ()> {
    budget: u64,
    total: u64,
    clock: u64,
    evictions: u64,
    entries: HashMap<K, Entry<V>>,
    tenants: HashMap<Arc<str>, Tenant<K>>,
}

impl<K: Hash + Eq + Clone, V> Ledger<K, V> {
    /// An empty ledger of `budget` bytes (0 keeps nothing).
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            total: 0,
            clock: 0,
            evictions: 0,
            entries: HashMap::new(),
            tenants: HashMap::new(),
        }
    }

    /// Bytes held in total.
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether `bytes` could be kept at all.
    pub fn fits(&self, bytes: u64) -> bool {
        bytes <= self.budget
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The entry's value, marking it used; counts a hit or a miss for `tenant`.
    pub fn get(&mut self, tenant: &str, key: &K) -> Option<&V> {
        let now = self.tick();
        let counters = self.tenants.entry(Arc::from(tenant)).or_default();
        let Some(entry) = self.entries.get_mut(key) else {
            counters.misses += 1;
            return None;
        };
        counters.hits += 1;
        if let Some(owner) = self.tenants.get_mut(&entry.tenant) {
            owner.order.remove(&entry.used);
            owner.order.insert(now, key.clone());
        }
        entry.used = now;
        Some(&entry.value)
    }

    /// Whether the ledger holds `key` (without marking it used).
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Adds (or replaces) `key` as the most recently used entry of `tenant` and evicts what the
    /// policy says; returns the evicted entries, which may include `key` itself when it is heavier
    /// than the budget.
    pub fn insert(&mut self, tenant: &str, key: K, bytes: u64, value: V) -> Vec<(K, V)> {
        let mut evicted = Vec::new();
        if let Some(old) = self.remove(&key) {
            drop(old);
        }
        if !self.fits(bytes) {
            evicted.push((key, value));
            return evicted;
        }
        let now = self.tick();
        let tenant: Arc<str> = Arc::from(tenant);
        let usage = self.tenants.entry(tenant.clone()).or_default();
        usage.bytes += bytes;
        usage.order.insert(now, key.clone());
        self.total += bytes;
        self.entries.insert(
            key,
            Entry {
                tenant,
                bytes,
                used: now,
                value,
            },
        );
        while self.total > self.budget {
            let Some(victim) = self.victim() else { break };
            if let Some(value) = self.remove(&victim) {
                self.evictions += 1;
                evicted.push((victim, value));
            }
        }
        evicted
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let entry = self.entries.remove(key)?;
        self.total -= entry.bytes;
        if let Some(usage) = self.tenants.get_mut(&entry.tenant) {
            usage.bytes -= entry.bytes;
            usage.order.remove(&entry.used);
        }
        Some(entry.value)
    }

    /// The next entry to evict: the least recently used one of the tenants over their share.
    fn victim(&mut self) -> Option<K> {
        let active = self
            .tenants
            .values()
            .filter(|t| !t.order.is_empty())
            .count();
        let share = self.budget / u64::try_from(active.max(1)).unwrap_or(u64::MAX);
        let oldest = |over_share: bool| {
            self.tenants
                .iter()
                .filter(|(_, t)| !over_share || t.bytes > share)
                .filter_map(|(name, t)| t.order.first_key_value().map(|(used, _)| (*used, name)))
                .min_by_key(|(used, _)| *used)
                .map(|(_, name)| name.clone())
        };
        let tenant = oldest(true).or_else(|| oldest(false))?;
        let usage = self.tenants.get_mut(&tenant)?;
        usage.evictions += 1;
        usage.order.first_key_value().map(|(_, key)| key.clone())
    }

    /// The current use, per tenant sorted by name.
    pub fn stats(&self) -> CacheStats {
        let mut tenants: Vec<TenantUsage> = self
            .tenants
            .iter()
            .map(|(name, t)| TenantUsage {
                tenant: name.to_string(),
                bytes: t.bytes,
                entries: t.order.len(),
                hits: t.hits,
                misses: t.misses,
                evictions: t.evictions,
            })
            .collect();
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        CacheStats {
            budget_bytes: self.budget,
            bytes: self.total,
            entries: self.entries.len(),
            evictions: self.evictions,
            tenants,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(evicted: Vec<(&'static str, ())>) -> Vec<&'static str> {
        evicted.into_iter().map(|(k, ())| k).collect()
    }

    #[test]
    fn nothing_is_evicted_within_the_budget() {
        let mut ledger = Ledger::new(100);
        assert!(keys(ledger.insert("a", "a1", 60, ())).is_empty());
        assert!(keys(ledger.insert("a", "a2", 40, ())).is_empty());
        assert_eq!(ledger.total(), 100);
        assert_eq!(ledger.stats().tenant("a").entries, 2);
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut ledger = Ledger::new(100);
        ledger.insert("a", "a1", 30, ());
        ledger.insert("a", "a2", 30, ());
        ledger.insert("a", "a3", 30, ());
        // Using a1 makes a2 the oldest.
        assert!(ledger.get("a", &"a1").is_some());
        assert_eq!(keys(ledger.insert("a", "a4", 30, ())), vec!["a2"]);
        assert!(ledger.contains(&"a1") && ledger.contains(&"a3") && ledger.contains(&"a4"));
        assert_eq!(ledger.total(), 90);
        let stats = ledger.stats();
        assert_eq!((stats.evictions, stats.tenant("a").evictions), (1, 1));
        assert_eq!(stats.tenant("a").hits, 1);
    }

    #[test]
    fn a_flooding_tenant_cannot_evict_another_below_its_share() {
        let mut ledger = Ledger::new(100);
        // B holds 40, under its share of 50 once A is active.
        ledger.insert("b", "b1", 20, ());
        ledger.insert("b", "b2", 20, ());
        // A floods with many entries, each older B entry being globally least recently used.
        let names = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"];
        for name in names {
            for (key, ()) in ledger.insert("a", name, 15, ()) {
                assert!(key.starts_with('a'), "A's flood evicted B's {key}");
            }
            assert!(ledger.total() <= 100);
        }
        let stats = ledger.stats();
        assert_eq!(stats.tenant("b").bytes, 40);
        assert_eq!(stats.tenant("b").evictions, 0);
        // A keeps what is left: 60 bytes, four entries of 15.
        assert_eq!(stats.tenant("a").bytes, 60);
        assert!(ledger.get("b", &"b1").is_some() && ledger.get("b", &"b2").is_some());
    }

    #[test]
    fn a_tenant_over_its_share_is_evicted_before_older_entries_of_others() {
        let mut ledger = Ledger::new(100);
        ledger.insert("b", "b1", 30, ());
        ledger.insert("a", "a1", 35, ());
        ledger.insert("a", "a2", 35, ());
        // Full. C arrives: shares are 33; A (70) is over, B (30) is not, although b1 is the oldest.
        assert_eq!(keys(ledger.insert("c", "c1", 20, ())), vec!["a1"]);
        assert!(ledger.contains(&"b1"));
    }

    #[test]
    fn a_sole_tenant_may_use_the_whole_budget() {
        let mut ledger = Ledger::new(100);
        for (i, key) in ["x", "y", "z", "w"].into_iter().enumerate() {
            let evicted = keys(ledger.insert("a", key, 30, ()));
            assert_eq!(evicted.len(), usize::from(i == 3));
        }
        assert_eq!(ledger.total(), 90);
    }

    #[test]
    fn an_entry_heavier_than_the_budget_is_not_kept_and_evicts_nothing() {
        let mut ledger = Ledger::new(100);
        ledger.insert("b", "b1", 50, ());
        assert_eq!(keys(ledger.insert("a", "huge", 101, ())), vec!["huge"]);
        assert!(ledger.contains(&"b1") && !ledger.contains(&"huge"));
        assert_eq!(ledger.total(), 50);
        let mut off = Ledger::new(0);
        assert_eq!(keys(off.insert("a", "any", 1, ())), vec!["any"]);
    }

    #[test]
    fn replacing_an_entry_counts_it_once_and_misses_are_counted() {
        let mut ledger = Ledger::new(100);
        ledger.insert("a", "k", 10, ());
        ledger.insert("a", "k", 30, ());
        assert_eq!(ledger.total(), 30);
        assert_eq!(ledger.stats().entries, 1);
        assert!(ledger.get("a", &"nope").is_none());
        assert_eq!(ledger.stats().tenant("a").misses, 1);
        assert_eq!(ledger.remove(&"k"), Some(()));
        assert_eq!(ledger.total(), 0);
    }
}
