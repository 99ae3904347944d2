//! Access-token signatures checked by workerd's WebCrypto (`crypto.subtle`): EdDSA as
//! `Ed25519`, ES256 as `ECDSA` on P-256 with SHA-256. The policy around the check (algorithm
//! allow-list, `kid`, sizes, claims) stays in Rust (`shared_wasm::jwt`); only the signature
//! arithmetic runs here.
//!
//! Each key is imported once per isolate and kept by `kid` together with its bytes, so a key
//! rotated under the same `kid` is imported afresh. The cache is borrowed only between awaits:
//! a request that panics or is cancelled mid-check leaves it usable for the next one.

use std::cell::RefCell;

use edge_app::PlatformError;
use js_sys::{Object, Promise, Reflect};
use shared_wasm::jwk::{PublicKey, VerifyingKey};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn import_key(
        format: &str,
        key_data: &[u8],
        algorithm: &JsValue,
        extractable: bool,
        usages: &JsValue,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Promise, JsValue>;
}

/// The algorithm objects, built once per isolate.
struct Algorithms {
    ed25519: JsValue,
    ecdsa_import: JsValue,
    ecdsa_verify: JsValue,
    usages: JsValue,
}

fn object(pairs: &[(&str, &str)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        // Setting a plain property on a fresh object cannot fail.
        let _ = Reflect::set(&o, &(*k).into(), &(*v).into());
    }
    o.into()
}

impl Algorithms {
    fn new() -> Self {
        let usages = js_sys::Array::of1(&"verify".into());
        Self {
            ed25519: object(&[("name", "Ed25519")]),
            ecdsa_import: object(&[("name", "ECDSA"), ("namedCurve", "P-256")]),
            ecdsa_verify: object(&[("name", "ECDSA"), ("hash", "SHA-256")]),
            usages: usages.into(),
        }
    }
}

struct Cached {
    kid: String,
    key: PublicKey,
    crypto_key: JsValue,
}

thread_local! {
    static ALGORITHMS: Algorithms = Algorithms::new();
    /// Imported keys, by `kid` and bytes: as many as the JWKS has keys.
    static KEYS: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

fn cached(kid: &str, key: &PublicKey) -> Option<JsValue> {
    KEYS.with(|keys| {
        keys.try_borrow().ok().and_then(|keys| {
            keys.iter()
                .find(|c| c.kid == kid && c.key == *key)
                .map(|c| c.crypto_key.clone())
        })
    })
}

fn remember(kid: &str, key: PublicKey, crypto_key: &JsValue) {
    KEYS.with(|keys| {
        if let Ok(mut keys) = keys.try_borrow_mut() {
            keys.retain(|c| c.kid != kid);
            keys.push(Cached {
                kid: kid.to_owned(),
                key,
                crypto_key: crypto_key.clone(),
            });
        }
    });
}

fn js_err(what: &str, e: JsValue) -> PlatformError {
    PlatformError::crypto(format_args!("{what}: {e:?}"))
}

async fn import(kid: &str, key: PublicKey) -> Result<JsValue, PlatformError> {
    if let Some(k) = cached(kid, &key) {
        return Ok(k);
    }
    let promise = ALGORITHMS.with(|a| {
        let alg = match key {
            PublicKey::Ed25519(_) => &a.ed25519,
            PublicKey::P256(_) => &a.ecdsa_import,
        };
        import_key("raw", key.as_bytes(), alg, false, &a.usages)
    });
    let crypto_key = JsFuture::from(promise.map_err(|e| js_err("importKey", e))?)
        .await
        .map_err(|e| js_err("importKey", e))?;
    remember(kid, key, &crypto_key);
    Ok(crypto_key)
}

/// Does `signature` verify `message` under `key`? See `Platform::verify_signature`.
pub async fn verify(
    kid: &str,
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, PlatformError> {
    let Some(public) = key.public_key() else {
        // HS256 is checked in Rust and never reaches the platform.
        return Ok(false);
    };
    // Both JWS encodings are exactly 64 bytes (Ed25519's R‖S, ES256's r‖s); anything else is a
    // refusal, not a question for WebCrypto.
    if signature.len() != 64 {
        return Ok(false);
    }
    let crypto_key = import(kid, public).await?;
    let promise = ALGORITHMS.with(|a| {
        let alg = match public {
            PublicKey::Ed25519(_) => &a.ed25519,
            PublicKey::P256(_) => &a.ecdsa_verify,
        };
        subtle_verify(alg, &crypto_key, signature, message)
    });
    let answer = JsFuture::from(promise.map_err(|e| js_err("verify", e))?)
        .await
        .map_err(|e| js_err("verify", e))?;
    Ok(answer.as_bool() == Some(true))
}
