//! Users and their passwords (argon2id, default parameters).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shared_wasm::jwt::Role;
use shared_wasm::record::{Entitlement, EntitlementStatus};
use sqlx::AnyPool;

use crate::clock::now;
use crate::db::{enum_name, parse_enum};
use crate::keys::random_bytes;

/// Passwords longer than this are refused before hashing: argon2 cost must not be a lever.
pub const MAX_PASSWORD_LEN: usize = 256;

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Where the user's data lives (`None` for users created before regions).
    pub home_region: Option<String>,
    password_hash: String,
}

/// Hashes off the async runtime (argon2 takes tens of milliseconds by design), one job per
/// core at most.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    crate::passwords::bounded(move || {
        let salt = SaltString::encode_b64(&random_bytes::<16>())
            .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hash: {e}"))
    })
    .await?
}

/// A hash to verify against when the user does not exist, so that an unknown email costs the
/// same time as a wrong password and cannot be told apart by timing.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn verify_password(hash: String, password: String) -> anyhow::Result<bool> {
    crate::passwords::bounded(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

/// Creates a user homed in `region`, or returns the existing one with that email unchanged. The
/// operator makes these accounts (the demo's, the CLI's, the tests'): their addresses count as
/// confirmed.
pub async fn ensure_user(
    db: &AnyPool,
    email: &str,
    password: &str,
    role: Role,
    region: &str,
) -> anyhow::Result<User> {
    if let Some(u) = find_by_email(db, email).await? {
        return Ok(u);
    }
    match create(db, email, password, "", role, region).await? {
        Some(u) => {
            sqlx::query("UPDATE users SET email_confirmed_at = created_at WHERE id = $1")
                .bind(&u.id)
                .execute(db)
                .await?;
            Ok(u)
        }
        // Created by someone else since the lookup.
        None => find_by_email(db, email)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user {email} vanished")),
    }
}

async fn find_by_email(db: &AnyPool, email: &str) -> anyhow::Result<Option<User>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        password_hash: String,
        role: String,
        home_region: Option<String>,
    }
    let row: Option<Row> =
        sqlx::query_as("SELECT id, password_hash, role, home_region FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(db)
            .await?;
    row.map(|r| {
        Ok(User {
            id: r.id,
            role: parse_enum(&r.role)?,
            home_region: r.home_region,
            password_hash: r.password_hash,
        })
    })
    .transpose()
}

/// The user, if `email` and `password` match.
pub async fn authenticate(
    db: &AnyPool,
    email: &str,
    password: &str,
) -> anyhow::Result<Option<User>> {
    let user = find_by_email(db, email).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => match DUMMY_HASH.get() {
            Some(h) => h.clone(),
            None => {
                let h = hash_password("not-a-real-password".into()).await?;
                DUMMY_HASH.get_or_init(|| h).clone()
            }
        },
    };
    let ok = verify_password(hash, password.to_owned()).await?;
    Ok(user.filter(|_| ok))
}

/// Creates a user; `None` when the email is taken (the insert and the check are one statement,
/// so two signups racing for one address cannot both succeed).
pub async fn create(
    db: &AnyPool,
    email: &str,
    password: &str,
    display_name: &str,
    role: Role,
    region: &str,
) -> anyhow::Result<Option<User>> {
    let id = format!("u_{}", URL_SAFE_NO_PAD.encode(random_bytes::<9>()));
    let hash = hash_password(password.to_owned()).await?;
    let row: Option<String> = sqlx::query_scalar(
        "INSERT INTO users (id, email, password_hash, role, created_at, home_region, display_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(&id)
    .bind(email)
    .bind(&hash)
    .bind(enum_name(role))
    .bind(now() as i64)
    .bind(region)
    .bind(display_name)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|id| User {
        id,
        role,
        home_region: Some(region.to_owned()),
        password_hash: hash,
    }))
}

/// Whether `password` is the password of user `id` (false for an unknown id).
pub async fn verify_by_id(db: &AnyPool, id: &str, password: &str) -> anyhow::Result<bool> {
    let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    match hash {
        Some(h) => verify_password(h, password.to_owned()).await,
        None => Ok(false),
    }
}

