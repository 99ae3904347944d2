//! Upload tickets: the signed part of an upload URL, like an S3 presigned URL. A ticket binds
//! the video, the expiry, the largest size and the allowed content types under an HMAC with the
//! origin's own upload key; its nonce makes it single use (a row marked when an upload starts).
//!
//! Format (one URL path segment): `v1.{video}.{expires}.{max_bytes}.{types}.{nonce}.{sig}`,
//! `types` joined by `+` from [`TYPES`], `sig` = base64url(HMAC-SHA256(key, everything before
//! `.{sig}`)).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shared_wasm::VideoId;

/// The content types an upload may have, by their short names in a ticket.
pub const TYPES: [(&str, &str); 5] = [
    ("mp4", "video/mp4"),
    ("mov", "video/quicktime"),
    ("webm", "video/webm"),
    ("mkv", "video/x-matroska"),
    ("ts", "video/mp2t"),
];

/// A verified ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The video the upload is for.
    pub video: VideoId,
    /// Unix seconds after which it is refused (410).
    pub expires_at: u64,
    /// Largest upload (413 above).
    pub max_bytes: u64,
    /// Allowed content types (415 otherwise), as MIME types.
    pub types: Vec<&'static str>,
    /// Single-use token.
    pub nonce: String,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a ticket, or the signature does not hold (403).
    Forged,
    /// Past its expiry (410).
    Expired,
}

fn tag(key: &[u8], signed: &str) -> [u8; 32] {
    shared_wasm::hmac::sign(key, &[b"upload-ticket-v1|", signed.as_bytes()])
}

/// Makes a ticket.
pub fn issue(key: &[u8], t: &Ticket) -> String {
    let types: Vec<&str> = t
        .types
        .iter()
        .filter_map(|m| TYPES.iter().find(|(_, mime)| mime == m).map(|(s, _)| *s))
        .collect();
    let signed = format!(
        "v1.{}.{}.{}.{}.{}",
        t.video,
        t.expires_at,
        t.max_bytes,
        types.join("+"),
        t.nonce
    );
    let sig = URL_SAFE_NO_PAD.encode(tag(key, &signed));
    format!("{signed}.{sig}")
}

/// Checks a ticket's signature, then its expiry.
pub fn verify(key: &[u8], token: &str, now: u64) -> Result<Ticket, Refusal> {
    if token.len() > 512 {
        return Err(Refusal::Forged);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(Refusal::Forged)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Refusal::Forged)?;
    if !shared_wasm::hmac::verify(key, &[b"upload-ticket-v1|", signed.as_bytes()], &sig)
        || sig.len() != 32
    {
        return Err(Refusal::Forged);
    }
    // Signed by us: the fields are well formed unless the format changed under the key.
    let parts: Vec<&str> = signed.split('.').collect();
    let [version, video, expires, max, types, nonce] = parts[..] else {
        return Err(Refusal::Forged);
    };
    if version != "v1" {
        return Err(Refusal::Forged);
    }
    let ticket = Ticket {
        video: VideoId::parse(video).map_err(|_| Refusal::Forged)?,
        expires_at: expires.parse().map_err(|_| Refusal::Forged)?,
        max_bytes: max.parse().map_err(|_| Refusal::Forged)?,
        types: types
            .split('+')
            .map(|s| {
                TYPES
                    .iter()
                    .find(|(short, _)| *short == s)
                    .map(|(_, m)| *m)
                    .ok_or(Refusal::Forged)
            })
            .collect::<Result<_, _>>()?,
        nonce: nonce.to_owned(),
    };
    if now >= ticket.expires_at {
        return Err(Refusal::Expired);
    }
    Ok(ticket)
}

/// Writes down a ticket's nonce as issued (unused), so that [`consume`] can mark it.
pub async fn record_issued(db: &sqlx::AnyPool, t: &Ticket) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO upload_tickets (nonce, video_id, expires_at) VALUES ($1, $2, $3)")
        .bind(&t.nonce)
        .bind(t.video.as_str())
        .bind(t.expires_at as i64)
        .execute(db)
        .await
        .map(drop)
}

/// Marks the ticket used; false if it was used already (or never issued).
pub async fn consume(conn: &mut sqlx::AnyConnection, t: &Ticket) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE upload_tickets SET used_at = $1 WHERE nonce = $2 AND video_id = $3 AND used_at IS NULL",
    )
    .bind(crate::clock::now() as i64)
    .bind(&t.nonce)
    .bind(t.video.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            video: VideoId::parse("v_abc").unwrap(),
            expires_at: 1000,
            max_bytes: 5 << 20,
            types: vec!["video/mp4", "video/webm"],
            nonce: "n0nce".into(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = [7u8; 32];
        let token = issue(&key, &ticket());
        assert_eq!(verify(&key, &token, 999), Ok(ticket()));
        assert_eq!(verify(&key, &token, 1000), Err(Refusal::Expired));
        assert_eq!(verify(&[8u8; 32], &token, 999), Err(Refusal::Forged));
        // Any change to a bound field breaks the signature.
        for (from, to) in [
            ("5242880", "9242880"),
            ("mp4+webm", "mp4+mkv"),
            ("v_abc", "v_abd"),
        ] {
            let bent = token.replacen(from, to, 1);
            assert_ne!(bent, token);
            assert_eq!(verify(&key, &bent, 999), Err(Refusal::Forged), "{from}");
        }
        assert_eq!(verify(&key, "garbage", 0), Err(Refusal::Forged));
    }
}
