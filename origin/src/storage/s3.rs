//! An S3-compatible bucket behind the [`Store`] trait, through the `object_store` crate:
//! path-style requests signed with SigV4, bounded retries with backoff, listing paged by the
//! library. What this module adds: the key check, multipart uploads for large objects, deletes
//! by prefix, and making the bucket (which `object_store` does not do).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::buffered::BufWriter;
use object_store::client::{
    HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector,
};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore,
    ObjectStoreExt, RetryConfig,
};
use shared_wasm::media::content_type;
use shared_wasm::range::Spec;
use tokio::io::AsyncWriteExt;

use super::{check_key, files_in, Object, Ranged, Store};
use crate::keys::random_bytes;
use crate::settings::S3Settings;

/// One bucket on one endpoint.
#[derive(Clone, Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    name: String,
    part_size: usize,
    upload_concurrency: usize,
    /// What [`Bucket::create`] signs and sends with.
    maker: Arc<Maker>,
}

#[derive(Debug)]
struct Maker {
    /// `{endpoint}/{bucket}`.
    url: String,
    region: String,
    credential: AwsCredential,
    client: HttpClient,
}

/// A request may rightly take long (a source streamed out to a slow reader, a large upload
/// being completed), so there is no overall timeout: instead, a response that sends nothing
/// this long while it is being read fails (and is retried if it may be).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

