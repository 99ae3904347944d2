//! Records encoded by the Rust types must match their CDDL schemas in `kv-schemas/`.

use shared_wasm::record::{
    AdCampaign, AdCatalog, CachedResponse, Chunks, CountryMode, CountryRule, JwksRecord,
    VideoRecord, VideoState, Visibility,
};
use shared_wasm::{CountryCode, UnixTime, VideoId};

fn schema(name: &str) -> String {
    let path = format!("{}/../kv-schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn validate(name: &str, cbor: &[u8]) -> Result<(), String> {
    cddl::validate_cbor_from_slice(&schema(name), cbor, None).map_err(|e| e.to_string())
}

fn video(duration: Option<u64>) -> VideoRecord {
    VideoRecord {
        v: 1,
        id: VideoId::parse("demo-free").unwrap(),
        title: "Test pattern".into(),
        visibility: Visibility::Members,
        state: VideoState::Ready,
        duration_ms: duration,
        countries: None,
        taken_down: false,
        binding: None,
        category: None,
        updated_at: 1_700_000_000,
        version: 2,
    }
}

#[test]
fn video_record_matches_schema() {
    validate("video.cddl", &video(Some(8000)).to_cbor()).unwrap();
    validate("video.cddl", &video(None).to_cbor()).unwrap();
    let mut full = video(Some(1));
    full.countries = Some(CountryRule {
        mode: CountryMode::Allow,
        list: vec![
            CountryCode::parse("fr").unwrap(),
            CountryCode::parse("BE").unwrap(),
        ],
    });
    full.taken_down = true;
    full.binding = Some(shared_wasm::playback::BindingPolicy {
        ip: shared_wasm::playback::IpBinding::Subnet,
        country: true,
    });
    validate("video.cddl", &full.to_cbor()).unwrap();
}

#[test]
fn ad_catalog_matches_schema() {
    let campaign = AdCampaign {
        id: "c1".into(),
        name: "Spring sale".into(),
        creative: VideoId::parse("ad-video").unwrap(),
        click_url: "https://advertiser.example/spring".into(),
        countries: vec![CountryCode::parse("FR").unwrap()],
        categories: vec!["music".into()],
        starts_at: 1_700_000_000,
        ends_at: 1_800_000_000,
        paused_until: 0,
        frequency_cap: 3,
        cpm_minor: 2_500,
    };
    let mut catalog = AdCatalog {
        v: 1,
        campaigns: vec![],
        version: 1,
    };
    validate("ad_catalog.cddl", &catalog.to_cbor()).unwrap();
    catalog.campaigns.push(campaign);
    validate("ad_catalog.cddl", &catalog.to_cbor()).unwrap();
    let mut with_category = video(Some(1));
    with_category.category = Some("music".into());
    validate("video.cddl", &with_category.to_cbor()).unwrap();
}

#[test]
fn schema_rejects_what_the_code_must_not_write() {
    // The validator is not vacuous: a record with a bad visibility or a missing field fails.
    let mut v = ciborium::Value::serialized(&video(None)).unwrap();
    if let ciborium::Value::Map(m) = &mut v {
        for (k, val) in m.iter_mut() {
            if k.as_text() == Some("visibility") {
                *val = ciborium::Value::Text("everyone".into());
            }
        }
    }
    let mut bytes = Vec::new();
    ciborium::into_writer(&v, &mut bytes).unwrap();
    assert!(validate("video.cddl", &bytes).is_err());

    let mut no_version = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Map(vec![(
            ciborium::Value::Text("v".into()),
            ciborium::Value::Integer(1.into()),
        )]),
        &mut no_version,
    )
    .unwrap();
    assert!(validate("video.cddl", &no_version).is_err());
}

