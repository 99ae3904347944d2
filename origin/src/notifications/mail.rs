//! Notification emails over SMTP (lettre).
//!
//! - **Digest**: the first pending email of a user opens a window of `digest_secs`; a periodic
//!   sweep (`notify.digest`) finds users whose window has closed and queues one `notify.mail`
//!   job each, keyed `{user}:{first pending id}`, so a sweep run twice queues it once. The job
//!   sends everything pending (up to [`PER_EMAIL`]) in one email: alone, a notification goes as
//!   itself; several go as a digest.
//! - **Once**: the job marks what it sent and completes in one transaction after the server
//!   accepted the message. The one gap is a crash between the two: the job is claimed again and
//!   the same message (same `Message-ID`, which mail systems de-duplicate on) is sent again. A
//!   message the server refuses for good (5xx) is not sent again; anything else is retried until
//!   its notifications expire.
//! - **Unsubscribe**: every email has a signed link to stop that kind (a digest of several
//!   kinds: all notification emails), in the body and as `List-Unsubscribe` with
//!   `List-Unsubscribe-Post` (RFC 8058), so mail clients offer one click.
//! - Emails are plain text: what users wrote (titles, comments) is never markup.
//! - Pending emails older than `max_age_secs` (the server was down, or email is not set up) are
//!   expired, not sent late.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use sqlx::AnyPool;

use super::unsubscribe::{self, Scope};
use super::{text, Kind};
use crate::clock::now;
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};
use crate::settings::NotificationSettings;

/// The periodic sweep's kind (one job, keyed `sweep`).
pub const DIGEST: &str = "notify.digest";
/// One email's kind, keyed `{user}:{first pending id}`.
pub const MAIL: &str = "notify.mail";
/// Most notifications in one email; the rest go in the next.
pub const PER_EMAIL: i64 = 50;
/// Most notifications a digest lists one by one.
const LISTED: usize = 20;
/// Users a sweep queues emails for at a time.
const SWEEP_USERS: i64 = 500;

/// Retried until its notifications expire (`max_age_secs`; the job then finds nothing to
/// send): a job given up earlier would keep its key, and with it the user's next emails, until
/// then.
const MAIL_POLICY: Policy = Policy {
    lease_secs: 60,
    max_attempts: i64::MAX,
    backoff_base_secs: 30,
    backoff_cap_secs: 3600,
};

const SWEEP_POLICY: Policy = Policy {
    lease_secs: 60,
    max_attempts: i64::MAX,
    backoff_base_secs: 5,
    backoff_cap_secs: 60,
};

/// What an email needs beyond the database.
pub struct Mailer {
    db: AnyPool,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The edge's public origin: links in emails lead there.
    base: String,
    unsubscribe_key: Arc<[u8; 32]>,
    settings: NotificationSettings,
}

impl Mailer {
    /// A mailer for `settings.smtp_url` (`smtp://host:port` in the clear, `smtp://…?tls=required`
    /// for STARTTLS, `smtps://` for TLS; credentials in the URL's user part).
    pub fn new(
        db: AnyPool,
        settings: &NotificationSettings,
        base: String,
        unsubscribe_key: Arc<[u8; 32]>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .context("notifications.smtp_url is not an SMTP URL")?
            .timeout(Some(Duration::from_secs(settings.smtp_timeout_secs)))
            .build();
        let from = settings
            .from
            .parse()
            .context("notifications.from is not a mailbox (\"Name <address>\")")?;
        Ok(Some(Arc::new(Self {
            db,
            smtp,
            from,
            base: base.trim_end_matches('/').to_owned(),
            unsubscribe_key,
            settings: settings.clone(),
        })))
    }

    /// The sweep (made due now) and the senders' lanes.
    pub async fn lanes(self: &Arc<Self>) -> sqlx::Result<[Lane; 2]> {
        let sweep = NewJob::new(DIGEST, "sweep");
        jobs::enqueue(
            &mut *self.db.acquire().await?,
            &sweep,
            OnConflict::Sooner,
            now(),
        )
        .await?;
        Ok([
            Lane::new(&[DIGEST], SWEEP_POLICY, Sweep(self.clone()))
                .poll(Duration::from_secs(self.settings.sweep_secs)),
            Lane::new(&[MAIL], MAIL_POLICY, Send(self.clone()))
                .workers(self.settings.mail_workers)
                .poll(Duration::from_secs(1)),
        ])
    }
}

struct Sweep(Arc<Mailer>);

#[async_trait::async_trait]
impl jobs::Handler for Sweep {
    async fn run(&self, _job: &Job) -> anyhow::Result<Finished> {
        let m = &self.0;
        let t = now();
        let expired = sqlx::query(
            "UPDATE notifications SET email = 'expired'
             WHERE email = 'pending' AND created_at < $1",
        )
        .bind(t.saturating_sub(m.settings.max_age_secs) as i64)
        .execute(&m.db)
        .await?
        .rows_affected();
        if expired > 0 {
            tracing::warn!(expired, "notification emails expired unsent");
        }
        let due: Vec<(String, i64)> = sqlx::query_as(
            "SELECT user_id, MIN(id) FROM notifications WHERE email = 'pending'
             GROUP BY user_id HAVING MIN(created_at) <= $1 LIMIT $2",
        )
        .bind(t.saturating_sub(m.settings.digest_secs) as i64)
        .bind(SWEEP_USERS)
        .fetch_all(&m.db)
        .await?;
        let mut conn = m.db.acquire().await?;
        for (user, first) in &due {
            let key = format!("{user}:{first}");
            jobs::enqueue(&mut conn, &NewJob::new(MAIL, &key), OnConflict::Keep, t).await?;
        }
        // A full sweep leaves more: go on at once.
        let next = if due.len() as i64 == SWEEP_USERS {
            t
        } else {
            t + m.settings.sweep_secs
        };
        Ok(Finished::Again { at: next })
    }
}