impl Bucket {
    /// The bucket `settings` name, with its keys (an error if they are missing).
    pub fn new(settings: &S3Settings) -> anyhow::Result<Self> {
        let name = &settings.bucket;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            bail!("bucket names are lower-case letters, digits, '-' and '.'");
        }
        let endpoint = settings.endpoint.trim_end_matches('/');
        let credential = settings.credentials()?;
        let client_options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout_disabled()
            .with_read_timeout(READ_TIMEOUT);
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(name)
            .with_region(&settings.region)
            .with_access_key_id(&credential.key_id)
            .with_secret_access_key(&credential.secret_key)
            .with_virtual_hosted_style_request(false)
            // `UNSIGNED-PAYLOAD`, as before: hashing every part for the signature costs CPU and
            // adds nothing TLS does not give.
            .with_unsigned_payload(true)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
            })
            .with_client_options(client_options.clone())
            .build()
            .context("storage.s3")?;
        Ok(Self {
            store: Arc::new(store),
            name: name.clone(),
            part_size: usize::try_from(settings.part_size_bytes)?,
            upload_concurrency: settings.upload_concurrency,
            maker: Arc::new(Maker {
                url: format!("{endpoint}/{name}"),
                region: settings.region.clone(),
                credential,
                client: ReqwestConnector::default().connect(&client_options)?,
            }),
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the bucket (succeeds if it is already there): one signed `PUT /{bucket}`, since
    /// `object_store` only works inside a bucket.
    pub async fn create(&self) -> anyhow::Result<()> {
        let m = &self.maker;
        let mut req = HttpRequest::new(HttpRequestBody::empty());
        *req.method_mut() = http::Method::PUT;
        *req.uri_mut() = m.url.parse()?;
        AwsAuthorizer::new(&m.credential, "s3", &m.region).try_authorize(&mut req, None)?;
        let resp = m.client.execute(req).await?;
        let status = resp.status();
        // 409: it exists (BucketAlreadyOwnedByYou; s3s-fs says BucketAlreadyExists to its owner
        // too). A bucket someone else owns then fails at the first write.
        if status.is_success() || status == http::StatusCode::CONFLICT {
            return Ok(());
        }
        let body = resp.into_body().bytes().await.unwrap_or_default();
        bail!(
            "create bucket: {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        )
    }

    /// Every key under the folder `prefix` (`""` for the whole bucket; a trailing `/` is
    /// optional), however many list pages that takes.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let prefix = ObjectPath::parse(prefix)?;
        Ok(self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| String::from(meta.location))
            .try_collect()
            .await?)
    }

    /// The ETag of `key` (`None` if there is no such object). A multipart upload's ends in
    /// `-{number of parts}`.
    pub async fn etag(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.store.head(&object_path(key)?).await {
            Ok(meta) => Ok(meta.e_tag),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The object path of `key`, once the key is checked.
fn object_path(key: &str) -> anyhow::Result<ObjectPath> {
    check_key(key)?;
    Ok(ObjectPath::parse(key)?)
}

#[async_trait::async_trait]
impl Store for Bucket {
    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        let path = object_path(key)?;
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            content_type(key)
                .unwrap_or("application/octet-stream")
                .into(),
        );
        // Up to one part is buffered and sent with one PUT; past that, parts go up
        // `upload_concurrency` at a time, and the object appears when the upload completes.
        let mut writer = BufWriter::with_capacity(self.store.clone(), path, self.part_size)
            .with_max_concurrency(self.upload_concurrency)
            .with_attributes(attributes);
        let f = tokio::fs::File::open(file).await?;
        // Large reads: with the default 4 KiB ones a 2 GiB put ran at a third of the speed.
        let mut chunks = tokio_util::io::ReaderStream::with_capacity(f, super::CHUNK);
        let written = async {
            while let Some(chunk) = chunks.next().await {
                writer.put(chunk?).await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = written {
            let _ = writer.abort().await; // its parts, if it had started sending them
            return Err(e.context(format!("putting {key}")));
        }
        // Sends what is buffered and completes the upload (aborting it if that fails).
        writer
            .shutdown()
            .await
            .with_context(|| format!("putting {key}"))?;
        tokio::fs::remove_file(file).await?;
        Ok(())
    }

    async fn put_dir(&self, prefix: &str, dir: &Path, last: &str) -> anyhow::Result<()> {
        let files = files_in(dir, last).await?;
        // A redone rendition may have fewer segments than the one it replaces.
        self.delete_prefix(prefix).await?;
        for (name, path) in files {
            self.put_file(&format!("{prefix}/{name}"), &path).await?;
        }
        let _ = tokio::fs::remove_dir_all(dir).await;
        Ok(())
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<Object>> {
        let got = match self.store.get(&object_path(key)?).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("getting {key}"))),
        };
        Ok(Some(Object {
            len: Some(got.meta.size),
            body: got.into_stream().map_err(std::io::Error::other).boxed(),
        }))
    }

    async fn get_range(&self, key: &str, range: Spec) -> anyhow::Result<Option<Ranged>> {
        // The size first, so the range is resolved here, as for a local file (one extra round
        // trip; object_store has no "suffix or 416" answer common to every service).
        let path = object_path(key)?;
        let total = match self.store.head(&path).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("sizing {key}"))),
        };
        let Some((first, last)) = range.resolve(total) else {
            return Ok(Some(Ranged { total, part: None }));
        };
        let options = GetOptions {
            range: Some(GetRange::Bounded(first..last + 1)),
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&path, options).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("getting {key}"))),
        };
        Ok(Some(Ranged {
            total,
            part: Some((
                (first, last),
                got.into_stream().map_err(std::io::Error::other).boxed(),
            )),
        }))
    }

    async fn fetch(&self, key: &str, scratch: &Path) -> anyhow::Result<PathBuf> {
        let dest = scratch.join(key.replace('/', "_"));
        if tokio::fs::metadata(&dest).await.is_ok() {
            return Ok(dest); // renamed into place only once whole
        }
        let mut obj = self
            .get(key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{key}: no such object"))?;
        tokio::fs::create_dir_all(scratch).await?;
        let tmp = scratch.join(format!(".fetch-{}", hex::encode(random_bytes::<6>())));
        let mut f = tokio::fs::File::create(&tmp).await?;
        let copied = async {
            while let Some(chunk) = obj.body.next().await {
                f.write_all(&chunk?).await?;
            }
            f.flush().await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.context(format!("fetching {key}")));
        }
        tokio::fs::rename(&tmp, &dest).await?;
        Ok(dest)
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&object_path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("deleting {key}"))),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()> {
        let prefix = object_path(prefix)?;
        // Listed whole before anything is deleted (a video's keys, a few thousand at most):
        // deleting while the next page is listed made s3s-fs, which walks its folders for each
        // page, fail on keys that vanished mid-walk.
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .with_context(|| format!("listing {prefix}/"))?;
        // 1,000 keys a request (DeleteObjects).
        self.store
            .delete_stream(futures_util::stream::iter(keys.into_iter().map(Ok)).boxed())
            .try_for_each(|_| std::future::ready(Ok(())))
            .await
            .with_context(|| format!("deleting {prefix}/"))
    }
}
