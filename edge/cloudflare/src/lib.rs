//! Cloudflare Workers adapter. The Worker's entry is a small JS shell (`shell.js`) that carries
//! out I/O commands; this crate is the other half: [`driver`] runs the edge app against
//! [`edge_app::Platform`] by issuing those commands, and `exports` is what the shell calls. No
//! business logic lives in either half.

pub mod driver;
#[cfg(target_arch = "wasm32")]
mod exports;
