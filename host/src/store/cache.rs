//! The tenant lookup every request makes (tenant, its limits, the token's revocation state), kept
//! in memory so that a request costs no query when nothing changed.
//!
//! What changes it — deleting a tenant, new limits, revoking or minting a token — clears the
//! tenant's entries on this node once committed, and on PostgreSQL notifies `wasmail_tenants` in the
//! same transaction, so every other node's listener clears them too (`crate::queue::listen`). A
//! lookup that raced a change is not cached: each lookup notes the cache's generation before its
//! query and stores its answer only if no invalidation happened meanwhile. Entries also age out
//! ([`MAX_AGE_SQLITE`], [`MAX_AGE_POSTGRES`]): on SQLite, processes sharing a database file have no
//! channel between them, and on PostgreSQL a notification lost with a dropped listener connection is
//! covered by clearing everything when it reconnects.

use super::{Backend, Result, TokenCheck, WriteTx};
use crate::domain::TenantId;
use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// The PostgreSQL channel that carries the id of a tenant whose lookup changed.
pub const TENANTS_CHANNEL: &str = "wasmail_tenants";

/// How long an entry serves on SQLite (another process on the same file may have changed it).
pub const MAX_AGE_SQLITE: Duration = Duration::from_secs(1);
/// How long an entry serves on PostgreSQL (changes arrive as notifications; this only bounds the
/// damage of one that never does).
pub const MAX_AGE_POSTGRES: Duration = Duration::from_secs(60);

/// Entries kept at most (each a few hundred bytes: ~3 MB at most).
const CAPACITY: usize = 10_000;

/// Cached token checks by tenant and token id.
#[derive(Debug)]
pub(crate) struct TenantCache {
    inner: Mutex<Inner>,
    max_age: Duration,
}

#[derive(Debug)]
struct Inner {
    entries: lru::LruCache<(String, String), (TokenCheck, Instant)>,
    /// Grows at every invalidation.
    generation: u64,
}

impl TenantCache {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: lru::LruCache::new(
                    NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
                ),
                generation: 0,
            }),
            max_age: match backend {
                Backend::Sqlite => MAX_AGE_SQLITE,
                Backend::Postgres => MAX_AGE_POSTGRES,
            },
        }
    }

    /// The cached check, if fresh; otherwise the generation to hand back to [`Self::put`].
    pub(crate) fn get(&self, tenant: &TenantId, jti: &str) -> Result<TokenCheck, u64> {
        let mut inner = self.inner.lock();
        let key = (tenant.as_str().to_string(), jti.to_string());
        match inner.entries.get(&key) {
            Some((check, at)) if at.elapsed() < self.max_age => Ok(check.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Caches a check read at `generation`, unless something was invalidated since.
    pub(crate) fn put(&self, tenant: &TenantId, jti: &str, check: &TokenCheck, generation: u64) {
        let mut inner = self.inner.lock();
        if inner.generation == generation {
            let key = (tenant.as_str().to_string(), jti.to_string());
            inner.entries.put(key, (check.clone(), Instant::now()));
        }
    }

    /// Forgets a tenant's entries.
    pub(crate) fn invalidate(&self, tenant: &str) {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        let stale: Vec<_> = inner
            .entries
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            inner.entries.pop(&key);
        }
    }

    /// Forgets everything (a notification may have been missed).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

/// Inside a transaction that changes a tenant's lookup: on PostgreSQL, tells every node when it
/// commits. (The caller also invalidates this node's cache after the commit.)
pub(crate) async fn changed(tx: &mut WriteTx, tenant: &TenantId) -> Result<()> {
    if let super::TxConn::Postgres(c) = tx.conn() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(TENANTS_CHANNEL)
            .bind(tenant.as_str())
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantRow;

    fn check(name: &str) -> TokenCheck {
        TokenCheck {
            tenant: TenantRow {
                id: TenantId::new("t1"),
                name: name.into(),
                limits: Default::default(),
                created_at: 0,
            },
            token: None,
            issued_before: None,
        }
    }

    #[test]
    fn a_lookup_that_raced_an_invalidation_is_not_cached() {
        let cache = TenantCache::new(Backend::Postgres);
        let t = TenantId::new("t1");
        let generation = cache.get(&t, "j").expect_err("empty");
        cache.invalidate("t1");
        cache.put(&t, "j", &check("old"), generation);
        assert!(cache.get(&t, "j").is_err(), "the stale answer was dropped");
        let generation = cache.get(&t, "j").expect_err("still empty");
        cache.put(&t, "j", &check("new"), generation);
        assert_eq!(cache.get(&t, "j").expect("cached").tenant.name, "new");
    }

    #[test]
    fn invalidation_is_per_tenant() {
        let cache = TenantCache::new(Backend::Postgres);
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        for t in [&a, &b] {
            let g = cache.get(t, "j").expect_err("empty");
            cache.put(t, "j", &check("x"), g);
        }
        cache.invalidate("a");
        assert!(cache.get(&a, "j").is_err());
        assert!(cache.get(&b, "j").is_ok());
        cache.clear();
        assert!(cache.get(&b, "j").is_err());
    }
}
