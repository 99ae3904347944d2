//! The job queue on the test's database (SQLite, or PostgreSQL with `TEST_POSTGRES_URL`):
//! claims and their order, idempotent enqueue, lease expiry and takeover, fencing, backoff and
//! dead letters, release, periodic jobs, stats, concurrent claimers, and the runner
//! (heartbeats, retries, stopping).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use origin::jobs::{
    self, Beat, Fate, Finished, Handler, Job, Lane, NewJob, OnConflict, Policy, Runner,
};
use sqlx::AnyPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::helpers::{database_url, now};

/// A fixed clock for the statements that take one.
const T: u64 = 1_000_000;
const KIND: &str = "test.work";
const POLICY: Policy = Policy {
    lease_secs: 10,
    max_attempts: 3,
    backoff_base_secs: 2,
    backoff_cap_secs: 5,
};

async fn database() -> (tempfile::TempDir, AnyPool) {
    let dir = tempfile::tempdir().unwrap();
    let db = origin::db::connect(&database_url(dir.path()).await)
        .await
        .unwrap();
    (dir, db)
}

async fn put(db: &AnyPool, job: NewJob<'_>, on_conflict: OnConflict) -> bool {
    let mut conn = db.acquire().await.unwrap();
    jobs::enqueue(&mut conn, &job, on_conflict, T)
        .await
        .unwrap()
}

async fn claim(db: &AnyPool, at: u64) -> Option<Job> {
    jobs::claim(db, &[KIND], None, POLICY.lease_secs, at)
        .await
        .unwrap()
}

async fn complete(db: &AnyPool, job: &Job, outcome: &str, at: u64) -> bool {
    let mut conn = db.acquire().await.unwrap();
    jobs::complete(&mut conn, job.lease(), outcome, at)
        .await
        .unwrap()
}

