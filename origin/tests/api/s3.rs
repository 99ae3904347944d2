//! The S3 client against a real S3-compatible server (`s3s-fs`, which checks SigV4), when
//! `TEST_S3_ENDPOINT` names one (`scripts/test.sh` starts it on loopback with the keys below).

use origin::storage::s3::Bucket;
use origin::storage::sigv4::Credentials;

fn creds(secret: &str) -> Credentials {
    Credentials {
        access_key: "testaccess".into(),
        secret_key: secret.into(),
        region: "us-east-1".into(),
    }
}

#[tokio::test]
async fn objects_round_trip_through_a_real_s3_server() {
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        eprintln!("TEST_S3_ENDPOINT not set: scripts/test.sh starts a server");
        return;
    };
    let bucket = Bucket::new(&endpoint, "media-test", creds("testsecret-0123456789")).unwrap();
    bucket.create().await.unwrap();
    bucket.create().await.unwrap(); // again: already ours

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seg.ts");
    let bytes: Vec<u8> = (0..3u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let key = "v_abc/480p/seg 000+x.ts";
    bucket.put_file(key, &file, "video/mp2t").await.unwrap();
    let got = bucket.get(key).await.unwrap().expect("stored");
    assert_eq!(got.bytes().await.unwrap()[..], bytes[..]);
    assert_eq!(bucket.list("v_abc/").await.unwrap(), [key]);
    assert!(bucket.list("v_other/").await.unwrap().is_empty());
    bucket.delete(key).await.unwrap();
    assert!(bucket.get(key).await.unwrap().is_none());

    // The server checks signatures: the wrong secret is refused.
    let wrong = Bucket::new(&endpoint, "media-test", creds("not-the-secret")).unwrap();
    assert!(wrong.put_file("x", &file, "video/mp2t").await.is_err());
    assert!(bucket.get("x").await.unwrap().is_none());
}