struct Send(Arc<Mailer>);

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    kind: String,
    data: String,
}

#[async_trait::async_trait]
impl jobs::Handler for Send {
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        let m = &self.0;
        let (user, _) = job
            .key()
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("malformed mail key"))?;
        let Some(address) =
            sqlx::query_scalar::<_, String>("SELECT email FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&m.db)
                .await?
        else {
            return Ok(Finished::Done("no_user"));
        };
        let pending: Vec<Pending> = sqlx::query_as(
            "SELECT id, kind, data FROM notifications WHERE user_id = $1 AND email = 'pending'
             ORDER BY id LIMIT $2",
        )
        .bind(user)
        .bind(PER_EMAIL)
        .fetch_all(&m.db)
        .await?;
        let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
            return Ok(Finished::Done("nothing"));
        };
        let (first, last) = (first.id, last.id);
        let to: Mailbox = match address.parse() {
            Ok(to) => to,
            Err(_) => {
                tracing::warn!(
                    user,
                    "notification email skipped: the stored address does not parse"
                );
                return Ok(Finished::Done("bad_address"));
            }
        };
        let message = m.compose(user, to, &pending)?;
        let (outcome, state) = match m.smtp.send(message).await {
            Ok(_) => ("sent", "sent"),
            // A 5xx refuses this message for good (a bad recipient, say): its notifications are
            // not emailed, and the user's next ones go in a new email. Anything else (the server
            // away, a 4xx) is tried again.
            Err(e) if e.is_permanent() => {
                tracing::warn!(user, error = %e, "notification email refused by the server");
                ("refused", "expired")
            }
            Err(e) => return Err(e).context("sending"),
        };
        let mut tx = m.db.begin().await?;
        if !jobs::complete(&mut tx, job.lease(), outcome, now()).await? {
            // Another worker has the job: it decides; this send was its duplicate.
            return Ok(Finished::Recorded);
        }
        sqlx::query(
            "UPDATE notifications SET email = $1
             WHERE user_id = $2 AND email = 'pending' AND id >= $3 AND id <= $4",
        )
        .bind(state)
        .bind(user)
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            user,
            notifications = pending.len(),
            outcome,
            "notification email"
        );
        Ok(Finished::Recorded)
    }
}

impl Mailer {
    /// One notification as itself, several as a digest.
    fn compose(&self, user: &str, to: Mailbox, pending: &[Pending]) -> anyhow::Result<Message> {
        let lines: Vec<(Kind, String, String)> = pending
            .iter()
            .filter_map(|p| {
                let kind = Kind::parse(&p.kind)?;
                let data = serde_json::from_str(&p.data).unwrap_or_default();
                let (text, path) = text::describe(kind, &data);
                Some((kind, text, format!("{}{path}", self.base)))
            })
            .collect();
        let first_kind = lines.first().map(|l| l.0);
        let scope = match first_kind {
            Some(k) if lines.iter().all(|l| l.0 == k) => Scope::Kind(k),
            _ => Scope::All,
        };
        let stop = format!(
            "{}/v1/notifications/unsubscribe?t={}",
            self.base,
            unsubscribe::token(self.unsubscribe_key.as_slice(), user, scope)
        );
        let stop_what = match scope {
            Scope::Kind(k) => format!("these emails ({})", k.as_str().replace('_', " ")),
            Scope::All => "all notification emails".into(),
        };
        let (subject, mut body) = match lines.as_slice() {
            [(_, text, link)] => (text.clone(), format!("{text}.\n\n{link}\n")),
            _ => {
                let mut body = String::new();
                for (_, text, link) in lines.iter().take(LISTED) {
                    body.push_str(&format!("- {text}\n  {link}\n"));
                }
                if lines.len() > LISTED {
                    body.push_str(&format!(
                        "\n…and {} more in the app: {}/\n",
                        lines.len() - LISTED,
                        self.base
                    ));
                }
                (format!("{} new notifications", lines.len()), body)
            }
        };
        body.push_str(&format!(
            "\n--\nYou get this because of your notification settings: {}/account\nStop {stop_what}: {stop}\n",
            self.base
        ));
        let host = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, h)| h)
            .split(['/', ':'])
            .next()
            .unwrap_or("localhost");
        let first = pending.first().map_or(0, |p| p.id);
        let last = pending.last().map_or(0, |p| p.id);
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<n{first}-{last}.{user}@{host}>")))
            .header(ContentType::TEXT_PLAIN);
        // RFC 8058: mail clients POST `List-Unsubscribe=One-Click` to the link.
        for (name, value) in [
            ("List-Unsubscribe", format!("<{stop}>")),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ] {
            message = message.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(name),
                value,
            ));
        }
        Ok(message.body(body)?)
    }
}
