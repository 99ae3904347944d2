//! Schema migrations carry existing data forward, on both backends.

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use crate::helpers::database_url;

/// A new database with the migrations before `version` run; its URL.
async fn migrated_before(version: i64) -> (tempfile::TempDir, AnyPool, String) {
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
    let before = Migrator {
        migrations: Cow::Owned(
            migrator
                .iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    before.run(&db).await.unwrap();
    (dir, db, url)
}

/// Runs the rest of the migrations as the origin does (`db::connect`: on SQLite each on a
/// connection of its own, since 0022 edits a stored definition) and opens the database afresh.
async fn finish(db: AnyPool, url: &str) -> AnyPool {
    db.close().await;
    origin::db::connect(url).await.unwrap()
}

/// Before 0012 a channel was its creator's user id; afterwards each such creator has one
/// channel holding their videos and their subscribers.
#[tokio::test]
async fn channels_migration_keeps_videos_and_subscribers() {
    let (_dir, db, url) = migrated_before(12).await;
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
    let db = finish(db, &url).await;

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

/// Before 0019 Stripe events and transcoding work were queues of their own; afterwards they
/// are jobs with their attempts, backoff and outcomes, and `billing_events` still lists them.
#[tokio::test]
async fn jobs_migration_moves_the_queues_into_jobs() {
    let (_dir, db, url) = migrated_before(19).await;
    let event = |id: &str, kind: &str, created: i64| {
        format!(
            r#"{{"id": "{id}", "type": "{kind}", "created": {created}, "data": {{"object": {{}}}}}}"#
        )
    };
    for stmt in [
        "INSERT INTO users (id, email, password_hash, role, created_at, display_name)
         VALUES ('u_c', 'c@x', 'h', 'creator', 1, 'Ada')"
            .to_owned(),
        "INSERT INTO videos (id, owner_id, title, visibility, state, created_at, updated_at)
         VALUES ('v1', 'u_c', 'One', 'public', 'processing', 1, 1),
                ('v2', 'u_c', 'Two', 'public', 'processing', 2, 2)"
            .to_owned(),
        format!(
            "INSERT INTO billing_events (id, type, created, payload, received_at, processed_at,
                 outcome, attempts, next_attempt_at, lease_until, last_error) VALUES
             ('evt_1', 'invoice.paid', 100, '{}', 10, 11, 'applied', 1, 0, 0, NULL),
             ('evt_2', 'invoice.paid', 101, '{}', 12, 13, 'failed', 8, 900, 0, 'boom'),
             ('evt_3', 'customer.subscription.updated', 102, '{}', 14, NULL, NULL, 2, 500, 0,
              'no customer')",
            event("evt_1", "invoice.paid", 100),
            event("evt_2", "invoice.paid", 101),
            event("evt_3", "customer.subscription.updated", 102),
        ),
        "INSERT INTO transcode_jobs (video_id, stage, attempts, next_attempt_at, lease_until,
             created_at, source)
         VALUES ('v1', 'probe', 1, 50, 0, 5, 'sources/v1.a'),
                ('v2', 'encode', 1, 0, 0, 6, 'sources/v2.b')"
            .to_owned(),
        "INSERT INTO transcode_tasks (id, video_id, rendition, height, state, attempts,
             next_attempt_at, lease_until, last_error)
         VALUES ('v2:240p', 'v2', '240p', 240, 'done', 1, 0, 0, NULL),
                ('v2:360p', 'v2', '360p', 360, 'queued', 2, 70, 0, 'encode_failed')"
            .to_owned(),
    ] {
        sqlx::query(&stmt).execute(&db).await.unwrap();
    }
    let db = finish(db, &url).await;

    type Job = (
        String,
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
    );
    let jobs: Vec<Job> = sqlx::query_as(
        "SELECT kind, key, state, attempts, run_at, outcome, last_error FROM jobs ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let job = |kind: &str,
               key: &str,
               state: &str,
               attempts,
               run_at,
               outcome: Option<&str>,
               error: Option<&str>| {
        (
            kind.to_owned(),
            key.to_owned(),
            state.to_owned(),
            attempts,
            run_at,
            outcome.map(str::to_owned),
            error.map(str::to_owned),
        )
    };
    assert_eq!(
        jobs,
        [
            job(
                "billing.event",
                "evt_1",
                "done",
                1,
                0,
                Some("applied"),
                None
            ),
            job(
                "billing.event",
                "evt_2",
                "dead",
                8,
                900,
                Some("failed"),
                Some("boom")
            ),
            job(
                "billing.event",
                "evt_3",
                "queued",
                2,
                500,
                None,
                Some("no customer")
            ),
            job("transcode.probe", "v1", "queued", 1, 50, None, None),
            job(
                "transcode.encode",
                "v2:360p",
                "queued",
                2,
                70,
                None,
                Some("encode_failed")
            ),
        ]
    );
    type Event = (String, String, i64, i64, Option<i64>, Option<String>, i64);
    let events: Vec<Event> = sqlx::query_as(
        "SELECT id, type, created, received_at, processed_at, outcome, attempts
         FROM billing_events ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            (
                "evt_1".into(),
                "invoice.paid".into(),
                100,
                10,
                Some(11),
                Some("applied".into()),
                1
            ),
            (
                "evt_2".into(),
                "invoice.paid".into(),
                101,
                12,
                Some(13),
                Some("failed".into()),
                8
            ),
            (
                "evt_3".into(),
                "customer.subscription.updated".into(),
                102,
                14,
                None,
                None,
                2
            ),
        ]
    );
    // What the status API reads stays; the queue's columns are gone.
    let (stage, source): (String, String) =
        sqlx::query_as("SELECT stage, source FROM transcode_jobs WHERE video_id = 'v2'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        (stage.as_str(), source.as_str()),
        ("encode", "sources/v2.b")
    );
    assert!(sqlx::query("SELECT lease_until FROM transcode_tasks")
        .fetch_all(&db)
        .await
        .is_err());
}

