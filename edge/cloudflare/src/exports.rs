//! What the shell calls (wasm-bindgen exports), and the runtime functions the driver calls
//! synchronously. Exchanges are kept here by the number the shell gave them.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use edge_app::EdgeConfig;
use shared_wasm::ratelimit::{self, Quota};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::driver::{self, Answer, Exchange, Step, Sys};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
    /// Web Crypto's `crypto.getRandomValues`, which workerd provides to every Worker.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<(), JsValue>;
}

/// Random bytes come from a pool that `crypto.getRandomValues` refills (`driver::draw`).
fn random(buf: &mut [u8]) -> Result<(), String> {
    let fill = |b: &mut [u8]| get_random_values(b).map_err(|e| format!("{e:?}"));
    POOL.with(|pool| driver::draw(&mut pool.borrow_mut(), buf, fill))
}

static SYS: Sys = Sys {
    now_ms: date_now,
    random,
    log: console_error,
};

thread_local! {
    /// Settings, each section read once per isolate: an isolate serves one deployment version,
    /// whose vars and secrets do not change under it.
    static CONFIG: OnceCell<EdgeConfig> = const { OnceCell::new() };
    static EXCHANGES: RefCell<HashMap<u32, Exchange>> = RefCell::default();
    /// The last step's bytes, until the shell takes them (before it calls in again).
    static PAYLOAD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Random bytes not yet handed out (`random`).
    static POOL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Keeps the Worker's `env` (as JSON: vars and secrets are its strings) as the isolate's
/// settings, each section read on first use, and logs panics. The shell calls this before the
/// first `begin`.
#[wasm_bindgen]
pub fn configure(env: &str) {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("edge panic: {info}"))
    }));
    let env: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(env).unwrap_or_default();
    let config = EdgeConfig::new(move |name| env.get(name)?.as_str().map(str::to_owned));
    CONFIG.with(|c| {
        c.get_or_init(|| config);
    });
}

/// Starts exchange `id` for the request whose head the shell read (see `driver::Exchange`),
/// and returns its first commands.
#[wasm_bindgen]
pub fn begin(id: u32, head: &str) -> String {
    let Some(config) = CONFIG.with(|c| c.get().cloned()) else {
        console_error("edge: a request came before the settings were read");
        return hand_over(driver::failure(), None);
    };
    // Exchanges whose requests workerd cancelled are never answered: they go here, dropped
    // once out of the map (their futures' drops may reach other thread-locals).
    let now = date_now();
    let abandoned: Vec<Exchange> = EXCHANGES.with(|e| {
        let mut e = e.borrow_mut();
        let ids: Vec<u32> = e
            .iter()
            .filter(|(_, x)| x.abandoned(now))
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| e.remove(id)).collect()
    });
    drop(abandoned);
    let mut exchange = Exchange::begin(head, config, &SYS);
    let step = exchange.step();
    hand_over(step, Some((id, exchange)))
}

/// Answers command `tag` of exchange `id` and returns the commands that follow. An exchange
/// that is not known (lost to a reset after a crash) answers a 500 and ends.
#[wasm_bindgen]
pub fn resume(
    id: u32,
    tag: u32,
    ok: bool,
    num: f64,
    text: Option<String>,
    bytes: Option<Vec<u8>>,
) -> String {
    let Some(mut exchange) = EXCHANGES.with(|e| e.borrow_mut().remove(&id)) else {
        return hand_over(driver::failure(), None);
    };
    exchange.answer(
        tag,
        Answer {
            ok,
            num,
            text,
            bytes,
        },
    );
    let step = exchange.step();
    hand_over(step, Some((id, exchange)))
}

/// The bytes the last commands' ranges point into.
#[wasm_bindgen]
pub fn payload() -> Vec<u8> {
    PAYLOAD.with(|p| p.take())
}

/// The answer for a request whose step failed (the shell reset the instance after a trap).
#[wasm_bindgen]
pub fn failed() -> String {
    hand_over(driver::failure(), None)
}

/// The `RateLimiter` Durable Object's decision for one request under a quota of `limit`
/// requests per `window_secs`, given the stored theoretical arrival time (ms): the numbers of
/// [`driver::limiter_answer`].
#[wasm_bindgen]
pub fn limit(
    limit: u32,
    window_secs: u32,
    stored: Option<f64>,
    now_ms: f64,
) -> Result<Vec<f64>, String> {
    // The name only labels header fields, which the Worker writes, not the limiter.
    let quota = Quota::new("limiter", limit, window_secs).map_err(|e| e.to_string())?;
    // Milliseconds since the epoch stay exact in an f64 (below 2^53), which is how the storage
    // API's structured clone keeps numbers.
    let (decision, tat) = ratelimit::check(&quota, stored.map(|t| t as u64), now_ms as u64);
    let tat = decision.allowed.then_some(tat);
    Ok(driver::limiter_answer(&decision, tat))
}

/// Keeps the step's bytes for `payload`, keeps the exchange unless it ended, and returns the
/// commands.
fn hand_over(step: Step, exchange: Option<(u32, Exchange)>) -> String {
    PAYLOAD.with(|p| *p.borrow_mut() = step.payload);
    if let Some((id, exchange)) = exchange.filter(|_| !step.ended) {
        EXCHANGES.with(|e| e.borrow_mut().insert(id, exchange));
    }
    step.commands
}
