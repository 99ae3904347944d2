//! Creator uploads: signed single-use tickets, a plain `PUT` for small files and the tus 1.0
//! protocol for resumable ones, bytes streamed to disk (memory stays flat) and made visible
//! only when complete (a rename), abandoned partial uploads swept after their expiry, and each
//! creator's open uploads and the disk's free space bounded.

pub mod quota;
pub mod store;
pub mod sweep;
pub mod ticket;
