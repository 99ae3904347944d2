//! One delivery attempt: the stored body, signed with the endpoint's secret (and the previous
//! one while a rotation overlaps), POSTed to the endpoint's URL; the answer recorded in the
//! delivery log and the job in one transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;

use super::{target, DELIVER};
use crate::clock::now;
use crate::jobs::{self, Fate, Finished, Job, Lane, Policy};
use crate::settings::WebhookSettings;

/// The header with the event's id, the same in every attempt.
pub const ID_HEADER: &str = "webhook-id";
/// The header with the signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]`.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The signature header for `body` sent at `t`: one `v1` per secret, each the HMAC-SHA256 of
/// `"{t}.{body}"` keyed by the whole secret, as Stripe signs.
pub fn signature(secrets: &[&str], t: u64, body: &[u8]) -> String {
    let t = t.to_string();
    let mut header = format!("t={t}");
    for secret in secrets {
        let tag = shared_wasm::hmac::sign(secret.as_bytes(), &[t.as_bytes(), b".", body]);
        header.push_str(",v1=");
        header.push_str(&hex::encode(tag));
    }
    header
}

/// Delivers `webhook.deliver` jobs.
pub struct Deliverer {
    db: AnyPool,
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl Deliverer {
    /// A client that follows no redirect, uses no proxy and, unless `allow_private`, connects
    /// only to public addresses ([`target::PublicResolver`]).
    pub fn new(db: AnyPool, settings: WebhookSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(settings.timeout_secs);
        let mut client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("edge-video-webhooks/1");
        if !settings.allow_private {
            client = client.dns_resolver(Arc::new(target::PublicResolver));
        }
        Ok(Self {
            db,
            client: client.build()?,
            settings,
        })
    }

    /// `webhooks.workers` workers. They look for due deliveries every second: events are
    /// written by many writers (uploads, transcoding, admins) that need not know of them.
    pub fn lane(self) -> Lane {
        let workers = self.settings.workers;
        Lane::new(&[DELIVER], self.policy(), self)
            .workers(workers)
            .poll(Duration::from_secs(1))
    }

    fn policy(&self) -> Policy {
        Policy {
            lease_secs: self.settings.timeout_secs + 10,
            // The window ends a delivery's retries, not a count.
            max_attempts: i64::MAX,
            backoff_base_secs: self.settings.retry_secs,
            backoff_cap_secs: self.settings.retry_cap_secs,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Pending {
    url: String,
    all_creators: i64,
    role: String,
    secret: String,
    previous_secret: Option<String>,
    previous_until: i64,
    state: String,
    video_id: String,
    retry_from: i64,
    event_id: String,
    body: String,
}

/// How a delivery's turn ended.
enum Outcome {
    /// Sent and answered with a 2xx.
    Delivered(u16),
    /// Sent (or about to be) and failed: the status if one came, and why, in our words.
    Failed(Option<u16>, String),
    /// Not sent, and never will be: its endpoint's owner may no longer hear it.
    Muted,
}

#[async_trait::async_trait]
impl jobs::Handler for Deliverer {
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        let (endpoint, seq) = job
            .key()
            .rsplit_once(':')
            .and_then(|(e, s)| Some((e, s.parse::<i64>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("malformed delivery key"))?;
        let Some(d) = sqlx::query_as::<_, Pending>(
            "SELECT w.url, w.all_creators, u.role, w.secret, w.previous_secret, w.previous_until,
                    d.state, d.video_id, d.retry_from, e.id AS event_id, e.body
             FROM webhook_deliveries d
             JOIN webhook_endpoints w ON w.id = d.endpoint_id
             JOIN users u ON u.id = w.owner_id
             JOIN webhook_events e ON e.seq = d.event_seq
             WHERE d.endpoint_id = $1 AND d.event_seq = $2",
        )
        .bind(endpoint)
        .bind(seq)
        .fetch_optional(&self.db)
        .await?
        else {
            return Ok(Finished::Done("endpoint_deleted"));
        };
        if d.state != "pending" {
            return Ok(Finished::Done("settled"));
        }
        // In order per video: wait for the endpoint's earlier pending event of this video, until
        // its next attempt. A delivery's day of retries starts when it may first be sent.
        let earlier: Option<i64> = sqlx::query_scalar(
            "SELECT j.run_at FROM webhook_deliveries d
             JOIN jobs j ON j.kind = $1 AND j.key = d.endpoint_id || ':' || CAST(d.event_seq AS TEXT)
             WHERE d.endpoint_id = $2 AND d.video_id = $3 AND d.state = 'pending'
               AND d.event_seq < $4 AND j.state IN ('queued', 'running')
             ORDER BY d.event_seq LIMIT 1",
        )
        .bind(DELIVER)
        .bind(endpoint)
        .bind(&d.video_id)
        .bind(seq)
        .fetch_optional(&self.db)
        .await?;
        if let Some(run_at) = earlier {
            let at = now();
            sqlx::query(
                "UPDATE webhook_deliveries SET retry_from = $1
                 WHERE endpoint_id = $2 AND event_seq = $3",
            )
            .bind(at as i64)
            .bind(endpoint)
            .bind(seq)
            .execute(&self.db)
            .await?;
            return Ok(Finished::Again {
                at: (at + 1).max(run_at as u64),
            });
        }
        let outcome = if super::may_hear(&d.role, d.all_creators != 0) {
            self.attempt(&d).await
        } else {
            Outcome::Muted
        };
        self.record(job, endpoint, seq, &d, outcome).await?;
        Ok(Finished::Recorded)
    }
}

impl Deliverer {
    async fn attempt(&self, d: &Pending) -> Outcome {
        let url = match target::check(&d.url, self.settings.allow_private) {
            Ok(url) => url,
            Err(why) => return Outcome::Failed(None, why.to_owned()),
        };
        let t = now();
        let mut secrets = vec![d.secret.as_str()];
        if let Some(previous) = d
            .previous_secret
            .as_deref()
            .filter(|_| d.previous_until as u64 > t)
        {
            secrets.push(previous);
        }
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &d.event_id)
            .header(SIGNATURE_HEADER, signature(&secrets, t, d.body.as_bytes()))
            .body(d.body.clone())
            .send()
            .await;
        // The answer's body is never read: what an endpoint says is not ours to keep.
        match sent {
            Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
            Ok(r) => {
                let status = r.status().as_u16();
                let error = if r.status().is_redirection() {
                    format!("HTTP {status} (redirects are not followed)")
                } else {
                    format!("HTTP {status}")
                };
                Outcome::Failed(Some(status), error)
            }
            Err(e) => Outcome::Failed(None, describe(&e, self.settings.timeout_secs)),
        }
    }

    /// The turn's outcome, the delivery's state and the job's in one transaction; nothing when
    /// the claim is no longer the job's (a "send again" replaced it).
    async fn record(
        &self,
        job: &Job,
        endpoint: &str,
        seq: i64,
        d: &Pending,
        outcome: Outcome,
    ) -> anyhow::Result<()> {
        let at = now();
        let policy = self.policy();
        let lease = job.lease();
        let mut tx = self.db.begin().await?;
        let (state, status, error, sent) = match outcome {
            Outcome::Delivered(status) => {
                if !jobs::complete(&mut tx, lease, "delivered", at).await? {
                    return Ok(());
                }
                ("delivered", Some(status), None, true)
            }
            Outcome::Failed(status, error) => {
                // Retried until the window has passed: the last try comes at most one backoff
                // after its end.
                let last = at >= d.retry_from as u64 + self.settings.window_secs;
                match jobs::fail(&mut tx, lease, &policy, &error, last, at).await? {
                    None => return Ok(()),
                    Some(Fate::Dead) => ("failed", status, Some(error), true),
                    Some(Fate::Retry { .. }) => ("pending", status, Some(error), true),
                }
            }
            Outcome::Muted => {
                let error = "the endpoint's owner may no longer receive these events";
                if jobs::fail(&mut tx, lease, &policy, error, true, at)
                    .await?
                    .is_none()
                {
                    return Ok(());
                }
                ("failed", None, Some(error.to_owned()), false)
            }
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + $2,
                 last_status = CASE WHEN $2 = 1 THEN $3 ELSE last_status END, last_error = $4,
                 last_attempt_at = CASE WHEN $2 = 1 THEN $5 ELSE last_attempt_at END,
                 delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_at END
             WHERE endpoint_id = $6 AND event_seq = $7",
        )
        .bind(state)
        .bind(i64::from(sent))
        .bind(status.map(i64::from))
        .bind(error.as_deref())
        .bind(at as i64)
        .bind(endpoint)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        match &error {
            None => tracing::info!(event = %d.event_id, endpoint, "webhook delivered"),
            Some(error) => {
                tracing::info!(event = %d.event_id, endpoint, state, %error, "webhook not delivered")
            }
        }
        Ok(())
    }
}

/// A failed request in our words: no URL, address or answer of the endpoint's in it.
fn describe(e: &reqwest::Error, timeout_secs: u64) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if err.to_string() == target::PRIVATE {
            return target::PRIVATE.to_owned();
        }
        source = err.source();
    }
    if e.is_timeout() {
        format!("no answer within {timeout_secs} s")
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn signed_as_stripe_signs_one_v1_per_secret() {
        let body = br#"{"id":"evt_1"}"#;
        let header = signature(&["whsec_new", "whsec_old"], 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(header.matches(",v1=").count(), 2);
        // Our Stripe verifier (checked against Python's hmac) accepts it under either secret.
        for secret in ["whsec_new", "whsec_old"] {
            assert_eq!(
                crate::billing::signature::verify(
                    Some(&header),
                    body,
                    &[secret],
                    1_700_000_000,
                    300
                ),
                Ok(())
            );
        }
        assert!(crate::billing::signature::verify(
            Some(&header),
            b"{}",
            &["whsec_new"],
            1_700_000_000,
            300
        )
        .is_err());
    }
}
