//! The storage contract, held by both stores: the local folders, and an S3-compatible bucket on
//! a real server (`s3s-fs`, which checks SigV4) named by `TEST_S3_ENDPOINT`, required
//! (`scripts/test.sh` starts it on loopback with the keys of `e2e::S3_KEYS`).

use std::path::Path;

use futures_util::TryStreamExt;
use origin::settings::{S3Settings, MIN_PART_SIZE};
use origin::storage::local::Local;
use origin::storage::s3::Bucket;
use origin::storage::Store;
use shared_wasm::range::Spec;

/// A bucket on the test server, signing with `secret`.
fn bucket_settings(name: &str, secret: &str) -> S3Settings {
    S3Settings {
        access_key_id: Some(e2e::S3_KEYS.0.into()),
        secret_access_key: Some(secret.into()),
        ..S3Settings::new(e2e::s3_endpoint(), name)
    }
}

async fn read(store: &dyn Store, key: &str) -> Option<Vec<u8>> {
    let obj = store.get(key).await.unwrap()?;
    let len = obj.len;
    let bytes = obj.bytes().await.unwrap();
    assert_eq!(len, Some(bytes.len() as u64), "{key}: announced length");
    Some(bytes)
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What uploads, the transcoding workers and `/internal/media` rely on, whatever the store.
async fn contract(store: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");

    // A whole file in, consumed; streamed back out, the same bytes; fetched as a local file.
    let big: Vec<u8> = (0..3u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let src = file(dir.path(), "upload", &big);
    store.put_file("sources/v_abc.0123", &src).await.unwrap();
    assert!(!src.exists(), "the local file is consumed");
    assert_eq!(read(store, "sources/v_abc.0123").await.unwrap(), big);
    let local = store.fetch("sources/v_abc.0123", &scratch).await.unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), big);
    assert!(store.fetch("sources/none", &scratch).await.is_err());

    // Byte ranges of it: bounded, open-ended, the last bytes, an end past the object's; a start
    // past its end overlaps nothing; an absent key is none.
    let len = big.len();
    for (spec, want) in [
        (
            Spec::From {
                start: 5,
                end: Some(9),
            },
            5..10,
        ),
        (
            Spec::From {
                start: len as u64 - 3,
                end: None,
            },
            len - 3..len,
        ),
        (Spec::Suffix(4), len - 4..len),
        (
            Spec::From {
                start: 1 << 20,
                end: Some(u64::MAX),
            },
            1 << 20..len,
        ),
    ] {
        let got = store.get_range("sources/v_abc.0123", spec).await.unwrap();
        let got = got.unwrap();
        assert_eq!(got.total, len as u64);
        let ((first, last), body) = got.part.expect("overlaps");
        assert_eq!(
            (first, last),
            (want.start as u64, want.end as u64 - 1),
            "{spec:?}"
        );
        let chunks: Vec<bytes::Bytes> = body.try_collect().await.unwrap();
        assert!(chunks.concat() == big[want], "{spec:?}: the bytes");
    }
    let past = Spec::From {
        start: len as u64,
        end: None,
    };
    let got = store.get_range("sources/v_abc.0123", past).await.unwrap();
    let got = got.unwrap();
    assert_eq!((got.total, got.part.is_none()), (len as u64, true));
    let absent = store
        .get_range("sources/none", Spec::Suffix(1))
        .await
        .unwrap();
    assert!(absent.is_none());

    // A rendition folder in, replacing an earlier attempt's (which had one segment more).
    for (attempt, segments) in [(1, 3), (2, 2)] {
        let r = dir.path().join(format!("r{attempt}"));
        std::fs::create_dir(&r).unwrap();
        for n in 0..segments {
            file(
                &r,
                &format!("seg_{n:03}.ts"),
                format!("{attempt}:{n}").as_bytes(),
            );
        }
        file(
            &r,
            "index.m3u8",
            format!("#EXTM3U attempt {attempt}").as_bytes(),
        );
        store
            .put_dir("media/v_abc/240p", &r, "index.m3u8")
            .await
            .unwrap();
        assert!(!r.exists(), "the folder is consumed");
    }
    assert_eq!(
        read(store, "media/v_abc/240p/index.m3u8").await.unwrap(),
        b"#EXTM3U attempt 2"
    );
    assert_eq!(
        read(store, "media/v_abc/240p/seg_001.ts").await.unwrap(),
        b"2:1"
    );
    assert!(
        read(store, "media/v_abc/240p/seg_002.ts").await.is_none(),
        "nothing of the earlier attempt is left beside the new one"
    );
    // A folder without the file that must go last is refused.
    let r = dir.path().join("r3");
    std::fs::create_dir(&r).unwrap();
    file(&r, "seg_000.ts", b"x");
    assert!(store
        .put_dir("media/v_abc/360p", &r, "index.m3u8")
        .await
        .is_err());
    assert!(read(store, "media/v_abc/360p/seg_000.ts").await.is_none());

    // Keys that could leave the store's root are refused.
    for bad in ["media/../x", "/media/x", "media//x", ""] {
        assert!(store.get(bad).await.is_err(), "{bad:?}");
    }

    // Deleting: one key, then a whole prefix (and nothing beside it).
    let other = file(dir.path(), "other", b"other");
    store
        .put_file("media/v_abd/poster.jpg", &other)
        .await
        .unwrap();
    store.delete("sources/v_abc.0123").await.unwrap();
    store.delete("sources/v_abc.0123").await.unwrap(); // absent: no error
    assert!(read(store, "sources/v_abc.0123").await.is_none());
    store.delete_prefix("media/v_abc").await.unwrap();
    assert!(read(store, "media/v_abc/240p/index.m3u8").await.is_none());
    assert_eq!(
        read(store, "media/v_abd/poster.jpg").await.unwrap(),
        b"other"
    );
}