/// 0022 widens the role list (on SQLite by editing the table's stored definition): afterwards a
/// moderator can be stored, a made-up role still cannot, and nothing that refers to users moved.
#[tokio::test]
async fn moderation_migration_admits_moderators_and_keeps_accounts() {
    let (_dir, db, url) = migrated_before(22).await;
    for stmt in [
        "INSERT INTO users (id, email, password_hash, role, created_at, display_name)
         VALUES ('u_a', 'a@x', 'h', 'admin', 1, 'Ada')",
        "INSERT INTO channels (id, owner_id, name, created_at, ordinal)
         VALUES ('ch1', 'u_a', 'Ada', 1, 1)",
    ] {
        sqlx::query(stmt).execute(&db).await.unwrap();
    }
    let session = |id: &'static str, user: &'static str| {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at)
             VALUES ($1, $2, $3, 1, 2)",
        )
        .bind(id)
        .bind(user)
        .bind(vec![0u8])
    };
    session("s1", "u_a").execute(&db).await.unwrap();
    // Fresh connections, as the origin opens them (references enforced).
    let db = finish(db, &url).await;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, created_at)
         VALUES ('u_m', 'm@x', 'h', 'moderator', 1)",
    )
    .execute(&db)
    .await
    .expect("a moderator can be stored");
    let bogus = sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, created_at)
         VALUES ('u_b', 'b@x', 'h', 'superuser', 1)",
    )
    .execute(&db)
    .await;
    assert!(bogus.is_err(), "the role list is still checked");
    let kept: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM sessions),
                (SELECT COUNT(*) FROM channels)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(kept, (2, 1, 1));
    let orphan = session("s2", "nobody").execute(&db).await;
    assert!(orphan.is_err(), "references are still enforced");
}

/// 0023: videos already published count as announced, so editing or restoring one after the
/// upgrade tells no subscriber of it as new; a video not yet published is announced when it is.
#[tokio::test]
async fn notifications_migration_counts_published_videos_as_announced() {
    let (_dir, db, url) = migrated_before(23).await;
    for stmt in [
        "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('u_c', 'c@x', 'h', 'creator', 1)",
        "INSERT INTO channels (id, owner_id, name, created_at, ordinal) VALUES ('ch1', 'u_c', 'C', 1, 1)",
        "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ('u_v', 'v@x', 'h', 'user', 1)",
        "INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ('u_v', 'ch1', 1)",
        "INSERT INTO videos (id, owner_id, channel_id, title, visibility, state, created_at, updated_at)
         VALUES ('v-old', 'u_c', 'ch1', 'Old', 'public', 'ready', 5, 5),
                ('v-down', 'u_c', 'ch1', 'Down', 'public', 'ready', 6, 6),
                ('v-draft', 'u_c', 'ch1', 'Draft', 'private', 'ready', 7, 7)",
        "UPDATE videos SET taken_down = 1 WHERE id = 'v-down'",
    ] {
        sqlx::query(stmt).execute(&db).await.unwrap();
    }
    let db = finish(db, &url).await;
    let announced: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT id, announced_at FROM videos ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        announced,
        [
            ("v-down".into(), Some(6)),
            ("v-draft".into(), None),
            ("v-old".into(), Some(5)),
        ]
    );
    // An edit and a restore after the upgrade, then the draft made public: one fan-out, the draft's.
    for (id, patch) in [
        (
            "v-old",
            origin::videos::VideoPatch {
                title: Some("Old, edited".into()),
                ..Default::default()
            },
        ),
        (
            "v-down",
            origin::videos::VideoPatch {
                taken_down: Some(false),
                ..Default::default()
            },
        ),
        (
            "v-draft",
            origin::videos::VideoPatch {
                visibility: Some(shared_wasm::record::Visibility::Public),
                ..Default::default()
            },
        ),
    ] {
        let id = shared_wasm::VideoId::parse(id).unwrap();
        origin::videos::update(&db, &id, &patch)
            .await
            .unwrap()
            .unwrap();
    }
    let fanouts: Vec<String> =
        sqlx::query_scalar("SELECT key FROM jobs WHERE kind = 'notify.fanout' ORDER BY key")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(fanouts, ["video:v-draft"]);
}
