//! Storage: every SQL statement of wasmail lives under this module.
//!
//! One `sqlx::AnyPool` serves SQLite (the embedded default, a file under the data dir) and, in a later
//! step, PostgreSQL, chosen by `DATABASE_URL`. Statements are written once in SQL both accept (`$1`
//! placeholders, BIGINT times in Unix milliseconds, TEXT ids and JSON); what must differ (the full-text
//! index) is chosen by [`Backend`]. Every tenant-owned row carries `tenant_id` and every statement
//! filters by it: a resource of another tenant is simply not found.
//!
//! The types stored here that every layer shares (tenant ids, stages, envelopes, statuses,
//! selections) are the [`crate::domain`]'s; the row types (`*Row`) are what the store reads back.

mod envelope;
mod jobs;
mod messages;
mod nodes;
mod pipelines;
mod plugins;
mod runs;
mod selection;
mod settings;
mod tenants;
mod tokens;

pub use crate::domain::JobState;
pub use jobs::{ClaimPolicy, Claimed, JobFilter, JobRow, Lease, NewJob};
pub use messages::{MessageFacts, MessageRow, NewMessage};
pub use nodes::NodeRow;
pub use pipelines::PipelineRow;
pub use plugins::{PluginRow, PluginVersionRow};
pub use runs::{DoneItem, RUN_JOB, RunItemRow, RunRow, WorkItem};
pub use selection::TRASH;
pub use tenants::TenantRow;
pub use tokens::{TokenCheck, TokenRow};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row (for this tenant).
    #[error("not found")]
    NotFound,
    /// The change conflicts with what is stored (a unique name, a version in use).
    #[error("{0}")]
    Conflict(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (JSON of an older or damaged row).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// A job's holder wrote after losing its lease (it expired and another node took the job, or
    /// the job was cancelled or deleted): nothing was written.
    #[error("the job's lease was lost")]
    LeaseLost,
    /// The database URL names something this build cannot use.
    #[error("{0}")]
    Unsupported(String),
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
}

/// The database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; writers queue here instead of in SQLite's busy handler,
    /// which sleeps with backoff (up to 100 ms a try) and made concurrent imports crawl.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Attempts a run's job gets before it is dead (see [`Store::with_run_attempts`]).
    run_attempts: i64,
}

/// A write transaction; on SQLite it also holds this process's writer turn. Derefs to the
/// connection, so statements take `&mut *tx`.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits (and gives up the writer turn).
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Attempts a run's job gets unless configured otherwise.
pub const DEFAULT_RUN_ATTEMPTS: i64 = 10;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

impl Store {
    /// Connects to `url`, or to SQLite at `<data_dir>/wasmail.db` when `url` is `None`.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = match url {
            Some(url) => url.to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("wasmail.db").display()
            ),
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Err(StoreError::Unsupported(
                "PostgreSQL is not supported by this version yet; unset DATABASE_URL to use SQLite"
                    .into(),
            ));
        } else {
            return Err(StoreError::Unsupported(format!(
                "DATABASE_URL must start with sqlite: (got {})",
                url.split(':').next().unwrap_or_default()
            )));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers go on while a writer commits; the busy timeout makes a writer
                    // wait its turn instead of failing; NORMAL sync is durable across process crashes.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            backend,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            run_attempts: DEFAULT_RUN_ATTEMPTS,
        })
    }

    /// Sets how many attempts in a row the job of a run made from now on may fail (a node dying
    /// with it counts as one) before it is dead.
    pub fn with_run_attempts(mut self, attempts: i64) -> Self {
        self.run_attempts = attempts.max(1);
        self
    }

    /// Applies the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs one writing statement in its own write transaction (so it takes its turn like the rest).
    pub(crate) async fn write_one<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult> {
        let mut tx = self.write_tx().await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// A transaction that writes. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first and writes later cannot wait for the lock (its
    /// snapshot may be stale) and fails with "database is locked" under concurrent writers.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.writer.clone().lock_owned().await;
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
        })
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Reads a JSON column, or says which row holds damaged data.
fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Writes a JSON column.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data (strings, numbers, vectors) cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
