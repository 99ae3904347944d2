//! Notification emails over SMTP (lettre).
//!
//! - **Digest**: the first pending email of a user opens a window of `digest_secs`; a periodic
//!   sweep (`notify.digest`) finds the users whose window has closed, longest waiting first, and
//!   queues one `notify.mail` job each, keyed by the user: one live job per user (a sweep run
//!   twice queues it once, and two workers never send one user's notifications at once), renewed
//!   once it has finished. The job sends what is pending (up to [`PER_EMAIL`]) in one email:
//!   alone, a notification goes as itself; several go as a digest.
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
/// One email's kind, keyed by the user.
pub const MAIL: &str = "notify.mail";
/// An address confirmation's kind, keyed by the user.
pub const CONFIRM: &str = "notify.confirm";
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
    email_link_key: Arc<[u8; 32]>,
}

impl Mailer {
    /// A mailer for `settings.smtp_url` (`smtp://host:port` in the clear, `smtp://…?tls=required`
    /// for STARTTLS, `smtps://` for TLS; credentials in the URL's user part); `None` without one.
    /// `base`: the edge's public origin, which links in emails lead to.
    pub fn new(
        db: AnyPool,
        settings: &NotificationSettings,
        base: &str,
        email_link_key: Arc<[u8; 32]>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        // RFC 8058 wants an absolute https link (http on a development machine).
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            anyhow::bail!(
                "notifications.smtp_url needs web.origins: the links in emails lead there"
            );
        }
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
            email_link_key,
        })))
    }
}

/// The sweep's lane (its job made due now), and the senders' with a `mailer`. Without one the
/// sweep only expires what waits too long: no email goes out.
pub async fn lanes(
    db: &AnyPool,
    settings: &NotificationSettings,
    mailer: Option<Arc<Mailer>>,
) -> sqlx::Result<Vec<Lane>> {
    let sweep = NewJob::new(DIGEST, "sweep");
    jobs::enqueue(&mut *db.acquire().await?, &sweep, OnConflict::Sooner, now()).await?;
    let sweeper = Sweep {
        db: db.clone(),
        settings: settings.clone(),
        sending: mailer.is_some(),
    };
    let mut lanes =
        vec![Lane::new(&[DIGEST], SWEEP_POLICY, sweeper)
            .poll(Duration::from_secs(settings.sweep_secs))];
    if let Some(mailer) = mailer {
        lanes.push(
            Lane::new(&[MAIL], MAIL_POLICY, Send(mailer.clone()))
                .workers(settings.mail_workers)
                .poll(Duration::from_secs(1)),
        );
        lanes.push(
            Lane::new(&[CONFIRM], CONFIRM_POLICY, Confirm(mailer)).poll(Duration::from_secs(1)),
        );
    }
    Ok(lanes)
}

struct Sweep {
    db: AnyPool,
    settings: NotificationSettings,
    sending: bool,
}

#[async_trait::async_trait]
impl jobs::Handler for Sweep {
    async fn run(&self, _job: &Job) -> anyhow::Result<Finished> {
        let t = now();
        let expired = sqlx::query(
            "UPDATE notifications SET email = 'expired'
             WHERE email = 'pending' AND created_at < $1",
        )
        .bind(t.saturating_sub(self.settings.max_age_secs) as i64)
        .execute(&self.db)
        .await?
        .rows_affected();
        if expired > 0 {
            tracing::warn!(expired, "notification emails expired unsent");
        }
        if !self.sending {
            return Ok(Finished::Again {
                at: t + self.settings.sweep_secs,
            });
        }
        // Users with a live email job are left to it: the sweep moves on to others.
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT n.user_id FROM notifications n WHERE n.email = 'pending'
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $1 AND j.key = n.user_id
                                 AND j.state IN ('queued', 'running'))
             GROUP BY n.user_id HAVING MIN(n.created_at) <= $2
             ORDER BY MIN(n.created_at) LIMIT $3",
        )
        .bind(MAIL)
        .bind(t.saturating_sub(self.settings.digest_secs) as i64)
        .bind(SWEEP_USERS)
        .fetch_all(&self.db)
        .await?;
        let mut conn = self.db.acquire().await?;
        for user in &due {
            jobs::enqueue(&mut conn, &NewJob::new(MAIL, user), OnConflict::Renew, t).await?;
        }
        // A full sweep leaves more: go on at once.
        let next = if due.len() as i64 == SWEEP_USERS {
            t
        } else {
            t + self.settings.sweep_secs
        };
        Ok(Finished::Again { at: next })
    }
}

