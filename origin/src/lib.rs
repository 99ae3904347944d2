//! The regional origin: issues access tokens, keeps video records and media, and serves both to
//! the edge only.

pub mod ads;
pub mod analytics;
pub mod billing;
pub mod caller;
pub mod catalog;
pub mod channels;
pub mod clock;
pub mod container;
pub mod db;
pub mod demo;
pub mod earnings;
pub mod entitlements;
pub mod error;
pub mod feeds;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod moderation;
pub mod notifications;
pub mod outbox;
pub mod passwords;
pub mod routes;
pub mod sessions;
pub mod settings;
pub mod social;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod transcode;
pub mod uploads;
pub mod users;
pub mod videos;
pub mod webhooks;
