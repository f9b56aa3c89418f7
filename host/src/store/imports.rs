//! Group commit of imports: concurrent imports share one write transaction instead of taking one
//! each. A transaction's fixed costs — the write lock, and on SQLite the full-text index's flush of
//! a new segment at every commit (on PostgreSQL the WAL flush) — are then paid once per batch.
//!
//! A committer takes the imports queued meanwhile (up to [`MAX_BATCH`] messages or
//! [`MAX_BATCH_BYTES`]) and stores each under a savepoint, so a message that fails rolls back alone
//! and answers its own error; the rest commit together. Nothing waits on purpose: a batch is what
//! queued while the previous one committed, so a lone import commits at once. Each importer gets
//! its answer only after the commit: an import that answered is durable, with its on-import runs.
//!
//! SQLite has one committer (one writer at a time anyway); PostgreSQL has [`PG_COMMITTERS`], each
//! with its own connection, so one batch waiting on a lock does not hold up every import. A batch
//! is sorted by tenant: two batches lock their tenants' open import runs in the same order, and
//! cannot deadlock each other; a message that still loses a deadlock is stored again alone.

use super::messages::store_message;
use super::{MessageRow, NewMessage, Result, Store, StoreError, WriteTx, on_tx};
use crate::domain::TenantId;
use tokio::sync::{mpsc, oneshot};

/// Messages per transaction at most.
const MAX_BATCH: usize = 64;
/// Raw bytes per transaction at most (one large message still goes alone).
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Batches committing at once on PostgreSQL.
const PG_COMMITTERS: usize = 4;

type Stored = Result<(MessageRow, Vec<String>)>;

struct Request {
    tenant: TenantId,
    message: NewMessage,
    /// The importing store's setting (see `Store::with_run_attempts`).
    run_attempts: i64,
    reply: oneshot::Sender<Stored>,
}

