//! Compiled components cached on disk, keyed by the component's SHA-256 and the engine's compatibility hash
//! (wasmtime version and compiler settings), so a restart of busbar does not recompile: a JavaScript or Python
//! component takes seconds to compile and milliseconds to load from here.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::Error;

pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

/// Where a component came from, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled now and stored.
    Miss,
    /// Compiled now; no cache configured.
    Uncached,
}

impl ComponentCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Result<Self, Error> {
        std::fs::create_dir_all(&dir).map_err(|error| Error::Cache { path: dir.clone(), error })?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ComponentCache { dir, engine_key: format!("{:016x}", hasher.finish()) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compiled form of `bytes`, from the cache when present.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, CacheOutcome), Error> {
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let path = self.dir.join(format!("{hex}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: wasmtime requires that the file was produced by `Component::serialize` of a compatible
            // engine and not tampered with. The file lives in busbar's own cache directory, its name carries the
            // engine's compatibility hash, and it is only ever written below (to a temporary name, then renamed)
            // with this engine's serialization, so a partial or foreign file cannot appear under this name.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            match loaded {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cache entry"),
            }
        }
        let component = Component::new(engine, bytes).map_err(|e| Error::InvalidComponent {
            what: format!("component {hex}"),
            message: format!("{e:#}"),
        })?;
        let serialized = component.serialize()?;
        // Unique per process *and* call: two loads of the same component may race to fill the cache.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.dir.join(format!(".{hex}-{}.{}.{seq}.tmp", self.engine_key, std::process::id()));
        std::fs::write(&tmp, &serialized)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|error| Error::Cache { path: path.clone(), error })?;
        tracing::debug!(path = %path.display(), bytes = serialized.len(), "cached compiled component");
        Ok((component, CacheOutcome::Miss))
    }
}
