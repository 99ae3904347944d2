//! Route handlers, one module per resource.

pub mod api;
pub mod hls;
pub mod playback;
pub mod sync;
