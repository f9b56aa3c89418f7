//! Storage: every SQL statement of wasmail lives under this module.
//!
//! SQLite (the embedded default, a file under the data dir) or PostgreSQL (production, several
//! nodes), chosen by `DATABASE_URL`. Statements are written once in SQL both accept (`$1`
//! placeholders, BIGINT times in Unix milliseconds, TEXT ids and JSON) and run on each driver's
//! native types: [`on_pool!`] and [`on_tx!`] compile a statement's code once per backend, and
//! [`DbRow`] reads either driver's rows. What must differ (the full-text index, row locks, the
//! queue's `SKIP LOCKED`) is chosen by [`Backend`].
//!
//! Why not `query!` with offline data: a checked macro is bound to one database at compile time, and
//! wasmail runs the same statements on two; the whole integration suite runs on both instead
//! (`.ci/run`), which checks every statement against each real schema. Why not `sqlx::Any`: it
//! copies every column of every row into its own values (see `on_pool!`). Every tenant-owned row carries `tenant_id` and every statement
//! filters by it: a resource of another tenant is simply not found.
//!
//! The types stored here that every layer shares (tenant ids, stages, envelopes, statuses,
//! selections) are the [`crate::domain`]'s; the row types (`*Row`) are what the store reads back.

mod cache;
mod envelope;
mod imports;
mod jobs;
mod messages;
mod nodes;
mod pipelines;
mod plugins;
mod runs;
mod search;
mod selection;
mod settings;
mod tenants;
#[doc(hidden)]
pub mod testing;
mod tokens;

pub use crate::domain::JobState;
pub use cache::TENANTS_CHANNEL;
pub use jobs::{ClaimPolicy, Claimed, JOBS_CHANNEL, JobFilter, JobRow, Lease, NewJob};
pub use messages::{MessageFacts, MessageRow, NewMessage};
pub use nodes::NodeRow;
pub use pipelines::PipelineRow;
pub use plugins::{PluginRow, PluginVersionRow};
pub use runs::{DoneItem, RUN_JOB, RunItemRow, RunRow, WorkItem};
pub use selection::TRASH;
pub use tenants::TenantRow;
pub use tokens::{TokenCheck, TokenRow};

use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Decode, PgConnection, Postgres, Row, Sqlite, SqliteConnection, Type};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Runs `$body` with `$c` bound to the store's pool, once per backend: the body is compiled
/// against each driver's own types (`&SqlitePool`, `&PgPool`), so rows are decoded natively
/// instead of being copied into `Any` values (26% of a list request's time under load did that).
macro_rules! on_pool {
    ($store:expr, |$c:ident| $body:expr) => {
        match $store.pools() {
            $crate::store::Pools::Sqlite($c) => $body,
            $crate::store::Pools::Postgres($c) => $body,
        }
    };
}

/// Like [`on_pool!`], inside a write transaction: `$c` is `&mut SqliteConnection` or
/// `&mut PgConnection` (statements take `&mut *$c`).
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx.conn() {
            $crate::store::TxConn::Sqlite($c) => $body,
            $crate::store::TxConn::Postgres($c) => $body,
        }
    };
}

pub(crate) use {on_pool, on_tx};

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
    /// SQLite, the embedded default: one process writes at a time.
    Sqlite,
    /// PostgreSQL, for several nodes: invariants held by constraints and row locks.
    Postgres,
}

impl Backend {
    /// A row lock for a read that a write in the same transaction depends on (PostgreSQL runs
    /// READ COMMITTED: without it, another node may change the row between the read and the
    /// write). Nothing on SQLite, whose write transaction already excludes every other writer.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The weakest row lock: the row may not go (or change its key) until this transaction ends;
    /// what a foreign key takes on the row it names.
    pub(crate) fn for_key_share(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR KEY SHARE",
        }
    }

    /// A shared row lock: the row may not change or go until this transaction ends, but other
    /// readers may lock it too.
    pub(crate) fn for_share(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR SHARE",
        }
    }
}

