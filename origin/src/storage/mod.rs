//! Object storage for deployments beyond one machine: a SigV4 signer and a client for
//! S3-compatible stores, tested against a real one (`s3s-fs`). Not wired in yet: uploads,
//! transcoding and `/internal/media` still use the local folders of `storage`.

pub mod s3;
pub mod sigv4;