#[test]
fn jwks_record_matches_schema() {
    let rec = JwksRecord::new(UnixTime(1_700_000_000), r#"{"keys":[]}"#.into());
    validate("jwks.cddl", &rec.to_cbor()).unwrap();
}

#[test]
fn cached_response_matches_schema() {
    let rec = CachedResponse {
        v: 1,
        status: 200,
        headers: vec![("content-type".into(), "video/mp2t".into())],
        body: vec![0x47, 0x40, 0x00],
        chunks: None,
    };
    validate("cached_response.cddl", &rec.to_cbor()).unwrap();
    assert_eq!(CachedResponse::from_cbor(&rec.to_cbor()).unwrap(), rec);
    let chunked = CachedResponse {
        body: Vec::new(),
        chunks: Some(Chunks {
            len: 1 << 20,
            size: Chunks::SIZE,
            gen: u64::MAX,
        }),
        ..rec
    };
    validate("cached_response.cddl", &chunked.to_cbor()).unwrap();
    assert_eq!(
        CachedResponse::from_cbor(&chunked.to_cbor()).unwrap(),
        chunked
    );
}

#[test]
fn rate_limit_state_matches_schema() {
    use shared_wasm::ratelimit::{check, decode_tat, encode_tat, Quota};
    let (_, tat) = check(
        &Quota::new("login", 5, 60).unwrap(),
        None,
        1_800_000_000_000,
    );
    let buf = encode_tat(tat);
    validate("rate_limit.cddl", &buf).unwrap();
    assert_eq!(decode_tat(&buf), Some(tat));
    let mut negative = Vec::new();
    ciborium::into_writer(&-1i64, &mut negative).unwrap();
    assert!(validate("rate_limit.cddl", &negative).is_err());
}

#[test]
fn spin_envelope_matches_schema() {
    use shared_wasm::record::KvEnvelope;
    let inner = JwksRecord::new(UnixTime(1), "{}".into()).to_cbor();
    for expires_at in [Some(1_800_000_000), None] {
        let env = KvEnvelope {
            v: 1,
            expires_at,
            value: inner.clone(),
        };
        validate("spin_envelope.cddl", &env.to_cbor()).unwrap();
    }
}

#[test]
fn auth_records_match_their_schemas() {
    use shared_wasm::record::{Entitlement, EntitlementStatus, RevokedSession, UserRecord};
    let user = UserRecord {
        v: 1,
        id: "u_abc".into(),
        not_before: 1_800_000_000,
        version: 4,
    };
    validate("user.cddl", &user.to_cbor()).unwrap();
    let session = RevokedSession {
        v: 1,
        jti: "s_abc".into(),
        expires_at: 1_800_000_900,
        version: 1,
    };
    validate("session.cddl", &session.to_cbor()).unwrap();
    let mut ent = Entitlement {
        v: 1,
        user: "u_abc".into(),
        tier: "members".into(),
        status: EntitlementStatus::Active,
        period_end: 1_800_000_000,
        version: 2,
    };
    validate("entitlement.cddl", &ent.to_cbor()).unwrap();
    ent.status = EntitlementStatus::Inactive;
    validate("entitlement.cddl", &ent.to_cbor()).unwrap();
    // Not vacuous: each schema refuses another kind's record.
    assert!(validate("user.cddl", &session.to_cbor()).is_err());
    assert!(validate("session.cddl", &user.to_cbor()).is_err());
    assert!(validate("entitlement.cddl", &user.to_cbor()).is_err());
}

#[test]
fn sync_batch_matches_schema() {
    use shared_wasm::record::UserRecord;
    use shared_wasm::sync::{SyncBatch, SyncItem};
    let user = UserRecord {
        v: 1,
        id: "u_abc".into(),
        not_before: 0,
        version: 1,
    };
    let item = SyncItem {
        key: UserRecord::key("u_abc"),
        version: 1,
        value: user.to_cbor(),
        expires_at: None,
    };
    let batch = SyncBatch {
        v: 1,
        items: vec![
            item.clone(),
            SyncItem {
                expires_at: Some(1_800_000_000),
                ..item.clone()
            },
            SyncItem {
                key: AdCatalog::KEY.into(),
                version: 1,
                value: AdCatalog {
                    v: 1,
                    campaigns: vec![],
                    version: 1,
                }
                .to_cbor(),
                expires_at: None,
            },
        ],
    };
    validate("sync_batch.cddl", &batch.to_cbor()).unwrap();
    let foreign = SyncBatch {
        v: 1,
        items: vec![SyncItem {
            key: "jwks".into(),
            ..item
        }],
    };
    assert!(validate("sync_batch.cddl", &foreign.to_cbor()).is_err());
}

#[test]
fn region_health_matches_schema() {
    // The edge writes a plain map (edge/app/src/origin.rs); this is its shape.
    let mut health = std::collections::BTreeMap::new();
    health.insert("eu-west".to_owned(), 1_800_000_030u64);
    let mut bytes = Vec::new();
    ciborium::into_writer(&health, &mut bytes).unwrap();
    validate("region_health.cddl", &bytes).unwrap();
    // (The validator does not apply `.regexp` to map keys, so the name pattern is documented
    // in the schema and enforced by `RegionTable::from_json`.) A non-time value is refused:
    let mut bad_value = std::collections::BTreeMap::new();
    bad_value.insert("eu-west".to_owned(), "soon".to_owned());
    let mut bad = Vec::new();
    ciborium::into_writer(&bad_value, &mut bad).unwrap();
    assert!(validate("region_health.cddl", &bad).is_err());
}

#[test]
fn feed_version_matches_schema() {
    use shared_wasm::record::FeedVersion;
    let f = FeedVersion {
        v: 1,
        feed: "channel:u_abc".into(),
        version: 7,
    };
    validate("feed_version.cddl", &f.to_cbor()).unwrap();
    assert_eq!(FeedVersion::from_cbor(&f.to_cbor()).unwrap(), f);
    assert!(validate("feed_version.cddl", &video(None).to_cbor()).is_err());
}
