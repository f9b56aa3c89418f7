//! Compiled artifacts on disk, keyed by the component's SHA-256 and the engine's compatibility hash:
//! compiling takes tens of milliseconds, loading an artifact tens of microseconds.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ArtifactCache {
    /// A cache in `dir` (created private), or none.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(dir) = &dir {
            create_private_dir(dir)?;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// The cached component, if there is a usable artifact.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256)?;
        if !path.exists() {
            return None;
        }
        // SAFETY: deserializing runs native code from the file, so it must be an artifact this engine
        // wrote. The cache directory is created private to this user and written only by `store`
        // below (atomically); the name carries the engine's compatibility hash, and wasmtime also
        // checks the artifact's header and engine configuration before using it.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "discarding unusable compiled artifact: {e}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Saves a compiled artifact; failures only cost a recompile later, so they are logged.
    pub fn store(&self, sha256: &str, artifact: &[u8]) {
        let Some(path) = self.path(sha256) else {
            return;
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let result = std::fs::write(&tmp, artifact).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), "cannot cache compiled artifact: {e}");
        }
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
