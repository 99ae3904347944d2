//! Each user's choice of channels per kind; a kind without a stored choice takes
//! [`Kind::default_channels`].

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::{Channels, Kind};

/// Where `user` wants `kind`.
pub async fn of(conn: &mut AnyConnection, user: &str, kind: Kind) -> sqlx::Result<Channels> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT in_app, email FROM notification_prefs WHERE user_id = $1 AND kind = $2",
    )
    .bind(user)
    .bind(kind.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some((in_app, email)) => Channels {
            in_app: in_app != 0,
            email: email != 0,
        },
        None => kind.default_channels(),
    })
}

/// Every kind's channels for `user`, by kind name.
pub async fn all(
    conn: &mut AnyConnection,
    user: &str,
) -> sqlx::Result<BTreeMap<&'static str, Channels>> {
    let mut out = BTreeMap::new();
    for kind in Kind::ALL {
        out.insert(kind.as_str(), of(conn, user, kind).await?);
    }
    Ok(out)
}

/// Stores `user`'s choice for `kind` (nothing for a user who is gone: an old unsubscribe link).
pub async fn set(
    conn: &mut AnyConnection,
    user: &str,
    kind: Kind,
    channels: Channels,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notification_prefs (user_id, kind, in_app, email)
         SELECT id, $2, $3, $4 FROM users WHERE id = $1
         ON CONFLICT (user_id, kind) DO UPDATE SET in_app = excluded.in_app, email = excluded.email",
    )
    .bind(user)
    .bind(kind.as_str())
    .bind(i64::from(channels.in_app))
    .bind(i64::from(channels.email))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Turns email off for `kinds` (an unsubscribe link), keeping each one's in-app choice; and
/// drops their pending emails, so the next digest does not carry them.
pub async fn stop_email(conn: &mut AnyConnection, user: &str, kinds: &[Kind]) -> sqlx::Result<()> {
    for &kind in kinds {
        // A write first: on SQLite a transaction that reads first cannot take the write lock
        // while another writer holds it.
        sqlx::query(
            "UPDATE notifications SET email = 'none'
             WHERE user_id = $1 AND kind = $2 AND email = 'pending'",
        )
        .bind(user)
        .bind(kind.as_str())
        .execute(&mut *conn)
        .await?;
        let now = of(conn, user, kind).await?;
        set(
            conn,
            user,
            kind,
            Channels {
                email: false,
                ..now
            },
        )
        .await?;
    }
    Ok(())
}
