//! Who may run a plugin now: a bound on calls at once, and a share of it per tenant.
//!
//! Plugins are CPU-bound, so calls beyond the core count only add latency; the total bound keeps
//! them in check. Without a per-tenant share, one tenant starting many slow calls (a flood of dry
//! runs of a plugin that waits out its deadline) held every permit and every other tenant's calls
//! queued behind them. A tenant holds at most `per_tenant` permits, so the rest stay free for others.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct Permits {
    total: Arc<Semaphore>,
    per_tenant: usize,
    tenants: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
}

/// A held permit: its tenant's and the total's, released together on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    _tenant: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Permits {
    pub fn new(total: usize, per_tenant: usize) -> Self {
        let total = total.max(1);
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_tenant: per_tenant.clamp(1, total),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a permit for `tenant` (its share first, then the total); `None` once closed.
    pub async fn acquire(&self, tenant: &Arc<str>) -> Option<Permit> {
        let share = self
            .tenants
            .lock()
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone();
        let tenant_permit = share.acquire_owned().await.ok()?;
        let total = self.total.clone().acquire_owned().await.ok()?;
        self.forget_idle();
        Some(Permit {
            _tenant: tenant_permit,
            _total: total,
        })
    }

    /// Permits of the total free now.
    pub fn available(&self) -> usize {
        self.total.available_permits()
    }

    /// Drops the shares of tenants with nothing running or waiting, so the map does not grow with
    /// every tenant ever seen.
    fn forget_idle(&self) {
        let mut tenants = self.tenants.lock();
        if tenants.len() > 1024 {
            let per_tenant = self.per_tenant;
            tenants.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < per_tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_tenant_cannot_take_every_permit() {
        let permits = Permits::new(4, 2);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let held = [
            permits.acquire(&a).await.expect("open"),
            permits.acquire(&a).await.expect("open"),
        ];
        // A third for `a` waits; `b` still gets two at once.
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), permits.acquire(&a));
        assert!(third.await.is_err(), "tenant a got a third permit");
        let _b1 = permits.acquire(&b).await.expect("open");
        let _b2 = permits.acquire(&b).await.expect("open");
        assert_eq!(permits.available(), 0);
        drop(held);
        assert_eq!(permits.available(), 2);
    }
}