/// What a user sees of their own account.
#[derive(Debug, sqlx::FromRow)]
pub struct Account {
    /// Login address.
    pub email: String,
    /// Role, as stored.
    pub role: String,
    /// Where the user's data lives.
    pub home_region: Option<String>,
    /// The name others see.
    pub display_name: String,
    /// When the user confirmed the address (a link sent to it, followed).
    pub email_confirmed_at: Option<i64>,
}

/// The account of user `id`, if there is one.
pub async fn account(db: &AnyPool, id: &str) -> sqlx::Result<Option<Account>> {
    sqlx::query_as(
        "SELECT email, role, home_region, display_name, email_confirmed_at FROM users WHERE id = $1",
    )
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Renames user `id` (the name checked by the caller).
pub async fn set_display_name(db: &AnyPool, id: &str, name: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
        .bind(name)
        .bind(id)
        .execute(db)
        .await
        .map(drop)
}

/// Sets a new password and, in the same transaction, logs the user out everywhere. The caller
/// wakes the outbox.
pub async fn set_password(db: &AnyPool, id: &str, password: String) -> anyhow::Result<()> {
    let hash = hash_password(password).await?;
    let mut tx = crate::db::begin_write(db).await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    crate::sessions::revoke_user(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Gives user `id` a role and refuses every token issued so far (they carry the old role), in
/// one transaction. False if there is no such user. The caller wakes the outbox.
pub async fn set_role(db: &AnyPool, id: &str, role: Role) -> sqlx::Result<bool> {
    let mut tx = crate::db::begin_write(db).await?;
    let done = sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(enum_name(role))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    crate::sessions::revoke_user(&mut tx, id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Logs user `id` out everywhere. False if there is no such user. The caller wakes the outbox.
pub async fn revoke(db: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let mut tx = crate::db::begin_write(db).await?;
    if !crate::sessions::revoke_user(&mut tx, id).await? {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Deletes user `id`: sessions and entitlement end (the edge is told: tokens refused,
/// entitlement inactive), the user's videos stay but lose their owner and channel, and the
/// email and password are gone; all in one transaction. The caller wakes the outbox.
pub async fn delete(db: &AnyPool, id: &str) -> anyhow::Result<()> {
    let mut tx = crate::db::begin_write(db).await?;
    crate::sessions::revoke_user(&mut tx, id).await?;
    if let Some(ent) = crate::entitlements::record(&mut *tx, id).await? {
        let ended = Entitlement {
            status: EntitlementStatus::Inactive,
            version: ent.version + 1,
            ..ent
        };
        crate::outbox::enqueue(&mut tx, &ended).await?;
    }
    // Sessions, the entitlement row and the channels cascade; videos keep playing without an
    // owner or a channel, so the channels' feeds empty.
    let channels: Vec<String> = sqlx::query_scalar("SELECT id FROM channels WHERE owner_id = $1")
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let feeds: Vec<String> = channels.iter().map(|c| format!("channel:{c}")).collect();
    crate::feeds::bump(&mut tx, &feeds).await?;
    tx.commit().await?;
    Ok(())
}

/// A user as an admin finds them.
#[derive(Debug, serde::Serialize, sqlx::FromRow)]
pub struct Found {
    /// Id.
    pub id: String,
    /// Login address.
    pub email: String,
    /// Role, as stored.
    pub role: String,
    /// Public name (may be empty).
    pub display_name: String,
    /// Where the user's data lives.
    pub home_region: Option<String>,
    /// Signup time, Unix seconds.
    pub created_at: i64,
}

/// `s` as a `LIKE` pattern that matches it literally (`\` escapes).
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The user whose id is `q`, then users whose email contains `q` (emails are stored lowercase),
/// by email; at most `limit`. A scan of the users' emails: an admin's lookup, bounded by
/// `limit` and by the edge's rate limit, not a public search.
pub async fn search(db: &AnyPool, q: &str, limit: u32) -> sqlx::Result<Vec<Found>> {
    let pattern = format!("%{}%", like_literal(&q.to_ascii_lowercase()));
    sqlx::query_as(
        "SELECT id, email, role, display_name, home_region, created_at FROM users
         WHERE id = $1 OR email LIKE $2 ESCAPE '\\'
         ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END, email LIMIT $3",
    )
    .bind(q)
    .bind(pattern)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_literal("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(like_literal("plain@example.com"), "plain@example.com");
    }
}
