//! Test databases: the suites run on SQLite, or on PostgreSQL when `WASMAIL_TEST_DATABASE` names a
//! server (`postgres://postgres@127.0.0.1:5432/postgres`, a user that may create databases). Each
//! test then gets a database of its own, created here and dropped when the guard goes.
//! Not part of wasmail's API: the unit and integration tests share it.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The variable that selects PostgreSQL for the tests.
pub const TEST_DATABASE_ENV: &str = "WASMAIL_TEST_DATABASE";

/// A PostgreSQL database made for one test; dropped (connections and all) with the guard.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL, for `DATABASE_URL`.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh database on the server `WASMAIL_TEST_DATABASE` names, or `None` (test on SQLite).
    /// Blocking (a thread of its own), so it serves synchronous and asynchronous tests alike.
    pub fn create() -> Option<Self> {
        let admin_url = std::env::var(TEST_DATABASE_ENV).ok()?;
        let name = format!("wasmail_test_{}", uuid::Uuid::now_v7().simple());
        let url = with_database(&admin_url, &name);
        let db = Self {
            url,
            admin_url,
            name,
        };
        let sql = format!("CREATE DATABASE {}", db.name);
        db.admin(&sql)
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_ENV}: cannot create a test database: {e}"));
        Some(db)
    }

    /// Runs one statement on the server's admin database, on a thread with its own runtime.
    fn admin(&self, sql: &str) -> Result<(), sqlx::Error> {
        let (url, sql) = (self.admin_url.clone(), sql.to_string());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(sqlx::Error::Io)?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                sqlx::query(&sql).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join()
        .unwrap_or_else(|_| Err(sqlx::Error::PoolClosed))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE: a server process the test started may still hold connections.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = self.admin(&sql) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A migrated store for a test: on `db` when the suite runs on PostgreSQL, else on SQLite under
/// `dir`. Another call with the same arguments opens the same database (another process's view).
pub async fn open_store(dir: &std::path::Path, db: Option<&TestDatabase>) -> super::Store {
    let store = super::Store::connect(db.map(|d| d.url.as_str()), dir)
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrate the test database");
    store
}

/// `url` with its database (path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
    }
}
