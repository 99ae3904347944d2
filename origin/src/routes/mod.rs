//! HTTP handlers, one module per area.

pub mod auth;
pub mod internal;
