//! Route handlers, one module per resource.

pub mod hls;
pub mod playback;
