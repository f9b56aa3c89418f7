//! A tenant's plugin versions, prepared for stage configurations and kept ready.
//!
//! Preparing compiles the component and snapshots it after its `prepare` ran with the configuration
//! (hundreds of milliseconds the first time; the runtime's artifact cache makes it ~1 ms after that).
//! This cache keeps prepared plugins in memory too, so a run pays for it once.
//!
//! Memory is bounded in bytes, not entries: each prepared plugin weighs
//! [`PreparedPlugin::memory_bytes`] (its compiled image and memory initialisation data), and the
//! cache evicts by least recent use with a per-tenant share (see [`crate::sandbox`]'s ledger: one
//! tenant's flood of configurations evicts only its own plugins once it holds more than
//! `budget / tenants`). Two areas:
//! - **stages**: what pipelines use ([`Keep::Cached`]), long-lived;
//! - **trials**: dry runs with a configuration no pipeline uses ([`Keep::Ephemeral`]), a small
//!   budget of its own, so trying configurations never evicts a pipeline's stages; the runtime
//!   writes no artifact to disk for them either.

use super::PipelineError;
use crate::domain::TenantId;
use crate::sandbox::{CacheStats, Keep, Ledger, PluginLimits, PreparedPlugin, Runtime};
use crate::store::{PluginVersionRow, Store};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    sha256: String,
    config: String,
}

type Area = Arc<Mutex<Ledger<Key, PreparedPlugin>>>;

/// Byte budgets of the in-memory areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageBudgets {
    /// Prepared plugins pipelines use, all tenants together.
    pub stage_bytes: u64,
    /// Prepared plugins of dry runs whose configuration no pipeline uses, all tenants together.
    pub trial_bytes: u64,
}

impl Default for StageBudgets {
    fn default() -> Self {
        Self {
            stage_bytes: 512 << 20,
            trial_bytes: 64 << 20,
        }
    }
}

/// What the in-memory areas hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageStats {
    /// Prepared plugins pipelines use.
    pub stages: CacheStats,
    /// Prepared plugins of dry runs.
    pub trials: CacheStats,
}

/// Prepared plugins by tenant, component and configuration.
#[derive(Clone)]
pub struct StageCache {
    store: Store,
    runtime: Runtime,
    stages: Area,
    trials: Area,
}

impl std::fmt::Debug for StageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageCache").finish_non_exhaustive()
    }
}

impl StageCache {
    /// An empty cache over `store`'s components.
    pub fn new(store: Store, runtime: Runtime, budgets: StageBudgets) -> Self {
        Self {
            store,
            runtime,
            stages: Arc::new(Mutex::new(Ledger::new(budgets.stage_bytes))),
            trials: Arc::new(Mutex::new(Ledger::new(budgets.trial_bytes))),
        }
    }

    /// The runtime plugins run on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Bytes each area holds, in total and per tenant.
    pub fn stats(&self) -> StageStats {
        StageStats {
            stages: self.stages.lock().stats(),
            trials: self.trials.lock().stats(),
        }
    }

    /// `version` of a tenant's plugin prepared for `config`, kept as `keep` says. A configuration
    /// the plugin rejects is a [`crate::sandbox::LoadError::Rejected`].
    pub async fn prepared(
        &self,
        tenant: &TenantId,
        version: &PluginVersionRow,
        config: &str,
        limits: &PluginLimits,
        keep: Keep,
    ) -> Result<PreparedPlugin, PipelineError> {
        let store_tenant = tenant;
        let tenant = tenant.as_str();
        let key = Key {
            tenant: tenant.to_string(),
            sha256: version.sha256.clone(),
            config: config.to_string(),
        };
        let area = match keep {
            Keep::Cached => &self.stages,
            // A trial of a configuration a pipeline has since started using is served from there.
            Keep::Ephemeral if self.stages.lock().contains(&key) => &self.stages,
            Keep::Ephemeral => &self.trials,
        };
        if let Some(hit) = area.lock().get(tenant, &key) {
            return Ok(hit.clone());
        }
        let bytes = self.store.component(store_tenant, &version.sha256).await?;
        let prepared = self
            .runtime
            .prepare(tenant, &bytes, &key.config, limits, keep)
            .await?;
        let weight = prepared.memory_bytes();
        let evicted = area.lock().insert(tenant, key, weight, prepared.clone());
        for (key, _) in &evicted {
            tracing::debug!(
                tenant = key.tenant,
                sha256 = key.sha256,
                "evicting a prepared plugin from memory"
            );
        }
        // Dropped here, outside the lock: unmapping a compiled image takes a moment.
        drop(evicted);
        Ok(prepared)
    }
}
