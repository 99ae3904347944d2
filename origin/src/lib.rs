//! The regional origin: issues access tokens, keeps video records and media, and serves both to
//! the edge only.

pub mod clock;
pub mod db;
pub mod demo;
pub mod error;
pub mod keys;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod users;
pub mod videos;