#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Local::new(dir.path().join("media"), dir.path().join("uploads"));
    contract(&store).await;
    // Media under the media folder, the rest under the upload folder (never served).
    let f = file(dir.path(), "f", b"f");
    store.put_file("sources/v1.00", &f).await.unwrap();
    assert!(dir.path().join("uploads/sources/v1.00").is_file());
    assert!(dir.path().join("media/v_abd/poster.jpg").is_file());
}

/// The media folder on another filesystem than the upload folder (tmpfs here), as separate
/// mounts would be: objects cannot simply be renamed across.
#[tokio::test]
async fn the_local_store_keeps_the_contract_across_filesystems() {
    let shm = Path::new("/dev/shm");
    let uploads = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir_in(shm).unwrap();
    let dev = |p: &Path| std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(p).unwrap());
    assert_ne!(dev(uploads.path()), dev(media.path()), "two filesystems");
    let store = Local::new(media.path().to_owned(), uploads.path().to_owned());
    contract(&store).await;
    let left: Vec<_> = std::fs::read_dir(media.path().join("v_abd"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["poster.jpg"], "no staging copies left");
}

#[tokio::test]
async fn an_s3_bucket_keeps_the_contract() {
    let bucket = Bucket::new(&bucket_settings("contract", e2e::S3_KEYS.1)).unwrap();
    bucket.create().await.unwrap();
    bucket.create().await.unwrap(); // again: already ours
    contract(&bucket).await;

    // Keys S3 encodes in its own way.
    let dir = tempfile::tempdir().unwrap();
    let key = "media/v_x/seg 000+x.ts";
    bucket
        .put_file(key, &file(dir.path(), "a", b"odd"))
        .await
        .unwrap();
    assert_eq!(read(&bucket, key).await.unwrap(), b"odd");
    assert_eq!(bucket.list("media/v_x/").await.unwrap(), [key]);

    // The server checks signatures: the wrong secret is refused, and writes nothing.
    let wrong = Bucket::new(&bucket_settings("contract", "not-the-secret")).unwrap();
    let f = file(dir.path(), "b", b"b");
    assert!(wrong.put_file("media/v_y/x.ts", &f).await.is_err());
    assert!(read(&bucket, "media/v_y/x.ts").await.is_none());
}

/// A long video has more segments than one list page holds (1,000): deleting it must not stop
/// at the first page.
#[tokio::test]
async fn deleting_a_prefix_goes_past_one_list_page() {
    let bucket = Bucket::new(&bucket_settings("pages", e2e::S3_KEYS.1)).unwrap();
    bucket.create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rendition = dir.path().join("r");
    std::fs::create_dir(&rendition).unwrap();
    for n in 0..1_001 {
        file(&rendition, &format!("seg_{n:04}.ts"), b"s");
    }
    file(&rendition, "index.m3u8", b"#EXTM3U");
    bucket
        .put_dir("media/v_long/240p", &rendition, "index.m3u8")
        .await
        .unwrap();
    assert_eq!(bucket.list("media/v_long/").await.unwrap().len(), 1_002);
    bucket.delete_prefix("media/v_long").await.unwrap();
    assert!(bucket.list("media/v_long/").await.unwrap().is_empty());
}

/// A source larger than a part goes up as a multipart upload (parts in parallel), and comes
/// back byte for byte. 5 MiB is the smallest part S3 takes, and `s3s-fs` checks it.
#[tokio::test]
async fn a_source_larger_than_a_part_goes_up_in_parts() {
    let settings = S3Settings {
        part_size_bytes: MIN_PART_SIZE,
        upload_concurrency: 2,
        ..bucket_settings("parts", e2e::S3_KEYS.1)
    };
    let bucket = Bucket::new(&settings).unwrap();
    bucket.create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Two whole parts and a short last one.
    let len = 2 * MIN_PART_SIZE as usize + 12_345;
    let source: Vec<u8> = (0..len as u64).map(|i| (i * 7919 % 253) as u8).collect();
    let src = file(dir.path(), "upload", &source);
    let key = "sources/v_big.0123";
    bucket.put_file(key, &src).await.unwrap();
    assert!(!src.exists(), "the local file is consumed");
    assert!(
        read(&bucket, key).await.unwrap() == source,
        "the same bytes"
    );
    let local = bucket
        .fetch(key, &dir.path().join("scratch"))
        .await
        .unwrap();
    assert!(
        std::fs::read(&local).unwrap() == source,
        "the same bytes, fetched"
    );
    // S3 tags a multipart object's ETag with its number of parts.
    let etag = bucket.etag(key).await.unwrap().unwrap();
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "three parts: {etag}"
    );
}
