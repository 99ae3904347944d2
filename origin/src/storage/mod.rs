//! Where sources and media live: the local filesystem by default, or an S3-compatible object
//! store for deployments beyond one machine. (Work in progress: the signer and the object
//! client; the upload and transcoding paths still use local folders.)

pub mod sigv4;
