//! HTTP handlers, one module per area.

pub mod account;
pub mod admin;
pub mod auth;
pub mod billing;
pub mod catalog;
pub mod channels;
pub mod feeds;
pub mod fields;
pub mod internal;
pub mod social;
pub mod text;
pub mod transcode;
pub mod tus;
pub mod uploads;
pub mod videos;
