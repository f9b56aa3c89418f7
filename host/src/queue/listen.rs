//! PostgreSQL notifications a node listens to: `wasmail_jobs` (a job was queued or is ready again:
//! wake this node's workers now instead of at their next poll) and `wasmail_tenants` (a tenant's
//! lookup changed on some node: forget this node's cached copy). SQLite has no such channel: its
//! workers poll, and its tenant cache ages out quickly (see `store::cache`).

use super::Runner;
use crate::store::{JOBS_CHANNEL, Store, TENANTS_CHANNEL};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::watch;

/// Listens until `stop` turns true; returns at once on SQLite.
pub async fn run(store: Store, runner: Runner, mut stop: watch::Receiver<bool>) {
    loop {
        let pool = match store.pg_dedicated().await {
            None => return,
            Some(Ok(pool)) => pool,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot connect to listen for notifications; retrying");
                if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for notifications; retrying");
                if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen_all([JOBS_CHANNEL, TENANTS_CHANNEL]).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        // Whatever changed while this node was not listening is unknown: start from nothing.
        store.forget_tenants();
        runner.wake();
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                next = listener.try_recv() => match next {
                    Ok(Some(notification)) => match notification.channel() {
                        JOBS_CHANNEL => runner.wake(),
                        TENANTS_CHANNEL => store.tenant_changed(notification.payload()),
                        _ => {}
                    },
                    // The connection dropped (sqlx reconnects at the next call, re-listening):
                    // notifications may have been missed meanwhile.
                    Ok(None) => {
                        store.forget_tenants();
                        runner.wake();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "notification listener failed; reconnecting");
                        break;
                    }
                },
            }
        }
        if wait_or_stop(&mut stop, Duration::from_millis(200)).await {
            return;
        }
    }
}

/// Waits `pause`; `true` if the node is stopping.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(pause) => false,
    }
}
