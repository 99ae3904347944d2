//! The platform-neutral core shared by the edge (Cloudflare Workers, Spin) and the origin.
//!
//! Nothing in here performs I/O or reads a clock: time, keys and stored bytes come in as
//! arguments, so every rule is testable on the host with fixed inputs and the same code runs on
//! `wasm32-unknown-unknown`, `wasm32-wasip2` and native targets.

pub mod ads;
pub mod beacon;
pub mod cursor;
pub mod edge_auth;
pub mod geo;
pub mod hmac;
pub mod ids;
pub mod jwk;
pub mod jwt;
pub mod kv_sweep;
pub mod markup;
pub mod media;
pub mod playback;
pub mod range;
pub mod ratelimit;
pub mod record;
pub mod search;
pub mod static_site;
pub mod sync;

pub use ids::{CountryCode, Kid, RequestId, UnixTime, VideoId};
