//! A tenant's plugin versions, prepared for stage configurations and kept ready.
//!
//! Preparing compiles the component and snapshots it after its `prepare` ran with the configuration
//! (hundreds of milliseconds the first time; the runtime's artifact cache makes it ~1 ms after that).
//! This cache keeps prepared plugins in memory too, so a run pays for it once.

use super::PipelineError;
use crate::plugins::{PluginLimits, PreparedPlugin, Runtime};
use crate::store::{PluginVersionRow, Store};
use lru::LruCache;
use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Prepared plugins kept in memory.
const CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    sha256: String,
    config: String,
}

/// Prepared plugins by tenant, component and configuration.
#[derive(Clone)]
pub struct StageCache {
    store: Store,
    runtime: Runtime,
    prepared: Arc<Mutex<LruCache<Key, PreparedPlugin>>>,
}

impl std::fmt::Debug for StageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageCache").finish_non_exhaustive()
    }
}

impl StageCache {
    /// An empty cache over `store`'s components.
    pub fn new(store: Store, runtime: Runtime) -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            store,
            runtime,
            prepared: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// The runtime plugins run on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// `version` of a tenant's plugin prepared for `config`. A configuration the plugin rejects is a
    /// [`crate::plugins::LoadError::Rejected`].
    pub async fn prepared(
        &self,
        tenant: &str,
        version: &PluginVersionRow,
        config: &str,
        limits: &PluginLimits,
    ) -> Result<PreparedPlugin, PipelineError> {
        let key = Key {
            tenant: tenant.to_string(),
            sha256: version.sha256.clone(),
            config: config.to_string(),
        };
        if let Some(hit) = self.prepared.lock().get(&key) {
            return Ok(hit.clone());
        }
        let bytes = self.store.component(tenant, &version.sha256).await?;
        let prepared = self
            .runtime
            .prepare(tenant, &bytes, &key.config, limits)
            .await?;
        self.prepared.lock().put(key, prepared.clone());
        Ok(prepared)
    }
}
