//! Confirming an email address: a link sent to it, followed. Notification emails go only to
//! confirmed addresses, so an account made with someone else's address cannot send them mail.
//!
//! Token: `base64url("{user}:{expires}")` `.` `base64url(HMAC-SHA256(key,
//! "confirm-email:{user}:{address}:{expires}")[..16])`: bound to the address it was sent to (a
//! changed address makes it worthless) and valid for [`VALID_SECS`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sqlx::AnyPool;

/// How long a confirmation link works.
pub const VALID_SECS: u64 = 24 * 3600;
/// Longest token accepted.
pub const MAX_TOKEN: usize = 200;

fn parts<'a>(user: &'a str, address: &'a str, expires: &'a str) -> [&'a [u8]; 6] {
    [
        b"confirm-email:",
        user.as_bytes(),
        b":",
        address.as_bytes(),
        b":",
        expires.as_bytes(),
    ]
}

/// The token confirming `address` for `user`, valid until `now + VALID_SECS`.
pub fn token(key: &[u8], user: &str, address: &str, now: u64) -> String {
    let expires = (now + VALID_SECS).to_string();
    let tag = shared_wasm::hmac::sign(key, &parts(user, address, &expires));
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(format!("{user}:{expires}")),
        URL_SAFE_NO_PAD.encode(&tag[..16])
    )
}

/// Why a token does not confirm.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not one of ours, or for an address the account no longer has.
    Invalid,
    /// Past its time: ask for a new link.
    Expired,
}

/// Confirms the address a genuine, unexpired `token` was sent to, if the account still has it;
/// the user confirmed.
pub async fn confirm(
    db: &AnyPool,
    key: &[u8],
    token: &str,
    now: u64,
) -> anyhow::Result<Result<String, Refused>> {
    let Some((user, expires, tag)) = parse(token) else {
        return Ok(Err(Refused::Invalid));
    };
    let address: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(&user)
        .fetch_optional(db)
        .await?;
    let genuine = address.is_some_and(|a| {
        shared_wasm::hmac::verify(key, &parts(&user, &a, &expires.to_string()), &tag)
    });
    if !genuine {
        return Ok(Err(Refused::Invalid));
    }
    if expires < now {
        return Ok(Err(Refused::Expired));
    }
    sqlx::query(
        "UPDATE users SET email_confirmed_at = $1 WHERE id = $2 AND email_confirmed_at IS NULL",
    )
    .bind(now as i64)
    .bind(&user)
    .execute(db)
    .await?;
    Ok(Ok(user))
}

fn parse(token: &str) -> Option<(String, u64, Vec<u8>)> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (claim, tag) = token.split_once('.')?;
    let claim = String::from_utf8(URL_SAFE_NO_PAD.decode(claim).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let (user, expires) = claim.rsplit_once(':')?;
    (tag.len() == 16).then_some(())?;
    Some((user.to_owned(), expires.parse().ok()?, tag))
}
