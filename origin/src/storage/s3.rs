//! A small client for S3-compatible object stores (path-style URLs, SigV4): what the platform
//! needs and no more — put a file (streamed), get an object (streamed), delete, list a prefix —
//! behind the [`Store`] trait.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use shared_wasm::media::content_type;
use tokio::io::AsyncWriteExt;

use super::sigv4::{self, Credentials};
use super::{check_key, files_in, Object, Store};
use crate::keys::random_bytes;

/// One bucket on one endpoint.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: reqwest::Client,
    /// `http://host:port`, no trailing slash.
    endpoint: String,
    host: String,
    name: String,
    creds: Credentials,
}

fn amz_date() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

impl Bucket {
    /// A bucket at `endpoint` (`http://127.0.0.1:9000`).
    pub fn new(endpoint: &str, name: &str, creds: Credentials) -> anyhow::Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let host = endpoint
            .split_once("://")
            .map(|(_, h)| h.to_owned())
            .context("the endpoint is not a URL")?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            bail!("bucket names are lower-case letters, digits, '-' and '.'");
        }
        Ok(Self {
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
            endpoint,
            host,
            name: name.to_owned(),
            creds,
        })
    }

    fn request(
        &self,
        method: reqwest::Method,
        key: &str,
        query: &str,
        content_sha256: &str,
    ) -> reqwest::RequestBuilder {
        let path = sigv4::encode_path(&if key.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{}/{key}", self.name)
        });
        let date = amz_date();
        let auth = sigv4::authorization(
            &self.creds,
            method.as_str(),
            &self.host,
            &path,
            query,
            content_sha256,
            &date,
        );
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        self.client
            .request(method, url)
            .header("x-amz-date", date)
            .header("x-amz-content-sha256", content_sha256)
            .header("authorization", auth)
    }

    async fn check(resp: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        bail!(
            "{what}: {status}: {}",
            body.chars().take(300).collect::<String>()
        )
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the bucket (succeeds if it is already there and ours).
    pub async fn create(&self) -> anyhow::Result<()> {
        let resp = self
            .request(reqwest::Method::PUT, "", "", &sigv4::payload_hash(b""))
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::CONFLICT {
            return Ok(()); // BucketAlreadyOwnedByYou
        }
        Self::check(resp, "create bucket").await.map(drop)
    }

    /// Every key under `prefix`, a ListObjectsV2 page (up to 1,000) at a time.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // Parameters in the canonical (sorted) order SigV4 signs them in.
            let mut query = String::new();
            if let Some(t) = &token {
                query.push_str(&format!("continuation-token={}&", query_value(t)));
            }
            query.push_str(&format!("list-type=2&prefix={}", query_value(prefix)));
            let resp = self
                .request(reqwest::Method::GET, "", &query, &sigv4::payload_hash(b""))
                .send()
                .await?;
            let xml = Self::check(resp, "list objects").await?.text().await?;
            keys.extend(
                xml.split("<Key>")
                    .skip(1)
                    .filter_map(|s| s.split("</Key>").next())
                    .map(unescape),
            );
            token = xml
                .contains("<IsTruncated>true</IsTruncated>")
                .then(|| between(&xml, "<NextContinuationToken>", "</NextContinuationToken>"))
                .flatten()
                .map(unescape);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

fn query_value(s: &str) -> String {
    sigv4::encode_path(s).replace('/', "%2F")
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let rest = s.split_once(open)?.1;
    Some(rest.split_once(close)?.0)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[async_trait::async_trait]
impl Store for Bucket {
    async fn put_file(&self, key: &str, file: &Path) -> anyhow::Result<()> {
        check_key(key)?;
        let content_type = content_type(key).unwrap_or("application/octet-stream");
        let f = tokio::fs::File::open(file).await?;
        let len = f.metadata().await?.len();
        // Streamed: its bytes are not hashed up front (`UNSIGNED-PAYLOAD`).
        // Large reads: with the default 4 KiB ones a 2 GiB put ran at a third of the speed.
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            f,
            super::CHUNK,
        ));
        let resp = self
            .request(reqwest::Method::PUT, key, "", sigv4::UNSIGNED)
            .header("content-type", content_type)
            .header("content-length", len)
            .body(body)
            .send()
            .await?;
        Self::check(resp, "put object").await?;
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
        check_key(key)?;
        let resp = self
            .request(reqwest::Method::GET, key, "", &sigv4::payload_hash(b""))
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = Self::check(resp, "get object").await?;
        Ok(Some(Object {
            len: resp.content_length(),
            body: resp.bytes_stream().map_err(std::io::Error::other).boxed(),
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
        check_key(key)?;
        let resp = self
            .request(reqwest::Method::DELETE, key, "", &sigv4::payload_hash(b""))
            .send()
            .await?;
        Self::check(resp, "delete object").await.map(drop)
    }

    async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()> {
        check_key(prefix)?;
        for key in self.list(&format!("{prefix}/")).await? {
            self.delete(&key).await?;
        }
        Ok(())
    }
}
