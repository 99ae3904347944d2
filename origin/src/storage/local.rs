//! The default store: folders on this machine. `media/…` keys live under `storage.media_dir`,
//! every other key under `storage.upload_dir` (never served). Objects appear by rename.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use shared_wasm::range::Spec;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{check_key, files_in, Object, Ranged, Store};

/// Folders on this machine.
#[derive(Debug, Clone)]
pub struct Local {
    media_dir: PathBuf,
    upload_dir: PathBuf,
}

impl Local {
    /// A store over these two folders.
    pub fn new(media_dir: PathBuf, upload_dir: PathBuf) -> Self {
        Self {
            media_dir,
            upload_dir,
        }
    }

    /// Where `key` is on disk.
    pub fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        check_key(key)?;
        Ok(match key.strip_prefix("media/") {
            Some(rest) => self.media_dir.join(rest),
            None => self.upload_dir.join(key),
        })
    }
}

/// Moves `src` (a file or a folder of files) to `dest` in one rename. When they are on
/// different filesystems (the upload and media folders may be separate mounts), it is copied
/// beside `dest` under a dot-name first (no media path can name it) and renamed from there.
async fn move_into(src: &Path, dest: &Path) -> std::io::Result<()> {
    match tokio::fs::rename(src, dest).await {
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {}
        done => return done,
    }
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let staged = dest.with_file_name(format!(
        ".in-{name}-{}",
        hex::encode(crate::keys::random_bytes::<6>())
    ));
    let is_dir = tokio::fs::metadata(src).await?.is_dir();
    let copied = async {
        if is_dir {
            tokio::fs::create_dir(&staged).await?;
            let mut entries = tokio::fs::read_dir(src).await?;
            while let Some(e) = entries.next_entry().await? {
                tokio::fs::copy(e.path(), staged.join(e.file_name())).await?;
            }
        } else {
            tokio::fs::copy(src, &staged).await?;
        }
        tokio::fs::rename(&staged, dest).await
    }
    .await;
    if copied.is_err() {
        let _ = tokio::fs::remove_dir_all(&staged).await;
        let _ = tokio::fs::remove_file(&staged).await;
        return copied;
    }
    if is_dir {
        tokio::fs::remove_dir_all(src).await
    } else {
        tokio::fs::remove_file(src).await
    }
}

async fn remove_dir(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl Store for Local {
    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        let dest = self.path(key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        move_into(file, &dest).await?;
        Ok(())
    }

    async fn put_dir(&self, prefix: &str, dir: &Path, last: &str) -> anyhow::Result<()> {
        files_in(dir, last).await?; // the same check the S3 store makes
        let dest = self.path(prefix)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // One rename moves the whole folder in: what was there before goes first.
        remove_dir(&dest).await?;
        move_into(dir, &dest).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<Object>> {
        let f = match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = f.metadata().await?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(Object {
            len: Some(meta.len()),
            body: ReaderStream::with_capacity(f, super::CHUNK).boxed(),
        }))
    }

    async fn get_range(&self, key: &str, range: Spec) -> anyhow::Result<Option<Ranged>> {
        let Some(obj) = self.get(key).await? else {
            return Ok(None);
        };
        let total = obj.len.unwrap_or_default();
        let Some((first, last)) = range.resolve(total) else {
            return Ok(Some(Ranged { total, part: None }));
        };
        drop(obj);
        let mut f = tokio::fs::File::open(self.path(key)?).await?;
        f.seek(std::io::SeekFrom::Start(first)).await?;
        let body = ReaderStream::with_capacity(f.take(last - first + 1), super::CHUNK).boxed();
        Ok(Some(Ranged {
            total,
            part: Some(((first, last), body)),
        }))
    }

    async fn fetch(&self, key: &str, _scratch: &Path) -> anyhow::Result<PathBuf> {
        let path = self.path(key)?;
        tokio::fs::metadata(&path)
            .await
            .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        Ok(path)
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()> {
        Ok(remove_dir(&self.path(prefix)?).await?)
    }
}