/// The pool, per backend.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pools {
    fn backend(&self) -> Backend {
        match self {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pools: Pools,
    /// SQLite has one writer at a time; writers queue here instead of in SQLite's busy handler,
    /// which sleeps with backoff (up to 100 ms a try) and made concurrent imports crawl. Unused on
    /// PostgreSQL, where writers run concurrently and row locks order them.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Attempts a run's job gets before it is dead (see [`Store::with_run_attempts`]).
    run_attempts: i64,
    /// Token checks, so a request costs no query when nothing changed.
    cache: Arc<cache::TenantCache>,
    /// Imports committed together; `None` in the committing task's own store.
    imports: Option<imports::Imports>,
    /// How to reach PostgreSQL outside the pool (the notification listener's own connection).
    pg_options: Option<PgConnectOptions>,
}

/// A write transaction; on SQLite it also holds this process's writer turn.
pub(crate) struct WriteTx {
    tx: Tx,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A write transaction's connection, per backend (see [`on_tx!`]).
pub(crate) enum TxConn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl WriteTx {
    /// Commits (and gives up the writer turn).
    pub(crate) async fn commit(self) -> Result<()> {
        match self.tx {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// The connection, for [`on_tx!`].
    pub(crate) fn conn(&mut self) -> TxConn<'_> {
        match &mut self.tx {
            Tx::Sqlite(tx) => TxConn::Sqlite(tx),
            Tx::Postgres(tx) => TxConn::Postgres(tx),
        }
    }

    /// Which database the transaction runs on (for the SQL that differs).
    pub(crate) fn backend(&self) -> Backend {
        match self.tx {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A value bound to a statement written for both drivers (see [`Store::write`], `Conditions`).
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Binds `args` in order, to a query of either driver.
fn bind_args<'q, DB: sqlx::Database>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + Type<DB>,
    i64: sqlx::Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::Text(s) => query.bind(s),
            Arg::Int(i) => query.bind(i),
        };
    }
    query
}

/// A column type both drivers decode natively.
pub(crate) trait Col:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Col for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// Reads a column of either driver's row, so one row-reading function serves both.
pub(crate) trait DbRow {
    /// The column named `name`.
    fn col<T: Col>(&self, name: &str) -> Result<T>;
    /// The column at `index`.
    fn at<T: Col>(&self, index: usize) -> Result<T>;
}

impl DbRow for sqlx::sqlite::SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        Ok(self.try_get(name)?)
    }
    fn at<T: Col>(&self, index: usize) -> Result<T> {
        Ok(self.try_get(index)?)
    }
}

impl DbRow for sqlx::postgres::PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T> {
        Ok(self.try_get(name)?)
    }
    fn at<T: Col>(&self, index: usize) -> Result<T> {
        Ok(self.try_get(index)?)
    }
}

/// Attempts a run's job gets unless configured otherwise.
pub const DEFAULT_RUN_ATTEMPTS: i64 = 10;

