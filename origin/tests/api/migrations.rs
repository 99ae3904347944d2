//! Schema migrations carry existing data forward, on both backends.

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use crate::helpers::database_url;

/// Before 0012 a channel was its creator's user id; afterwards each such creator has one
/// channel holding their videos and their subscribers.
#[tokio::test]
async fn channels_migration_keeps_videos_and_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let mut url = database_url(dir.path()).await;
    let migrator = if url.starts_with("sqlite:") {
        url.push_str("?mode=rwc");
        sqlx::migrate!("./migrations/sqlite")
    } else {
        sqlx::migrate!("./migrations/postgres")
    };
    sqlx::any::install_default_drivers();
    let db = AnyPoolOptions::new().connect(&url).await.unwrap();
    let before_channels = Migrator {
        migrations: Cow::Owned(
            migrator
                .iter()
                .filter(|m| m.version < 12)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    before_channels.run(&db).await.unwrap();
    for stmt in [
        "INSERT INTO users (id, email, password_hash, role, created_at, display_name)
         VALUES ('u_c', 'c@x', 'h', 'creator', 1, 'Ada'), ('u_v', 'v@x', 'h', 'user', 1, '')",
        "INSERT INTO videos (id, owner_id, title, visibility, state, created_at, updated_at)
         VALUES ('v1', 'u_c', 'One', 'public', 'ready', 1, 1),
                ('v2', NULL, 'Orphan', 'public', 'ready', 1, 1)",
        "INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ('u_v', 'u_c', 1)",
    ] {
        sqlx::query(stmt).execute(&db).await.unwrap();
    }
    migrator.run(&db).await.unwrap();

    let channels: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, owner_id, name FROM channels ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        channels,
        [("ch_u_c".to_owned(), "u_c".to_owned(), "Ada".to_owned())]
    );
    let videos: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, channel_id FROM videos ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        videos,
        [
            ("v1".to_owned(), Some("ch_u_c".to_owned())),
            ("v2".to_owned(), None)
        ]
    );
    let subs: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, channel_id FROM subscriptions")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(subs, [("u_v".to_owned(), "ch_u_c".to_owned())]);
    // And the new reference holds: a subscription to no channel is refused.
    let bad = sqlx::query(
        "INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ('u_v', 'u_c', 2)",
    )
    .execute(&db)
    .await;
    assert!(
        bad.is_err(),
        "a subscription to a user id is no longer accepted"
    );
}
