//! Route handlers, one module per resource.

pub mod ads;
pub mod api;
pub mod beacons;
pub mod feeds;
pub mod hls;
pub mod pages;
pub mod playback;
pub mod ranged;
pub mod session;
pub mod subscriptions;
pub mod sync;
