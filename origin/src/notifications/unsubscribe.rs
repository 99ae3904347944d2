//! One-click unsubscribe links (RFC 8058): a token naming a user and a kind of email (or all of
//! them), signed with a key of this deployment, so the link works without signing in and cannot
//! be made for anyone else.
//!
//! Token: `base64url("{user}:{kind}")` `.` `base64url(HMAC-SHA256(key, "unsubscribe:{user}:{kind}")[..16])`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::Kind;

/// Longest token accepted (a user id is at most 64 characters).
pub const MAX_TOKEN: usize = 200;

/// What a link stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One kind's emails.
    Kind(Kind),
    /// Every notification email.
    All,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Kind(k) => k.as_str(),
            Self::All => "all",
        }
    }

    /// The kinds it covers.
    pub fn kinds(self) -> Vec<Kind> {
        match self {
            Self::Kind(k) => vec![k],
            Self::All => Kind::ALL.to_vec(),
        }
    }
}

fn mac(key: &[u8], user: &str, scope: &str) -> [u8; 32] {
    shared_wasm::hmac::sign(
        key,
        &[b"unsubscribe:", user.as_bytes(), b":", scope.as_bytes()],
    )
}

/// The token for `user` and `scope`.
pub fn token(key: &[u8], user: &str, scope: Scope) -> String {
    let scope = scope.as_str();
    let tag = mac(key, user, scope);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(format!("{user}:{scope}")),
        URL_SAFE_NO_PAD.encode(&tag[..16])
    )
}

/// The user and scope a genuine token names; `None` for anything else.
pub fn check(key: &[u8], token: &str) -> Option<(String, Scope)> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (claim, tag) = token.split_once('.')?;
    let claim = String::from_utf8(URL_SAFE_NO_PAD.decode(claim).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    // The user id holds no ':' (ids are letters, digits, '-' and '_'), the scope is the rest.
    let (user, scope) = claim.split_once(':')?;
    if tag.len() != 16
        || !shared_wasm::hmac::verify(
            key,
            &[b"unsubscribe:", user.as_bytes(), b":", scope.as_bytes()],
            &tag,
        )
    {
        return None;
    }
    let scope = match scope {
        "all" => Scope::All,
        k => Scope::Kind(Kind::parse(k)?),
    };
    Some((user.to_owned(), scope))
}

#[cfg(test)]
mod tests {
    use super::{check, token, Kind, Scope};

    #[test]
    fn a_token_names_its_user_and_scope_and_nothing_else_passes() {
        let key = [7u8; 32];
        let t = token(&key, "u_ada", Scope::Kind(Kind::NewVideo));
        assert_eq!(
            check(&key, &t),
            Some(("u_ada".into(), Scope::Kind(Kind::NewVideo)))
        );
        let all = token(&key, "u_ada", Scope::All);
        assert_eq!(check(&key, &all), Some(("u_ada".into(), Scope::All)));
        assert_eq!(check(&[8u8; 32], &t), None, "another deployment's key");
        // Another user's claim under this tag.
        let (_, tag) = t.split_once('.').unwrap();
        let forged = format!("{}.{tag}", base64_of("u_bob:new_video"));
        assert_eq!(check(&key, &forged), None);
        // A made-up kind, even signed.
        let (claim, _) = ("u_ada:everything", ());
        let signed = super::mac(&key, "u_ada", "everything");
        let odd = format!("{}.{}", base64_of(claim), base64_of_bytes(&signed[..16]));
        assert_eq!(check(&key, &odd), None);
        for bad in [
            "",
            ".",
            "x.y",
            &t[..t.len() - 1],
            &format!("{t}A"),
            &"A".repeat(300),
        ] {
            assert_eq!(check(&key, bad), None, "{bad}");
        }
    }

    fn base64_of(s: &str) -> String {
        base64_of_bytes(s.as_bytes())
    }

    fn base64_of_bytes(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }
}
