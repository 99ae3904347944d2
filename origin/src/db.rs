//! How enums are stored in text columns: the same lower-case names they have in JSON and CBOR
//! (`"members"`, `"creator"`), so the database, the API and the KV records agree.
//! Also: connecting to SQLite or PostgreSQL, and the transactions that feed the edge outbox.

use std::str::FromStr;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};

/// The stored name of a unit enum value.
pub fn enum_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("unit enum serializes to a string")
}

/// A unit enum value from its stored name.
pub fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| anyhow::anyhow!("unexpected value {s:?} in the database"))
}

/// Serializes a 0/1 column as a JSON boolean.
pub fn flag<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

/// Which SQL server holds the data: the queries are written once, in the dialect both share
/// (`$N` parameters, `ON CONFLICT`, `RETURNING`), and only the schema files differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one writer at a time.
    Sqlite,
    /// For deployments that outgrow one machine.
    Postgres,
}

impl Backend {
    /// The backend a `database.url` names.
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("database.url must start with sqlite: or postgres://")
        }
    }

    /// The backend behind a connection.
    pub(crate) fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name() == "PostgreSQL" {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// Every connection's settings.
async fn prepare(conn: &mut AnyConnection, backend: Backend) -> sqlx::Result<()> {
    if backend == Backend::Sqlite {
        // Readers never wait for the writer, and references are enforced.
        conn.execute(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .await?;
    }
    Ok(())
}

/// Opens (creating a SQLite file if needed) the database and runs its migrations.
pub async fn connect(url: &str) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    let mut url = url.to_owned();
    if backend == Backend::Sqlite {
        let opts = SqliteConnectOptions::from_str(&url).context("database.url")?;
        if let Some(parent) = opts.get_filename().parent() {
            std::fs::create_dir_all(parent).ok();
        }
        if !url.contains("mode=") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("mode=rwc");
        }
    }
    // Migrations on connections of their own, closed before the pool opens: a migration may
    // change a table's definition under SQLite's feet (0022), and a connection that ran it
    // keeps the old one, so on SQLite each migration gets a fresh connection (a later
    // `ALTER TABLE` on the old definition would write a broken one).
    {
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        let steps: Vec<i64> = match backend {
            Backend::Sqlite => migrator.iter().map(|m| m.version).collect(),
            Backend::Postgres => migrator
                .iter()
                .map(|m| m.version)
                .max()
                .into_iter()
                .collect(),
        };
        for up_to in steps {
            let mut conn = AnyConnection::connect(&url)
                .await
                .context("opening the database")?;
            prepare(&mut conn, backend).await?;
            let step = sqlx::migrate::Migrator {
                migrations: std::borrow::Cow::Owned(
                    migrator
                        .iter()
                        .filter(|m| m.version <= up_to)
                        .cloned()
                        .collect(),
                ),
                // Those past `up_to`, applied on an earlier start, are not missing.
                ignore_missing: true,
                ..sqlx::migrate::Migrator::DEFAULT
            };
            step.run(&mut conn).await.context("running migrations")?;
            conn.close().await?;
        }
        let mut conn = AnyConnection::connect(&url)
            .await
            .context("opening the database")?;
        if backend == Backend::Sqlite {
            // 0022 edits `users`' stored definition by text: had the text not matched (a
            // database whose schema was changed by hand), it would have done nothing.
            let users: String = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'",
            )
            .fetch_one(&mut conn)
            .await?;
            anyhow::ensure!(
                users.contains("'moderator'"),
                "the users table's role check lacks 'moderator' after migration 0022: \
                 its stored definition differs from the one the migration expects"
            );
        }
        conn.close().await?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(move |conn, _| Box::pin(async move { prepare(conn, backend).await }))
        .connect(&url)
        .await
        .context("opening the database")?;
    Ok(pool)
}

/// Any constant: the key of the advisory lock that orders outbox writers on PostgreSQL.
const OUTBOX_LOCK: i64 = 0x6564_6765_5f6f_7574; // "edge_out"

/// A transaction that may queue records for the edge ([`crate::outbox::enqueue`] takes only
/// this). The outbox's `seq` must be in commit order, or a pusher could pass a row whose
/// transaction has yet to commit and never send it. SQLite has one writer at a time, so it
/// is (and these start IMMEDIATE); on PostgreSQL every such transaction takes one advisory lock as its first statement, so
/// they commit one after another (before any row lock, so the lock cannot deadlock with them).
/// Writes the edge never hears of (comments, reactions) do not take it.
pub struct WriteTx(Transaction<'static, Any>);

/// Starts a [`WriteTx`].
pub async fn begin_write(db: &AnyPool) -> sqlx::Result<WriteTx> {
    begin_serial(db, OUTBOX_LOCK).await.map(WriteTx)
}

/// A transaction that no other holding `lock` runs beside: on PostgreSQL the advisory lock
/// `lock`, taken first; SQLite has one writer at a time, and this one holds it from the start.
pub async fn begin_serial(db: &AnyPool, lock: i64) -> sqlx::Result<Transaction<'static, Any>> {
    let conn = db.acquire().await?;
    if Backend::of(&conn) == Backend::Postgres {
        let mut tx = Transaction::begin(conn, None).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    } else {
        // IMMEDIATE: the write lock at once (waiting up to the busy timeout), since a deferred
        // transaction that reads first cannot upgrade while another writer holds it (SQLite
        // answers "database is locked" at once, whatever the timeout).
        Transaction::begin(conn, Some("BEGIN IMMEDIATE".into())).await
    }
}

impl WriteTx {
    /// Commits.
    pub async fn commit(self) -> sqlx::Result<()> {
        self.0.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.0
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    /// The two schema folders are one history in two dialects: the same versions, same names.
    #[test]
    fn both_backends_have_the_same_migrations() {
        let names = |m: sqlx::migrate::Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        let sqlite = names(sqlx::migrate!("./migrations/sqlite"));
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names(sqlx::migrate!("./migrations/postgres")));
    }
}
