//! A small client for S3-compatible object stores (path-style URLs, SigV4): what the platform
//! needs and no more — put a file (streamed), get an object (streamed), delete, list a prefix.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use super::sigv4::{self, Credentials};

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

    /// Uploads a file, streamed (its bytes are not hashed up front: `UNSIGNED-PAYLOAD`).
    pub async fn put_file(&self, key: &str, file: &Path, content_type: &str) -> anyhow::Result<()> {
        let f = tokio::fs::File::open(file).await?;
        let len = f.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f));
        let resp = self
            .request(reqwest::Method::PUT, key, "", sigv4::UNSIGNED)
            .header("content-type", content_type)
            .header("content-length", len)
            .body(body)
            .send()
            .await?;
        Self::check(resp, "put object").await.map(drop)
    }

    /// The object, its body still to be read; `None` for no such key.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<reqwest::Response>> {
        let resp = self
            .request(reqwest::Method::GET, key, "", &sigv4::payload_hash(b""))
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::check(resp, "get object").await.map(Some)
    }

    /// Deletes one key (no error if absent).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let resp = self
            .request(reqwest::Method::DELETE, key, "", &sigv4::payload_hash(b""))
            .send()
            .await?;
        Self::check(resp, "delete object").await.map(drop)
    }

    /// Keys under `prefix` (up to 1,000: one ListObjectsV2 page).
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let query = format!(
            "list-type=2&prefix={}",
            sigv4::encode_path(prefix).replace('/', "%2F")
        );
        let resp = self
            .request(reqwest::Method::GET, "", &query, &sigv4::payload_hash(b""))
            .send()
            .await?;
        let xml = Self::check(resp, "list objects").await?.text().await?;
        Ok(xml
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(|k| {
                k.replace("&amp;", "&")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
            })
            .collect())
    }
}
