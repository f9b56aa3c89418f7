//! The server's configuration: defaults, then an optional TOML file, then `WASMAIL_*` environment
//! variables (and `DATABASE_URL`), then command-line flags. Unknown keys are errors, so a typo in a
//! file or a variable name is reported instead of silently ignored.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `wasmail serve` needs. Secrets never print (`SecretString`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on (`WASMAIL_LISTEN`). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the SQLite database, the signing key and the compiled-plugin cache live
    /// (`WASMAIL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The database (`DATABASE_URL`); unset means SQLite at `<data_dir>/wasmail.db`.
    pub database_url: Option<SecretString>,
    /// Connections this node keeps to PostgreSQL at most (`WASMAIL_DB_POOL`). Every node of a
    /// cluster holds up to this many, plus one listening for notifications: keep
    /// `nodes x (db_pool + 1)` under the server's `max_connections` (100 by default). SQLite uses
    /// 8 whatever this says (one writer at a time; readers in WAL).
    pub db_pool: u32,
    /// The admin token (`WASMAIL_ADMIN_TOKEN`). Unset on a fresh data dir: one is generated, printed
    /// once, and only its hash is kept.
    pub admin_token: Option<SecretString>,
    /// Key that signs tenant tokens (`WASMAIL_JWT_SECRET`, at least 32 bytes). Unset: generated into
    /// `<data_dir>/jwt.key`.
    pub jwt_secret: Option<SecretString>,
    /// Largest message `POST /v1/messages` accepts, in bytes.
    pub max_message_bytes: usize,
    /// Largest JSON request body any endpoint accepts, in bytes (a dry run, which carries a
    /// message, gets 4/3 of `max_message_bytes` on top; uploads have the tenant's own limit).
    pub max_json_bytes: usize,
    /// Jobs (pipeline runs, ...) this node executes at once.
    pub run_workers: usize,
    /// Whether `wasmail serve` also executes jobs (`wasmail worker` always does, and serves no
    /// HTTP). Turn it off for API-only nodes.
    pub worker: bool,
    /// How long a node's lease on a job lasts, in ms; heartbeats renew it every third of that. A job
    /// whose node died is taken over by another node once its lease runs out.
    pub job_lease_ms: u64,
    /// How often an idle worker looks at the queue without being woken, in ms (jobs queued by
    /// this process wake its workers at once; other nodes' find them at their next look).
    pub job_poll_ms: u64,
    /// Most jobs one tenant may have running at once, all nodes together.
    pub jobs_per_tenant: usize,
    /// Attempts in a row a run's job may fail (a node dying during it counts) before it is dead.
    pub job_max_attempts: u32,
    /// The first retry delay of a failed job, in ms; each next one doubles (with jitter), up to
    /// `job_backoff_max_ms`.
    pub job_backoff_ms: u64,
    /// The longest retry delay, in ms.
    pub job_backoff_max_ms: u64,
    /// How long completed and cancelled jobs, and nodes no longer heard from, are kept, in hours
    /// (dead jobs are kept until retried or cancelled).
    pub job_retention_hours: u64,
    /// Messages of one run processed at once.
    pub run_batch: usize,
    /// How long shutdown waits for in-flight requests and run batches, in seconds.
    pub shutdown_grace_secs: u64,
    /// Default lifetime of a tenant token, in seconds.
    pub token_ttl_secs: u64,
    /// Bytes the on-disk cache of compiled plugins (uploaded components and prepared stages) may
    /// hold, all tenants together; least recently used artifacts are evicted, a tenant over its
    /// share (`budget / tenants holding artifacts`) first. 0 caches nothing.
    pub artifact_cache_bytes: u64,
    /// Bytes of memory prepared pipeline stages may hold, all tenants together, evicted the same way.
    pub stage_cache_bytes: u64,
    /// Bytes of memory for plugins prepared by dry runs with a configuration no pipeline uses (they
    /// are never written to disk), all tenants together.
    pub trial_cache_bytes: u64,
    /// Plugin compiles running at once, all tenants together (each takes one core); unset: half
    /// the cores, at least one.
    pub max_concurrent_compiles: Option<usize>,
    /// Plugin compiles of one tenant running at once.
    pub max_concurrent_compiles_per_tenant: usize,
    /// The executable plugin compiles run in (`<exe> compile-worker`); unset: this binary.
    pub compiler_exe: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            db_pool: crate::store::DEFAULT_PG_POOL,
            admin_token: None,
            jwt_secret: None,
            max_message_bytes: 64 << 20,
            max_json_bytes: 1 << 20,
            run_workers: 2,
            worker: true,
            job_lease_ms: 30_000,
            job_poll_ms: 2_000,
            jobs_per_tenant: 2,
            job_max_attempts: 10,
            job_backoff_ms: 1_000,
            job_backoff_max_ms: 600_000,
            job_retention_hours: 7 * 24,
            run_batch: 32,
            shutdown_grace_secs: 30,
            token_ttl_secs: 30 * 24 * 3600,
            artifact_cache_bytes: 1 << 30,
            stage_cache_bytes: 512 << 20,
            trial_cache_bytes: 64 << 20,
            max_concurrent_compiles: None,
            max_concurrent_compiles_per_tenant: 1,
            compiler_exe: None,
        }
    }
}