const CONFIRM_POLICY: Policy = Policy {
    lease_secs: 60,
    max_attempts: 6,
    backoff_base_secs: 30,
    backoff_cap_secs: 600,
};

/// Sends an address confirmation link ([`super::confirm`]).
struct Confirm(Arc<Mailer>);

#[async_trait::async_trait]
impl jobs::Handler for Confirm {
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        let m = &self.0;
        let user = job.key();
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT email, email_confirmed_at FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&m.db)
                .await?;
        let Some((address, None)) = row else {
            return Ok(Finished::Done("nothing"));
        };
        let Ok(to) = address.parse::<Mailbox>() else {
            return Ok(Finished::Done("bad_address"));
        };
        let token = super::confirm::token(m.email_link_key.as_slice(), user, &address, now());
        let link = format!("{}/v1/auth/confirm-email?t={token}", m.base);
        let body = format!(
            "Follow this link to confirm that {address} is your address, and to get your \
             notifications by email:\n\n{link}\n\nIt works for a day. If you did not ask for \
             it, ignore this email: nothing is sent to an address that is not confirmed.\n"
        );
        let message = Message::builder()
            .from(m.from.clone())
            .to(to)
            .subject("Confirm your email address")
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        match m.smtp.send(message).await {
            Ok(_) => Ok(Finished::Done("sent")),
            Err(e) if e.is_permanent() => Ok(Finished::Done("refused")),
            Err(e) => Err(e).context("sending"),
        }
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
        let user = job.key();
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
        if pending.is_empty() {
            return Ok(Finished::Done("nothing"));
        }
        let Ok(to) = address.parse::<Mailbox>() else {
            tracing::warn!(
                user,
                "notification email dropped: the stored address does not parse"
            );
            return m.settle(job, &pending, "bad_address", "expired").await;
        };
        let message = m.compose(user, to, &pending)?;
        match m.smtp.send(message).await {
            Ok(_) => m.settle(job, &pending, "sent", "sent").await,
            // A 5xx refuses this message for good (a bad recipient, say): its notifications are
            // not emailed, and the user's next ones go in a new email. Anything else (the server
            // away, a 4xx) is tried again.
            Err(e) if e.is_permanent() => {
                tracing::warn!(user, error = %e, "notification email refused by the server");
                m.settle(job, &pending, "refused", "expired").await
            }
            Err(e) => Err(e).context("sending"),
        }
    }
}

impl Mailer {
    /// Completes the job with `outcome` and marks exactly the notifications it read `state`, in
    /// one transaction (ids, not a range: on PostgreSQL a lower id can commit after a higher
    /// one, and would be marked unsent).
    async fn settle(
        &self,
        job: &Job,
        pending: &[Pending],
        outcome: &'static str,
        state: &str,
    ) -> anyhow::Result<Finished> {
        let mut tx = self.db.begin().await?;
        if !jobs::complete(&mut tx, job.lease(), outcome, now()).await? {
            // Another worker has the job now, and decides.
            return Ok(Finished::Recorded);
        }
        let marks: Vec<String> = (0..pending.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE notifications SET email = $1
             WHERE user_id = $2 AND email = 'pending' AND id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(state).bind(job.key());
        for p in pending {
            q = q.bind(p.id);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(
            user = job.key(),
            notifications = pending.len(),
            outcome,
            "notification email"
        );
        Ok(Finished::Recorded)
    }

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
            unsubscribe::token(self.email_link_key.as_slice(), user, scope)
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