/// Connections per node on PostgreSQL unless the URL says otherwise (`?max_connections=` is not a
/// libpq parameter, so it is `WASMAIL_DB_POOL`): see the README's sizing note.
pub const DEFAULT_PG_POOL: u32 = 16;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Store {
    /// Connects to `url`, or to SQLite at `<data_dir>/wasmail.db` when `url` is `None`.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Self> {
        Self::connect_sized(url, data_dir, DEFAULT_PG_POOL).await
    }

    /// [`Store::connect`] with `pg_pool` connections at most on PostgreSQL.
    pub async fn connect_sized(url: Option<&str>, data_dir: &Path, pg_pool: u32) -> Result<Self> {
        let url = match url {
            Some(url) => url.to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("wasmail.db").display()
            ),
        };
        let mut pg_options = None;
        let pools = if url.starts_with("sqlite:") {
            // WAL lets readers go on while a writer commits; the busy timeout makes a writer
            // wait its turn instead of failing; NORMAL sync is durable across process crashes.
            let options = SqliteConnectOptions::from_str(&url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            Pools::Sqlite(
                PoolOptions::<Sqlite>::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Custom plans only: a plan cached for any tenant and any search cannot tell a tenant of
            // ten messages from one of a million, nor a rare word from a common one, and with the
            // statistics of a table just filled it chose a scan and a sort of every message for a
            // page of 50 (5 ms instead of 0.1). Planning each time costs ~0.2 ms.
            let options = PgConnectOptions::from_str(&url)?
                .application_name("wasmail")
                .options([("plan_cache_mode", "force_custom_plan")]);
            pg_options = Some(options.clone());
            Pools::Postgres(
                PoolOptions::<Postgres>::new()
                    .max_connections(pg_pool.max(2))
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?,
            )
        } else {
            return Err(StoreError::Unsupported(format!(
                "DATABASE_URL must start with sqlite: or postgres: (got {})",
                url.split(':').next().unwrap_or_default()
            )));
        };
        let mut store = Self {
            cache: Arc::new(cache::TenantCache::new(pools.backend())),
            pools,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            run_attempts: DEFAULT_RUN_ATTEMPTS,
            imports: None,
            pg_options,
        };
        store.imports = Some(imports::Imports::start(store.clone()));
        Ok(store)
    }

    /// Sets how many attempts in a row the job of a run made from now on may fail (a node dying
    /// with it counts as one) before it is dead.
    pub fn with_run_attempts(mut self, attempts: i64) -> Self {
        self.run_attempts = attempts.max(1);
        self
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// Applies the migrations that have not run yet (on PostgreSQL, one node at a time: sqlx takes
    /// an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match &self.pools {
            Pools::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pools::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Whether this is PostgreSQL with autovacuum turned off (which keeps planner statistics
    /// fresh: without it a page of 50 was planned as a sort of every message, 50x slower).
    pub async fn autovacuum_off(&self) -> bool {
        let Pools::Postgres(pool) = &self.pools else {
            return false;
        };
        sqlx::query_scalar::<_, String>("SHOW autovacuum")
            .fetch_one(pool)
            .await
            .is_ok_and(|v| v == "off")
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |c| {
            sqlx::query("SELECT 1").execute(c).await?;
        });
        Ok(())
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite(pool) => pool.close().await,
            Pools::Postgres(pool) => pool.close().await,
        }
    }

    /// Forgets the cached lookups of `tenant` (its change was committed, here or on another node).
    pub fn tenant_changed(&self, tenant: &str) {
        self.cache.invalidate(tenant);
    }

    /// Forgets every cached lookup (a change notification may have been missed).
    pub fn forget_tenants(&self) {
        self.cache.clear();
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }

    /// On PostgreSQL, a pool of one connection of its own, outside `db_pool`, for what holds a
    /// connection for good (the notification listener); it reconnects through it.
    pub(crate) async fn pg_dedicated(&self) -> Option<Result<PgPool>> {
        let options = self.pg_options.clone()?;
        Some(
            PoolOptions::<Postgres>::new()
                .max_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
                .connect_with(options)
                .await
                .map_err(StoreError::from),
        )
    }

    /// Runs one writing statement with `args` in its own write transaction (so it takes its turn
    /// like the rest on SQLite); returns the rows it changed.
    pub(crate) async fn write(&self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = on_tx!(tx, |c| {
            bind_args(sqlx::query(sql), args)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(done)
    }

    /// A transaction that writes. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first and writes later cannot wait for the lock (its
    /// snapshot may be stale) and fails with "database is locked" under concurrent writers.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx> {
        Ok(match &self.pools {
            Pools::Sqlite(pool) => {
                let turn = self.writer.clone().lock_owned().await;
                WriteTx {
                    tx: Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
                    _turn: Some(turn),
                }
            }
            Pools::Postgres(pool) => WriteTx {
                tx: Tx::Postgres(pool.begin().await?),
                _turn: None,
            },
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
