//! The keys that sign access tokens (EdDSA / Ed25519), kept in the database so every process of
//! a region signs with the same one, and published as a JWKS for the edge.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{TimeZone, Utc};
use ed25519_dalek::SigningKey;
use jwt_compact::alg::Ed25519;
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde::Serialize;
use serde_json::json;
use shared_wasm::jwt::Role;
use sqlx::AnyPool;

use crate::clock::now;
use crate::settings::AuthSettings;

/// The active signing key and every key still published.
pub struct SigningKeys {
    active_kid: String,
    active: SigningKey,
    published: Vec<(String, ed25519_dalek::VerifyingKey)>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("active_kid", &self.active_kid)
            .finish_non_exhaustive()
    }
}

fn new_kid() -> String {
    format!("ed-{}", URL_SAFE_NO_PAD.encode(random_bytes::<6>()))
}

/// The 32-byte secret stored as `name` (made at random the first time, by whichever process
/// asks first): keys every process of a region shares.
pub async fn stored_secret(db: &AnyPool, name: &str) -> anyhow::Result<[u8; 32]> {
    sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(name)
        .bind(random_bytes::<32>().to_vec())
        .execute(db)
        .await?;
    let key: Vec<u8> = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_one(db)
        .await?;
    key.try_into()
        .map_err(|_| anyhow::anyhow!("the stored secret {name} is not 32 bytes"))
}

/// Random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    b
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    role: Role,
    jti: &'a str,
    region: &'a str,
}

impl SigningKeys {
    /// Loads the keys, creating the first one if there is none.
    pub async fn load_or_create(db: &AnyPool) -> anyhow::Result<Self> {
        // Inserts only when there is no active key, which also keeps two processes starting at
        // once from both adding one.
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, secret, active, created_at)
             SELECT $1, 'EdDSA', $2, 1, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE active = 1)",
        )
        .bind(new_kid())
        .bind(random_bytes::<32>().to_vec())
        .bind(now() as i64)
        .execute(db)
        .await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            kid: String,
            secret: Vec<u8>,
            active: i64,
        }
        let rows: Vec<Row> =
            sqlx::query_as("SELECT kid, secret, active FROM signing_keys ORDER BY created_at")
                .fetch_all(db)
                .await?;
        let mut active = None;
        let mut published = Vec::new();
        for Row {
            kid,
            secret,
            active: is_active,
        } in rows
        {
            let bytes: [u8; 32] = secret
                .try_into()
                .map_err(|_| anyhow::anyhow!("signing key {kid} is not 32 bytes"))?;
            let sk = SigningKey::from_bytes(&bytes);
            published.push((kid.clone(), sk.verifying_key()));
            if is_active == 1 {
                active = Some((kid, sk));
            }
        }
        let (active_kid, active) =
            active.ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
        Ok(Self {
            active_kid,
            active,
            published,
        })
    }

    /// Makes a new key the active one. The previous key stays published, so tokens it signed
    /// keep verifying until they expire; running processes pick the new key up when they
    /// restart (`origin rotate-signing-key`, then a rolling restart).
    pub async fn rotate(db: &AnyPool) -> anyhow::Result<String> {
        let kid = new_kid();
        let mut tx = crate::db::begin_write(db).await?;
        sqlx::query("UPDATE signing_keys SET active = 0, deactivated_at = $1 WHERE active = 1")
            .bind(now() as i64)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, secret, active, created_at)
             VALUES ($1, 'EdDSA', $2, 1, $3)",
        )
        .bind(&kid)
        .bind(random_bytes::<32>().to_vec())
        .bind(now() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(kid)
    }

    /// Removes inactive keys from the JWKS, which kills every token they signed. Only keys
    /// deactivated at least `min_age_secs` ago go (pass the access-token lifetime so no live
    /// token is killed, or 0 to retire at once after a compromise). Returns the retired kids.
    pub async fn retire(db: &AnyPool, min_age_secs: u64) -> anyhow::Result<Vec<String>> {
        let cutoff = now().saturating_sub(min_age_secs) as i64;
        let kids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM signing_keys WHERE active = 0 AND deactivated_at <= $1 RETURNING kid",
        )
        .bind(cutoff)
        .fetch_all(db)
        .await?;
        Ok(kids)
    }

    /// The JWKS document (public keys only).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .published
            .iter()
            .map(|(kid, vk)| {
                let mut jwk = serde_json::to_value(JsonWebKey::from(vk)).expect("JWK serializes");
                let obj = jwk.as_object_mut().expect("JWK is an object");
                obj.insert("kid".into(), json!(kid));
                obj.insert("alg".into(), json!("EdDSA"));
                obj.insert("use".into(), json!("sig"));
                jwk
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Issues an access token for a session (its id is the token's `jti`, so revoking the
    /// session refuses every token it got); returns it with its lifetime in seconds.
    pub fn issue(
        &self,
        auth: &AuthSettings,
        user_id: &str,
        role: Role,
        session_id: &str,
        home_region: &str,
    ) -> anyhow::Result<(String, u64)> {
        let now = now();
        let mut claims = Claims::new(IssuedClaims {
            iss: &auth.issuer,
            aud: &auth.audience,
            sub: user_id,
            role,
            jti: session_id,
            region: home_region,
        });
        claims.issued_at = Utc.timestamp_opt(now as i64, 0).single();
        claims.expiration = Utc
            .timestamp_opt((now + auth.access_ttl_secs) as i64, 0)
            .single();
        let header = Header::empty()
            .with_key_id(&self.active_kid)
            .with_token_type("JWT");
        let token = Ed25519.token(&header, &claims, &self.active)?;
        Ok((token, auth.access_ttl_secs))
    }
}