/// Keys that may come from `WASMAIL_<KEY>` variables. Other `WASMAIL_*` variables (`WASMAIL_LOG`,
/// `WASMAIL_CACHE_DIR`) belong to other parts and are not configuration keys.
const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "db_pool",
    "admin_token",
    "jwt_secret",
    "max_message_bytes",
    "max_json_bytes",
    "run_workers",
    "worker",
    "job_lease_ms",
    "job_poll_ms",
    "jobs_per_tenant",
    "job_max_attempts",
    "job_backoff_ms",
    "job_backoff_max_ms",
    "job_retention_hours",
    "run_batch",
    "shutdown_grace_secs",
    "token_ttl_secs",
    "artifact_cache_bytes",
    "stage_cache_bytes",
    "trial_cache_bytes",
    "max_concurrent_compiles",
    "max_concurrent_compiles_per_tenant",
];

/// `WASMAIL_*` variables that other parts read (logging, the CLI's plugin cache, profiling, the test
/// suite's golden files and database, the config file's path).
const OTHER_VARIABLES: &[&str] = &[
    "LOG",
    "CACHE_DIR",
    "PERF_MAP",
    "BLESS",
    "TEST_DATABASE",
    "CONFIG",
];

/// The first `WASMAIL_*` variable name that is neither a configuration key nor used elsewhere: a
/// typo (`WASMAIL_LISTN`) that would otherwise be silently ignored.
fn unknown_variable(names: impl IntoIterator<Item = String>) -> Option<String> {
    names.into_iter().find(|name| {
        name.strip_prefix("WASMAIL_").is_some_and(|key| {
            let key = key.to_ascii_lowercase();
            !ENV_KEYS.contains(&key.as_str())
                && !OTHER_VARIABLES.iter().any(|o| o.eq_ignore_ascii_case(&key))
        })
    })
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads the layers: `file` (if any), the environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        if let Some(name) =
            unknown_variable(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()))
        {
            return Err(ConfigError(format!(
                "unknown environment variable {name}; configuration variables are WASMAIL_{}",
                ENV_KEYS.join(", WASMAIL_").to_uppercase()
            )));
        }
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "{} is not a readable file",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Self = figment
            .merge(Env::prefixed("WASMAIL_").only(ENV_KEYS))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.run_workers == 0 || self.run_batch == 0 {
            return Err(ConfigError(
                "run_workers and run_batch must be at least 1".into(),
            ));
        }
        if self.job_lease_ms < 300 || self.job_poll_ms == 0 {
            return Err(ConfigError(
                "job_lease_ms must be at least 300 and job_poll_ms at least 1".into(),
            ));
        }
        if self.jobs_per_tenant == 0 || self.job_max_attempts == 0 || self.job_retention_hours == 0
        {
            return Err(ConfigError(
                "jobs_per_tenant, job_max_attempts and job_retention_hours must be at least 1"
                    .into(),
            ));
        }
        if self.max_concurrent_compiles == Some(0) || self.max_concurrent_compiles_per_tenant == 0 {
            return Err(ConfigError(
                "max_concurrent_compiles and max_concurrent_compiles_per_tenant must be at least 1"
                    .into(),
            ));
        }
        if self.db_pool < 2 {
            return Err(ConfigError(
                "db_pool must be at least 2 (a claim and a commit may need one each)".into(),
            ));
        }
        if self.max_message_bytes == 0 {
            return Err(ConfigError("max_message_bytes must be at least 1".into()));
        }
        if self.max_json_bytes < 1024 {
            return Err(ConfigError("max_json_bytes must be at least 1024".into()));
        }
        Ok(())
    }

    /// How this node runs the queue.
    pub fn queue_options(&self) -> crate::queue::QueueOptions {
        use std::time::Duration;
        crate::queue::QueueOptions {
            workers: self.run_workers,
            lease: Duration::from_millis(self.job_lease_ms),
            idle_poll: Duration::from_millis(self.job_poll_ms),
            per_tenant: self.jobs_per_tenant,
            backoff_base: Duration::from_millis(self.job_backoff_ms),
            backoff_max: Duration::from_millis(self.job_backoff_max_ms.max(self.job_backoff_ms)),
        }
    }

    /// The directory of compiled-plugin artifacts.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasmail.toml");
        let config: Config = Figment::new()
            .merge(Toml::file_exact(&path))
            .extract()
            .expect("examples/wasmail.toml is a valid configuration");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.run_workers, 2);
        // The example shows every key with its default.
        let defaults = Config::default();
        assert_eq!(config.artifact_cache_bytes, defaults.artifact_cache_bytes);
        assert_eq!(config.stage_cache_bytes, defaults.stage_cache_bytes);
        assert_eq!(config.trial_cache_bytes, defaults.trial_cache_bytes);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Figment::new()
            .merge(Toml::string("listn = \"127.0.0.1:1\""))
            .extract::<Config>()
            .expect_err("a misspelt key is an error");
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn misspelt_variables_are_found_and_known_ones_pass() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            unknown_variable(names(&[
                "PATH",
                "WASMAIL_LISTEN",
                "WASMAIL_LOG",
                "WASMAIL_LISTN"
            ])),
            Some("WASMAIL_LISTN".to_string())
        );
        assert_eq!(
            unknown_variable(names(&[
                "WASMAIL_DATA_DIR",
                "WASMAIL_RUN_BATCH",
                "WASMAIL_CONFIG",
                "HOME"
            ])),
            None
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let config: Config = Figment::new()
            .merge(Toml::string("admin_token = \"very-secret\""))
            .extract()
            .expect("valid");
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
