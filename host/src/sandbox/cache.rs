//! Compiled artifacts on disk, per tenant, under a byte budget: compiling takes tens of milliseconds
//! (seconds for large components), loading an artifact tens of microseconds.
//!
//! Layout: `<dir>/<tenant>/<key>-<engine>.cwasm`, where `<key>` is the component's SHA-256 (an
//! uploaded component) or `prepared-<sha256 of component and configuration>` (a prepared
//! snapshot), and `<engine>` the engine's compatibility hash. Artifacts are never shared between
//! tenants, even for identical bytes: a shared one would let tenant A learn, from how fast an upload
//! or a preparation answers, that tenant B holds the same component.
//!
//! Budget: both kinds of artifact count against one byte budget, enforced by a [`Ledger`] (LRU with
//! a per-tenant share: `budget / tenants holding artifacts`; eviction takes the least recently used
//! artifact of a tenant over its share, so one tenant's flood only evicts its own). The index is
//! built at start from the directory (sizes, and modification times as last use, which every load
//! refreshes so the order survives restarts), and artifacts found over the budget are evicted then.
//! The budget can be exceeded only by the artifacts being written at that moment. Artifacts of the
//! old flat layout (not per tenant) and temporary files left by a crash are deleted at start.
//!
//! [`Keep::Ephemeral`] artifacts (a dry run with a configuration no pipeline uses) are never
//! written: they live as long as the caller keeps the compiled component in memory.

use super::check::sha256_hex;
use super::ledger::{CacheStats, Ledger};
use parking_lot::Mutex;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a compiled artifact outlives the call that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Kept in the on-disk cache (and, for prepared stages, the long-lived memory cache): what
    /// pipelines use.
    Cached,
    /// Not written to disk, and kept in memory only in the small area for trials: a dry run with a
    /// configuration no pipeline uses.
    Ephemeral,
}

pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
    /// Keyed by the path relative to `dir`; the tenant is the directory name.
    ledger: Mutex<Ledger<PathBuf>>,
}

/// Where one tenant's artifact for one key lives.
struct Slot {
    tenant: String,
    rel: PathBuf,
    path: PathBuf,
}

impl ArtifactCache {
    /// A cache in `dir` (created private) holding at most `budget` bytes, or none.
    pub fn new(engine: &Engine, dir: Option<PathBuf>, budget: u64) -> std::io::Result<Self> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let cache = Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            ledger: Mutex::new(Ledger::new(budget)),
        };
        if let Some(dir) = &cache.dir {
            create_private_dir(dir)?;
            cache.index(dir)?;
        }
        Ok(cache)
    }

    /// Builds the ledger from what `dir` holds, oldest use first, and evicts what is over budget.
    fn index(&self, dir: &Path) -> std::io::Result<()> {
        let mut found: Vec<(SystemTime, String, PathBuf, u64)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let file_type = entry.file_type()?;
            if file_type.is_file() {
                // The flat layout of earlier versions (keys not per tenant), or a stray temp file.
                remove(&path);
                continue;
            }
            if !file_type.is_dir() {
                continue;
            }
            let tenant = entry.file_name().to_string_lossy().into_owned();
            for file in std::fs::read_dir(&path)? {
                let file = file?;
                let name = file.file_name().to_string_lossy().into_owned();
                let meta = file.metadata()?;
                if !meta.is_file() {
                    continue;
                }
                if name.ends_with(".cwasm") {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    let rel = Path::new(&tenant).join(&name);
                    found.push((used, tenant.clone(), rel, meta.len()));
                } else if name.contains(".tmp") {
                    remove(&file.path());
                }
            }
        }
        found.sort();
        let mut ledger = self.ledger.lock();
        let mut evicted = Vec::new();
        for (_, tenant, rel, bytes) in found {
            evicted.extend(ledger.insert(&tenant, rel, bytes, ()));
        }
        drop(ledger);
        for (rel, ()) in evicted {
            remove(&dir.join(rel));
        }
        Ok(())
    }

    fn slot(&self, tenant: &str, key: &str) -> Option<Slot> {
        let dir = self.dir.as_ref()?;
        let tenant = tenant_dir(tenant);
        let rel = Path::new(&tenant).join(format!("{key}-{}.cwasm", self.engine_key));
        Some(Slot {
            path: dir.join(&rel),
            tenant,
            rel,
        })
    }

    /// `tenant`'s cached component for `key`, if there is a usable artifact; marks it used.
    pub fn load(&self, engine: &Engine, tenant: &str, key: &str) -> Option<Component> {
        let slot = self.slot(tenant, key)?;
        let indexed = self.ledger.lock().get(&slot.tenant, &slot.rel).is_some();
        let size = match std::fs::metadata(&slot.path) {
            Ok(meta) => meta.len(),
            Err(_) => {
                if indexed {
                    // Deleted behind our back (another process sharing the directory, an operator).
                    self.ledger.lock().remove(&slot.rel);
                }
                return None;
            }
        };
        // SAFETY: deserializing runs native code from the file, so it must be an artifact this engine
        // wrote. The cache directory is created private to this user and written only by `store`
        // below (atomically); the name carries the engine's compatibility hash, and wasmtime also
        // checks the artifact's header and engine configuration before using it.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &slot.path) };
        match loaded {
            Ok(component) => {
                // The modification time is the last use after a restart.
                let _ =
                    std::fs::File::open(&slot.path).and_then(|f| f.set_modified(SystemTime::now()));
                if !indexed {
                    self.account(&slot, size);
                }
                Some(component)
            }
            Err(e) => {
                tracing::warn!(path = %slot.path.display(), "discarding unusable compiled artifact: {e}");
                remove(&slot.path);
                self.ledger.lock().remove(&slot.rel);
                None
            }
        }
    }

    /// Saves `tenant`'s compiled artifact unless it is ephemeral or heavier than the whole budget;
    /// failures only cost a recompile later, so they are logged.
    pub fn store(&self, tenant: &str, key: &str, artifact: &[u8], keep: Keep) {
        if keep == Keep::Ephemeral {
            return;
        }
        let Some(slot) = self.slot(tenant, key) else {
            return;
        };
        let size = u64::try_from(artifact.len()).unwrap_or(u64::MAX);
        if !self.ledger.lock().fits(size) {
            tracing::debug!(
                size,
                "compiled artifact larger than the whole cache budget: not cached"
            );
            return;
        }
        let tmp = slot
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let result = slot
            .path
            .parent()
            .map_or(Ok(()), create_private_dir)
            .and_then(|()| std::fs::write(&tmp, artifact))
            .and_then(|()| std::fs::rename(&tmp, &slot.path));
        match result {
            Ok(()) => self.account(&slot, size),
            Err(e) => {
                remove(&tmp);
                tracing::warn!(path = %slot.path.display(), "cannot cache compiled artifact: {e}");
            }
        }
    }

    /// Records an artifact now on disk and deletes what that evicts.
    fn account(&self, slot: &Slot, size: u64) {
        let evicted = self
            .ledger
            .lock()
            .insert(&slot.tenant, slot.rel.clone(), size, ());
        let Some(dir) = &self.dir else { return };
        for (rel, ()) in evicted {
            tracing::debug!(artifact = %rel.display(), "evicting compiled artifact");
            remove(&dir.join(rel));
        }
    }

    /// Bytes on disk, in total and per tenant directory.
    pub fn stats(&self) -> CacheStats {
        self.ledger.lock().stats()
    }
}