/// The importers' side: queue a message, wait for its commit.
#[derive(Debug, Clone)]
pub(crate) struct Imports {
    queue: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Imports {
    /// Starts the committing task over `store` (a store without imports of its own: it commits
    /// directly). The task ends when every `Imports` is gone.
    pub(crate) fn start(store: Store) -> Self {
        let (queue, requests) = mpsc::channel(MAX_BATCH * 4);
        let requests = std::sync::Arc::new(tokio::sync::Mutex::new(requests));
        let committers = match store.backend() {
            super::Backend::Sqlite => 1,
            super::Backend::Postgres => PG_COMMITTERS,
        };
        for _ in 0..committers {
            tokio::spawn(commit_loop(store.clone(), requests.clone()));
        }
        Self { queue }
    }

    pub(crate) async fn insert(
        &self,
        tenant: &TenantId,
        message: NewMessage,
        run_attempts: i64,
    ) -> Stored {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            tenant: tenant.clone(),
            message,
            run_attempts,
            reply,
        };
        // Either side gone means the committers stopped: the store is closing.
        self.queue
            .send(request)
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn commit_loop(
    store: Store,
    requests: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Request>>>,
) {
    loop {
        // The queue is held only while a batch is taken, not while it commits.
        let batch = {
            let mut requests = requests.lock().await;
            let Some(first) = requests.recv().await else {
                return;
            };
            let mut bytes = first.message.raw.len();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match requests.try_recv() {
                    Ok(next) => {
                        bytes += next.message.raw.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        commit_batch(&store, batch).await;
    }
}

/// Stores a batch in one transaction. If the transaction fails before its commit, nothing of it
/// was written, and each message is stored again alone, so every importer gets its own answer. If
/// the commit itself fails, whether it took effect is unknown: every importer of the batch gets the
/// error (storing the messages again could store them twice).
async fn commit_batch(store: &Store, mut batch: Vec<Request>) {
    if batch.len() == 1 {
        for request in batch {
            let stored = alone(store, &request).await;
            let _ = request.reply.send(stored);
        }
        return;
    }
    batch.sort_by(|a, b| a.tenant.as_str().cmp(b.tenant.as_str()));
    let mut tx = match store.write_tx().await {
        Ok(tx) => tx,
        Err(e) => return one_by_one(store, batch, &e).await,
    };
    let mut results = Vec::with_capacity(batch.len());
    for request in &batch {
        match store_in_savepoint(&mut tx, request).await {
            Ok(stored) => results.push(stored),
            Err(e) => {
                drop(tx);
                return one_by_one(store, batch, &e).await;
            }
        }
    }
    if let Err(e) = tx.commit().await {
        tracing::error!(error = %e, messages = batch.len(), "a batch of imports failed to commit");
        for request in batch {
            let failed = StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
                "the import's transaction failed to commit: {e}"
            ))));
            let _ = request.reply.send(Err(failed));
        }
        return;
    }
    for (request, stored) in batch.into_iter().zip(results) {
        // Lost to a deadlock or a serialization failure: nothing of it was written; alone, it
        // has nothing to collide with in its own batch.
        let stored = match stored {
            Err(e) if retry_alone(&e) => alone(store, &request).await,
            other => other,
        };
        let _ = request.reply.send(stored);
    }
}

/// Stores every message of a batch that did not happen, each in its own transaction.
async fn one_by_one(store: &Store, batch: Vec<Request>, why: &StoreError) {
    tracing::warn!(error = %why, messages = batch.len(), "a batch of imports failed; storing them one by one");
    for request in batch {
        let stored = alone(store, &request).await;
        let _ = request.reply.send(stored);
    }
}

/// A PostgreSQL deadlock or serialization failure: worth one more try.
fn retry_alone(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// One message under a savepoint: its failure undoes only itself (`Ok(Err(..))`); a failure to
/// manage the savepoint fails the batch (`Err`).
async fn store_in_savepoint(tx: &mut WriteTx, request: &Request) -> Result<Stored> {
    on_tx!(tx, |c| {
        sqlx::query("SAVEPOINT import").execute(&mut *c).await?;
    });
    match store_message(tx, &request.tenant, &request.message, request.run_attempts).await {
        Ok(stored) => {
            on_tx!(tx, |c| {
                sqlx::query("RELEASE SAVEPOINT import")
                    .execute(&mut *c)
                    .await?;
            });
            Ok(Ok(stored))
        }
        Err(e) => {
            on_tx!(tx, |c| {
                sqlx::query("ROLLBACK TO SAVEPOINT import")
                    .execute(&mut *c)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT import")
                    .execute(&mut *c)
                    .await?;
            });
            Ok(Err(e))
        }
    }
}

/// One message in a transaction of its own.
async fn alone(store: &Store, request: &Request) -> Stored {
    let mut tx = store.write_tx().await?;
    let stored = store_message(
        &mut tx,
        &request.tenant,
        &request.message,
        request.run_attempts,
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageFilter;
    use crate::store::testing::TestDatabase;
    use crate::store::{Backend, MessageFacts};

    fn message(n: usize) -> NewMessage {
        NewMessage {
            raw: format!("Subject: m{n}\r\n\r\nbody {n}\r\n").into_bytes(),
            folder: "INBOX".into(),
            flags: vec![],
            tags: vec![],
            facts: MessageFacts {
                subject: Some(format!("m{n}")),
                size: 20,
                sha256: format!("{n:064}"),
                parsed: true,
                ..MessageFacts::default()
            },
            body_text: format!("body {n}"),
        }
    }

    /// Concurrent imports commit together; on PostgreSQL, where a message of an unknown tenant
    /// breaks a foreign key, that message fails alone and the rest of its batch is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_message_rolls_back_alone_and_the_batch_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let db = TestDatabase::create();
        let store = crate::store::testing::open_store(dir.path(), db.as_ref()).await;
        let tenant = store
            .create_tenant("acme", &Default::default())
            .await
            .expect("tenant")
            .id;
        let ghost = TenantId::new("ghost");
        let imports = (0..48).map(|n| {
            let (store, t) = (
                store.clone(),
                if n % 6 == 5 {
                    ghost.clone()
                } else {
                    tenant.clone()
                },
            );
            tokio::spawn(async move { (n, store.insert_message(&t, message(n)).await) })
        });
        let mut stored = 0;
        for done in futures_util::future::join_all(imports).await {
            let (n, result) = done.expect("task");
            match (n % 6 == 5, store.backend(), result) {
                (true, Backend::Postgres, Err(StoreError::Database(_))) => {}
                (true, Backend::Postgres, other) => panic!("m{n} of no tenant: {other:?}"),
                (_, _, Ok(_)) => stored += usize::from(n % 6 != 5),
                (_, _, Err(e)) => panic!("m{n}: {e}"),
            }
        }
        assert_eq!(stored, 40);
        let ids = store
            .message_ids(&tenant, &MessageFilter::default())
            .await
            .expect("ids");
        assert_eq!(ids.len(), 40, "every message of the tenant, once");
    }
}