async fn fail(db: &AnyPool, job: &Job, error: &str, permanent: bool, at: u64) -> Option<Fate> {
    let mut conn = db.acquire().await.unwrap();
    jobs::fail(&mut conn, job.lease(), &POLICY, error, permanent, at)
        .await
        .unwrap()
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct Row {
    state: String,
    attempts: i64,
    lease_until: i64,
    outcome: Option<String>,
    last_error: Option<String>,
}

async fn row(db: &AnyPool, id: i64) -> Row {
    sqlx::query_as(
        "SELECT state, attempts, lease_until, outcome, last_error FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

fn keyed(key: &str) -> NewJob<'_> {
    NewJob {
        run_at: T,
        ..NewJob::new(KIND, key)
    }
}

#[tokio::test]
async fn claims_take_due_jobs_by_priority_then_age_once_each() {
    let (_dir, db) = database().await;
    assert!(put(&db, keyed("a"), OnConflict::Keep).await);
    let later = NewJob {
        run_at: T + 5,
        ..keyed("b")
    };
    assert!(put(&db, later, OnConflict::Keep).await);
    let urgent = NewJob {
        priority: 1,
        ..keyed("c")
    };
    assert!(put(&db, urgent, OnConflict::Keep).await);
    put(&db, NewJob::new("test.other", "d"), OnConflict::Keep).await;

    let first = claim(&db, T).await.unwrap();
    assert_eq!((first.key(), first.attempts), ("c", 1), "priority first");
    let a = claim(&db, T).await.unwrap();
    assert_eq!(a.key(), "a", "then the oldest");
    assert!(
        claim(&db, T).await.is_none(),
        "b is not due, d not this kind"
    );
    let b = claim(&db, T + 5).await.unwrap();
    assert_eq!(b.key(), "b");
    assert!(complete(&db, &a, "applied", T).await);
    assert!(complete(&db, &b, "applied", T).await);

    // A key is queued once: a second enqueue (a redelivered Stripe event) changes nothing,
    // even after the first is done.
    assert!(complete(&db, &first, "applied", T).await);
    let again = NewJob {
        payload: "other",
        ..keyed("c")
    };
    assert!(!put(&db, again, OnConflict::Keep).await);
    assert_eq!(row(&db, first.id).await.state, "done");
    // Sooner only brings a waiting job forward.
    let far = NewJob {
        run_at: T + 600,
        ..NewJob::new(KIND, "e")
    };
    put(&db, far, OnConflict::Keep).await;
    assert!(
        !put(
            &db,
            NewJob {
                run_at: T + 900,
                ..far
            },
            OnConflict::Sooner
        )
        .await
    );
    assert!(claim(&db, T + 10).await.is_none());
    assert!(
        put(
            &db,
            NewJob {
                run_at: T + 10,
                ..far
            },
            OnConflict::Sooner
        )
        .await
    );
    assert_eq!(claim(&db, T + 10).await.unwrap().key(), "e");

    // Work that belongs to one machine is claimed by that machine's lane only.
    for node in ["node-1", "node-2"] {
        put(&db, NewJob::new("test.local", node), OnConflict::Keep).await;
    }
    let mine = jobs::claim(&db, &["test.local"], Some("node-2"), 10, T)
        .await
        .unwrap();
    assert_eq!(mine.unwrap().key(), "node-2");
    let again = jobs::claim(&db, &["test.local"], Some("node-2"), 10, T)
        .await
        .unwrap();
    assert!(again.is_none());
}

#[tokio::test]
async fn a_lease_that_runs_out_is_taken_over_and_the_old_claim_is_fenced() {
    let (_dir, db) = database().await;
    put(&db, keyed("a"), OnConflict::Keep).await;
    let old = claim(&db, T).await.unwrap();
    assert!(claim(&db, T + 9).await.is_none(), "leased until T+10");
    let beat = jobs::heartbeat(&db, old.lease(), 10, T + 5).await.unwrap();
    assert_eq!(beat, Beat::Held);
    assert!(claim(&db, T + 14).await.is_none(), "renewed until T+15");
    // The worker stops beating (it died): the job is due again when the lease runs out.
    let new = claim(&db, T + 15).await.unwrap();
    assert_eq!((new.id, new.attempts), (old.id, 2));

    // The old claim changes nothing any more.
    assert!(!complete(&db, &old, "applied", T + 16).await);
    assert_eq!(fail(&db, &old, "late", false, T + 16).await, None);
    let beat = jobs::heartbeat(&db, old.lease(), 10, T + 16).await.unwrap();
    assert_eq!(beat, Beat::Lost);
    assert!(!jobs::release(&db, old.lease()).await.unwrap());
    assert_eq!(row(&db, new.id).await.state, "running");

    assert!(complete(&db, &new, "applied", T + 16).await);
    let beat = jobs::heartbeat(&db, new.lease(), 10, T + 16).await.unwrap();
    assert_eq!(beat, Beat::Settled, "its own claim ended it");
    assert_eq!(
        row(&db, new.id).await,
        Row {
            state: "done".into(),
            attempts: 2,
            lease_until: 0,
            outcome: Some("applied".into()),
            last_error: None,
        }
    );
}

#[tokio::test]
async fn failures_back_off_then_are_dead_lettered_with_the_last_error() {
    let (_dir, db) = database().await;
    put(&db, keyed("a"), OnConflict::Keep).await;
    let one = claim(&db, T).await.unwrap();
    assert_eq!(
        fail(&db, &one, "first", false, T).await,
        Some(Fate::Retry { at: T + 2 })
    );
    assert_eq!(row(&db, one.id).await.last_error.as_deref(), Some("first"));
    assert!(claim(&db, T + 1).await.is_none(), "backing off");
    let two = claim(&db, T + 2).await.unwrap();
    assert_eq!(two.attempts, 2);
    assert_eq!(
        fail(&db, &two, "second", false, T + 2).await,
        Some(Fate::Retry { at: T + 6 })
    );
    let three = claim(&db, T + 6).await.unwrap();
    let long = "x".repeat(2000);
    assert_eq!(
        fail(&db, &three, &long, false, T + 6).await,
        Some(Fate::Dead)
    );
    assert!(claim(&db, T + 1000).await.is_none(), "dead is final");
    assert_eq!(
        row(&db, three.id).await,
        Row {
            state: "dead".into(),
            attempts: 3,
            lease_until: 0,
            outcome: Some("failed".into()),
            last_error: Some("x".repeat(500)),
        }
    );

    // An error its handler calls permanent is not tried again.
    put(&db, keyed("b"), OnConflict::Keep).await;
    let b = claim(&db, T).await.unwrap();
    assert_eq!(fail(&db, &b, "unreadable", true, T).await, Some(Fate::Dead));
    assert_eq!(row(&db, b.id).await.attempts, 1);
}

#[tokio::test]
async fn a_replaced_job_fences_its_old_worker_and_released_or_periodic_ones_run_again() {
    let (_dir, db) = database().await;
    put(&db, keyed("a"), OnConflict::Keep).await;
    let old = claim(&db, T).await.unwrap();
    let replacement = NewJob {
        payload: "v2",
        ..keyed("a")
    };
    assert!(put(&db, replacement, OnConflict::Replace).await);
    assert!(
        !complete(&db, &old, "done", T).await,
        "fenced by the new row"
    );
    let new = claim(&db, T).await.unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!((new.payload.as_str(), new.attempts), ("v2", 1));

    // Released by a worker that stops: due at once, the attempt given back.
    assert!(jobs::release(&db, new.lease()).await.unwrap());
    let r = row(&db, new.id).await;
    assert_eq!(
        (r.state.as_str(), r.attempts, r.lease_until),
        ("queued", 0, 0)
    );
    let retaken = claim(&db, T).await.unwrap();
    assert_eq!((retaken.id, retaken.attempts), (new.id, 1));

    // A periodic job's next run is a new row at its time.
    assert!(jobs::again(&db, &retaken, T + 600, T).await.unwrap());
    assert!(claim(&db, T + 599).await.is_none());
    let next = claim(&db, T + 600).await.unwrap();
    assert_eq!((next.key(), next.attempts), ("a", 1));
    assert_ne!(next.id, retaken.id);
    assert!(!complete(&db, &retaken, "done", T + 600).await);
}

/// `Renew`: one live job per key (kept while waiting or running), a new one once it finished.
#[tokio::test]
async fn renew_keeps_a_live_job_and_replaces_a_finished_one() {
    let (_dir, db) = database().await;
    assert!(put(&db, keyed("u"), OnConflict::Renew).await);
    assert!(
        !put(&db, keyed("u"), OnConflict::Renew).await,
        "waiting: kept"
    );
    let first = claim(&db, T).await.unwrap();
    assert!(
        !put(&db, keyed("u"), OnConflict::Renew).await,
        "running: kept"
    );
    assert!(claim(&db, T).await.is_none(), "still one live job");
    assert!(complete(&db, &first, "sent", T).await);
    assert!(
        put(&db, keyed("u"), OnConflict::Renew).await,
        "finished: renewed"
    );
    let second = claim(&db, T).await.unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!((second.key(), second.attempts), ("u", 1));
    assert!(
        !complete(&db, &first, "sent", T).await,
        "the old claim is fenced"
    );
}

#[tokio::test]
async fn stats_count_each_kind_by_state_and_outcome() {
    let (_dir, db) = database().await;
    let t = now();
    let job = |key, run_at| NewJob {
        run_at,
        ..NewJob::new(KIND, key)
    };
    for (key, outcome) in [("a1", "applied"), ("a2", "applied"), ("s", "stale")] {
        put(&db, job(key, t - 100), OnConflict::Keep).await;
        let j = claim(&db, t).await.unwrap();
        assert_eq!(j.key(), key);
        assert!(complete(&db, &j, outcome, t).await);
    }
    for (key, run_at) in [("old", t - 30), ("new", t), ("late", t + 60), ("x", t)] {
        put(&db, job(key, run_at), OnConflict::Keep).await;
    }
    // "old" is the oldest due: claim it and let it die.
    let dying = claim(&db, t).await.unwrap();
    assert_eq!(fail(&db, &dying, "boom", true, t).await, Some(Fate::Dead));
    let running = claim(&db, t).await.unwrap();
    assert_eq!(running.key(), "new");
    let mut conn = db.acquire().await.unwrap();
    let other = NewJob::new("test.other", "y");
    jobs::enqueue(&mut conn, &other, OnConflict::Keep, t)
        .await
        .unwrap();
    drop(conn);

    let stats = jobs::stats(&db).await.unwrap();
    assert_eq!(
        stats.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        ["test.other", KIND]
    );
    let s = &stats[1];
    assert_eq!((s.due, s.scheduled, s.running), (1, 1, 1), "{s:?}");
    assert!(s.oldest_due_secs <= 2, "x is due since t: {s:?}");
    let outcomes: Vec<(&str, u64)> = s.outcomes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(outcomes, [("applied", 2), ("failed", 1), ("stale", 1)]);
    let other = &stats[0];
    assert_eq!(other.due, 1);
    // Queued due at once (time 0): its wait counts from when it was queued, not from 1970.
    assert!(other.oldest_due_secs <= 2, "{other:?}");
}

#[tokio::test]
async fn concurrent_claimers_take_each_job_exactly_once() {
    let (_dir, db) = database().await;
    let keys: Vec<String> = (0..60).map(|i| format!("job-{i:02}")).collect();
    for k in &keys {
        put(&db, keyed(k), OnConflict::Keep).await;
    }
    let mut workers = JoinSet::new();
    for _ in 0..6 {
        let db = db.clone();
        workers.spawn(async move {
            let mut got = Vec::new();
            while let Some(job) = claim(&db, T).await {
                got.push(job.key().to_owned());
            }
            got
        });
    }
    let mut claimed: Vec<String> = workers.join_all().await.into_iter().flatten().collect();
    claimed.sort();
    assert_eq!(claimed, keys, "each once, none left");
}

/// Records its runs; what a run does depends on the job's key.
#[derive(Clone, Default)]
struct Scripted {
    runs: Arc<Mutex<Vec<(String, i64)>>>,
}

#[async_trait::async_trait]
impl Handler for Scripted {
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        self.runs
            .lock()
            .unwrap()
            .push((job.key().to_owned(), job.attempts));
        match (job.key(), job.attempts) {
            ("flaky", 1) => anyhow::bail!("not yet"),
            ("never", n) => anyhow::bail!("still broken ({n})"),
            // Longer than its lease: only the heartbeat keeps it.
            ("slow", _) => tokio::time::sleep(Duration::from_secs(8)).await,
            ("stuck", _) => std::future::pending().await,
            _ => {}
        }
        Ok(Finished::Done("ok"))
    }
}

#[tokio::test]
async fn the_runner_retries_keeps_leases_alive_and_releases_on_stop() {
    let (_dir, db) = database().await;
    for key in ["ok", "flaky", "never", "slow", "stuck"] {
        put(&db, NewJob::new(KIND, key), OnConflict::Keep).await;
    }
    // Heartbeats come every third of the lease; the lease is long enough that a heartbeat
    // delayed by a busy machine (whole-second times, four workers on one SQLite file) still
    // lands before it runs out.
    let policy = Policy {
        lease_secs: 6,
        max_attempts: 3,
        backoff_base_secs: 1,
        backoff_cap_secs: 1,
    };
    let handler = Scripted::default();
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // Two processes' runners on one database, two workers each.
    for _ in 0..2 {
        let lane = Lane::new(&[KIND], policy, handler.clone())
            .workers(2)
            .poll(Duration::from_millis(100));
        Runner::new(db.clone()).lane(lane).spawn(&mut tasks, &stop);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (settled,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE state IN ('done', 'dead')")
                .fetch_one(&db)
                .await
                .unwrap();
        if settled == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{settled} settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), tasks.join_all())
        .await
        .expect("workers stop at once");

    let runs = handler.runs.lock().unwrap().clone();
    let of = |key: &str| {
        runs.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, a)| *a)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("ok"), [1]);
    assert_eq!(of("flaky"), [1, 2]);
    assert_eq!(of("never"), [1, 2, 3]);
    assert_eq!(of("slow"), [1], "its lease was renewed, never taken over");
    assert_eq!(of("stuck"), [1]);
    let state = |key: &'static str| {
        let db = db.clone();
        async move {
            let (id,): (i64,) = sqlx::query_as("SELECT id FROM jobs WHERE key = $1")
                .bind(key)
                .fetch_one(&db)
                .await
                .unwrap();
            row(&db, id).await
        }
    };
    assert_eq!(state("flaky").await.outcome.as_deref(), Some("ok"));
    let never = state("never").await;
    assert_eq!(
        (never.state.as_str(), never.outcome.as_deref()),
        ("dead", Some("failed"))
    );
    assert_eq!(never.last_error.as_deref(), Some("still broken (3)"));
    assert_eq!(
        state("stuck").await,
        Row {
            state: "queued".into(),
            attempts: 0,
            lease_until: 0,
            outcome: None,
            last_error: None,
        },
        "released when the runner stopped, its attempt given back"
    );
}

