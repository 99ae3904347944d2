//! The `RateLimiter` Durable Object: one instance per rate-limit key, holding that key's GCRA
//! state. A Durable Object handles one event at a time and its input gate holds new events while
//! a storage operation is in flight, so concurrent requests on a key are strictly serialised:
//! a burst of N against a limit of L admits exactly L.

use std::cell::Cell;

use shared_wasm::ratelimit::{self, Quota};
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

const TAT: &str = "tat";

/// GCRA state for one key.
#[durable_object(fetch)]
pub struct RateLimiter {
    state: State,
    /// The TAT in milliseconds, cached after the first read from storage.
    tat: Cell<Option<f64>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            tat: Cell::new(None),
        }
    }

    /// `POST` with a JSON [`Quota`]; answers a JSON [`ratelimit::Decision`].
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let quota: Quota = req.json().await?;
        let stored = match self.tat.get() {
            Some(t) => Some(t),
            None => self.state.storage().get::<f64>(TAT).await?,
        };
        // Milliseconds since the epoch stay exact in an f64 (below 2^53), which is how the
        // storage API's structured clone keeps numbers.
        let now = Date::now().as_millis();
        let (decision, tat) = ratelimit::check(&quota, stored.map(|t| t as u64), now);
        if decision.allowed {
            self.tat.set(Some(tat as f64));
            self.state.storage().put(TAT, tat as f64).await?;
        }
        Response::from_json(&decision)
    }
}
