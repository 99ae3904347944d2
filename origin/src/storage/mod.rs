//! Where sources and media live: a [`Store`] of objects named by keys, the local filesystem by
//! default ([`local::Local`]) or an S3-compatible bucket ([`s3::Bucket`]) for deployments
//! beyond one machine. Keys:
//! - `sources/{video}.{nonce}`: a complete upload (a new name per upload, so a losing upload
//!   never removes the winner's file);
//! - `media/{video}/…`: what the edge fetches (`master.m3u8`, `poster.jpg`, `{rendition}/…`).
//!
//! Every object appears whole or not at all (a rename, one S3 PUT, or a multipart upload, which
//! S3 shows only once it is complete), and a video's master playlist is always written last, so
//! its presence says the rest is there.

pub mod local;
pub mod s3;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use shared_wasm::VideoId;

use crate::settings::StorageSettings;

/// How much a streamed file read takes at a time.
const CHUNK: usize = 256 << 10;

/// Bytes as a store streams them.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// One object being read.
pub struct Object {
    /// Its size, when the store says.
    pub len: Option<u64>,
    /// Its bytes.
    pub body: ByteStream,
}

impl Object {
    /// All of it, read into memory: for small objects only.
    pub async fn bytes(self) -> std::io::Result<Vec<u8>> {
        use futures_util::TryStreamExt;
        let chunks: Vec<Bytes> = self.body.try_collect().await?;
        Ok(chunks.concat())
    }
}

/// A byte range of an object being read.
pub struct Ranged {
    /// The whole object's size.
    pub total: u64,
    /// The bytes `(first, last)` (inclusive) and their stream; `None` when the range does not
    /// overlap the object.
    pub part: Option<((u64, u64), ByteStream)>,
}

/// An object store. Keys are `/`-separated, without empty or dot segments.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Makes the complete local `file` the object `key` (the file is consumed). Readers see the
    /// old object or the whole new one.
    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()>;

    /// Replaces everything under `prefix/` with the files of `dir` (one level; `dir` is
    /// consumed), `last` written after all the others.
    async fn put_dir(&self, prefix: &str, dir: &Path, last: &str) -> anyhow::Result<()>;

    /// The object, to be streamed; `None` if there is no such key.
    async fn get(&self, key: &str) -> anyhow::Result<Option<Object>>;

    /// The bytes of the object that `range` names, to be streamed; `None` if there is no such
    /// key.
    async fn get_range(
        &self,
        key: &str,
        range: shared_wasm::range::Spec,
    ) -> anyhow::Result<Option<Ranged>>;

    /// A local file holding the object, for tools that need a path (ffmpeg): the object itself
    /// when the store is local, otherwise a copy fetched into `scratch` once (and reused).
    async fn fetch(&self, key: &str, scratch: &Path) -> anyhow::Result<PathBuf>;

    /// Removes one object (no error if absent).
    async fn delete(&self, key: &str) -> anyhow::Result<()>;

    /// Removes every object under `prefix/`.
    async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()>;
}

/// The store the settings name; an S3 bucket is made if it is missing.
pub async fn open(settings: &StorageSettings) -> anyhow::Result<Arc<dyn Store>> {
    let Some(s3) = &settings.s3 else {
        return Ok(Arc::new(local::Local::new(
            settings.media_dir.clone().into(),
            settings.upload_dir(),
        )));
    };
    let bucket = s3::Bucket::new(s3)?;
    bucket
        .create()
        .await
        .with_context(|| format!("bucket {} at {}", s3.bucket, s3.endpoint))?;
    Ok(Arc::new(bucket))
}

/// The key of one complete upload of `video`.
pub fn source_key(video: &VideoId) -> String {
    format!(
        "sources/{video}.{}",
        hex::encode(crate::keys::random_bytes::<8>())
    )
}

/// Where a video's media objects live: `media/{video}`.
pub fn media_prefix(video: &VideoId) -> String {
    format!("media/{video}")
}

/// Checks a key's shape: what the stores rely on to stay inside their root.
fn check_key(key: &str) -> anyhow::Result<()> {
    if key.is_empty()
        || key.len() > 512
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
    {
        anyhow::bail!("not a storage key: {key:?}");
    }
    Ok(())
}

/// The files of a folder to put under a prefix, `last` at the end.
async fn files_in(dir: &Path, last: &str) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .with_context(|| format!("reading {}", dir.display()))?;
    while let Some(e) = entries.next_entry().await? {
        if e.file_type().await?.is_file() {
            files.push((e.file_name().to_string_lossy().into_owned(), e.path()));
        }
    }
    files.sort_by(|a, b| (a.0 == last, &a.0).cmp(&(b.0 == last, &b.0)));
    if files.last().map(|f| f.0.as_str()) != Some(last) {
        anyhow::bail!("{} has no {last}", dir.display());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_their_root() {
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", "a\\b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key("media/v1/240p/seg_000.ts").is_ok());
    }

    #[tokio::test]
    async fn the_last_file_goes_last() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["seg_001.ts", "index.m3u8", "seg_000.ts"] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let names: Vec<String> = files_in(dir.path(), "index.m3u8")
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(names, ["seg_000.ts", "seg_001.ts", "index.m3u8"]);
        assert!(files_in(dir.path(), "master.m3u8").await.is_err());
    }
}