/// Sixteen workers poll for one job that never ends; at the stop its worker gives it back, and
/// the others' claims that then take it (they waited for the database through the release)
/// must give it back unstarted. Before they did, it ran two to four times within a few rounds.
#[tokio::test]
async fn a_stopping_runner_starts_no_job_it_claims() {
    let (_dir, db) = database().await;
    for round in 0..20 {
        sqlx::query("DELETE FROM jobs").execute(&db).await.unwrap();
        put(&db, NewJob::new(KIND, "stuck"), OnConflict::Keep).await;
        let handler = Scripted::default();
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for _ in 0..4 {
            let lane = Lane::new(&[KIND], POLICY, handler.clone())
                .workers(4)
                .poll(Duration::from_millis(1));
            Runner::new(db.clone()).lane(lane).spawn(&mut tasks, &stop);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while handler.runs.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never claimed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), tasks.join_all())
            .await
            .expect("workers stop at once");
        assert_eq!(
            *handler.runs.lock().unwrap(),
            [("stuck".to_owned(), 1)],
            "round {round}"
        );
        let (state, attempts): (String, i64) =
            sqlx::query_as("SELECT state, attempts FROM jobs WHERE key = 'stuck'")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!((state.as_str(), attempts), ("queued", 0), "round {round}");
    }
}