/// A tenant's directory name: its id when that is a plain name (tenant ids are UUIDs), else a hash
/// that cannot collide with one (`~` is not a plain-name character).
pub(crate) fn tenant_dir(tenant: &str) -> String {
    let plain = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        tenant.to_string()
    } else {
        format!("~{}", &sha256_hex(tenant.as_bytes())[..32])
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), "cannot delete cached artifact: {e}");
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    fn size_of(dir: &Path) -> u64 {
        let mut total = 0;
        for entry in std::fs::read_dir(dir).expect("dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("meta");
            total += if meta.is_dir() {
                size_of(&entry.path())
            } else {
                meta.len()
            };
        }
        total
    }

    #[test]
    fn tenant_directories_are_plain_ids_or_hashes() {
        assert_eq!(tenant_dir("0190c4d2-aa"), "0190c4d2-aa");
        for odd in ["", "../x", "a/b", "~abc", &"x".repeat(65)] {
            let name = tenant_dir(odd);
            assert!(
                name.starts_with('~') && name.len() == 33,
                "{odd:?} -> {name}"
            );
        }
        assert_ne!(tenant_dir("a/b"), tenant_dir("a/c"));
    }

    #[test]
    fn stores_stay_under_the_budget_per_tenant_and_ephemeral_ones_are_not_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cache");
        let cache = ArtifactCache::new(&engine(), Some(dir.clone()), 1000).expect("cache");
        cache.store("b", "b1", &[0; 300], Keep::Cached);
        for i in 0..10 {
            cache.store("a", &format!("a{i}"), &[0; 200], Keep::Cached);
            assert!(size_of(&dir) <= 1000, "over budget after a{i}");
        }
        let stats = cache.stats();
        assert_eq!(stats.tenant("b").bytes, 300, "{stats:?}");
        assert!(
            dir.join("b")
                .join(format!("b1-{}.cwasm", cache.engine_key))
                .exists()
        );
        assert_eq!(stats.bytes, size_of(&dir));

        let before = size_of(&dir);
        cache.store("a", "trial", &[0; 200], Keep::Ephemeral);
        assert_eq!(size_of(&dir), before);
        // Heavier than the whole budget: not written, nothing evicted.
        cache.store("a", "huge", &[0; 1001], Keep::Cached);
        assert_eq!(size_of(&dir), before);
    }

    #[test]
    fn the_index_is_rebuilt_at_start_and_old_files_evicted_or_deleted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cache");
        {
            let cache = ArtifactCache::new(&engine(), Some(dir.clone()), 10_000).expect("cache");
            for i in 0..5 {
                cache.store("a", &format!("k{i}"), &[0; 1000], Keep::Cached);
            }
        }
        std::fs::write(dir.join("legacy-0000.cwasm"), b"flat layout").expect("legacy");
        std::fs::write(dir.join("a").join("k9.tmp123"), b"crash").expect("tmp");
        // Restarted with a smaller budget: the oldest artifacts go, the newest stay.
        let cache = ArtifactCache::new(&engine(), Some(dir.clone()), 2500).expect("cache");
        let stats = cache.stats();
        assert_eq!((stats.bytes, stats.entries), (2000, 2), "{stats:?}");
        assert_eq!(size_of(&dir), 2000);
        assert!(!dir.join("legacy-0000.cwasm").exists());
        let kept = |k: &str| {
            dir.join("a")
                .join(format!("{k}-{}.cwasm", cache.engine_key))
                .exists()
        };
        assert!(kept("k3") && kept("k4") && !kept("k0"));
    }
}
