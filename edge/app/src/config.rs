//! Typed edge settings, read from the runtime's variables and secrets (by the Workers adapter
//! once per isolate, by the Spin adapter once per instance, which is once per request), one
//! section at a time as routes ask for them.
//!
//! The same parser serves both adapters: Workers passes `env.var`/`env.secret`, Spin passes
//! `variables::get` (whose names are lower case). A missing or malformed setting is an error
//! that names the setting, never its value.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shared_wasm::cursor::CursorKey;
use shared_wasm::geo::RegionTable;
use shared_wasm::jwt::JwtPolicy;
use shared_wasm::playback::{IpBinding, PlaybackKeys};
use shared_wasm::ratelimit::Quota;
use shared_wasm::{edge_auth, Kid};
use thiserror::Error;

/// Why the settings could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is absent.
    #[error("setting {0} is missing")]
    Missing(&'static str),
    /// A setting is present but not usable.
    #[error("setting {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

/// Everything the edge app needs besides the platform, read in sections, each on first use.
///
/// A request reads only the sections it needs: on Spin, where settings are read once per request
/// (each request runs in a fresh instance), a segment served from the cache reads its playback
/// keys and cache host and skips the origin's region table, the JWT policy, the feeds and the
/// rest. Routes read the sections they may need before spending a quota, so a broken one refuses
/// the request without costing its client a slot (a feed's cursor key is read when it has a
/// cursor). A broken setting fails the requests that need its section (500, and the log names
/// the setting), not every request; `/healthz` reads every section ([`EdgeConfig::check`]), so
/// a health check still refuses a broken deployment. Workers keep one `EdgeConfig` per isolate,
/// so each section is read there once.
///
/// Cheap to clone: clones share the sections read so far (work deferred past the response takes
/// one along).
#[derive(Clone)]
pub struct EdgeConfig(Rc<Sections>);

/// A setting's value by its upper-case name.
type Lookup = dyn Fn(&str) -> Option<String>;

struct Sections {
    get: Box<Lookup>,
    origin: Section<OriginSettings>,
    origin_secret: Section<Secret>,
    cursors: Section<CursorKey>,
    sync_secret: Section<Secret>,
    playback: Section<PlaybackSettings>,
    access: Section<AccessSettings>,
    rate_limits: Section<RateLimits>,
    feeds: Section<FeedCaching>,
    site: Section<SiteSettings>,
    upload_origins: Section<Vec<String>>,
}

impl core::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EdgeConfig").finish_non_exhaustive()
    }
}

/// Where and how the edge reaches the origin.
#[derive(Debug, Clone)]
pub struct OriginSettings {
    /// The origin regions (`REGIONS`, or one region at `ORIGIN_URL`).
    pub regions: RegionTable,
    /// How long a failing region is tried last (`REGION_UNHEALTHY_SECS`).
    pub unhealthy_secs: u64,
    /// How long an origin request may take (`ORIGIN_TIMEOUT_MS`; Workers; Spin hosts set their
    /// own).
    pub timeout_ms: u32,
    /// Shared secret the edge signs origin requests with (`EDGE_ORIGIN_SECRET`).
    pub secret: Secret,
}

/// How playback tokens are signed and checked.
#[derive(Debug, Clone)]
pub struct PlaybackSettings {
    /// Playback-token keys (`PLAYBACK_KEYS`, `PLAYBACK_ACTIVE_KID`).
    pub keys: PlaybackKeys,
    /// Lifetime of a new playback token.
    pub ttl_secs: u64,
    /// Clock skew allowed on playback tokens.
    pub leeway_secs: u64,
    /// Whether new playback tokens are bound to the viewer's address or network.
    pub bind_ip: IpBinding,
    /// Whether new playback tokens are bound to the viewer's country.
    pub bind_country: bool,
}

/// How access tokens (JWTs) are checked.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// Access-token policy (`JWT_ISSUER`, `JWT_AUDIENCE`).
    pub policy: JwtPolicy,
    /// How long a fetched JWKS is trusted before it is fetched again.
    pub jwks_ttl_secs: u64,
    /// An unknown `kid` refetches the JWKS only when the cached copy is at least this old, so a
    /// stream of tokens with made-up kids costs one origin request per interval, not one each.
    pub jwks_min_refresh_secs: u64,
}

/// The site's own names, from `CACHE_HOST`.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    /// `https://{CACHE_HOST}`: the origin of every cache key. Never the request's own `Host`,
    /// which a client chooses: each made-up host would be a new key, a miss and an origin
    /// request. Workers deployments set it to the Worker's custom domain (Cloudflare advises
    /// cache keys on the zone's own hostname); unset, a reserved name that no request carries.
    pub cache_origin: String,
    /// `https://{CACHE_HOST}` when it is set: the site's own origin in the absolute URLs a page
    /// carries (a watch page's Open Graph tags). Unset, the request's own origin is used.
    pub site_origin: Option<String>,
}

/// Feed caching windows (seconds): fresh, then served stale while revalidating in the
/// background, and served stale when the origin fails.
#[derive(Debug, Clone, Copy)]
pub struct FeedCaching {
    /// `FEED_FRESH_SECS` (30): served as is.
    pub fresh_secs: u64,
    /// `FEED_SWR_SECS` (300): after fresh, served at once while a background fetch refreshes it.
    pub stale_while_revalidate_secs: u64,
    /// `FEED_STALE_IF_ERROR_SECS` (3600): after fresh, served when the origin cannot answer.
    pub stale_if_error_secs: u64,
}

/// Quotas per route class, from `RATE_LIMITS` (`login=10/60,playback=120/60,api=60/60,beacons=600/60`:
/// requests per seconds). Each applies per client address and, where a user is known, per user.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// `POST /v1/auth/login`.
    pub login: Quota,
    /// `GET /v1/videos/{id}/playback` (token issue).
    pub playback: Quota,
    /// Authenticated API calls forwarded to the origin (logout, profile, admin, creator).
    pub api: Quota,
    /// `POST /v1/beacons` (a player reports every 10 s or so; many viewers may share an
    /// address).
    pub beacons: Quota,
}

impl RateLimits {
    fn parse(spec: Option<String>) -> Result<Self, ConfigError> {
        const NAME: &str = "RATE_LIMITS";
        let mut limits = Self {
            login: Quota::new("login", 10, 60).expect("valid default"),
            playback: Quota::new("playback", 120, 60).expect("valid default"),
            api: Quota::new("api", 60, 60).expect("valid default"),
            beacons: Quota::new("beacons", 600, 60).expect("valid default"),
        };
        for item in spec.iter().flat_map(|s| s.split(',')).map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let bad =
                || ConfigError::Invalid(NAME, format!("{item:?}: expected class=limit/seconds"));
            let (class, rate) = item.split_once('=').ok_or_else(bad)?;
            let (limit, window) = rate.split_once('/').ok_or_else(bad)?;
            let quota = Quota::new(
                class.trim(),
                limit.trim().parse().map_err(|_| bad())?,
                window.trim().parse().map_err(|_| bad())?,
            )
            .map_err(|e| ConfigError::Invalid(NAME, e.to_string()))?;
            match class.trim() {
                "login" => limits.login = quota,
                "playback" => limits.playback = quota,
                "api" => limits.api = quota,
                "beacons" => limits.beacons = quota,
                other => return Err(ConfigError::Invalid(NAME, format!("unknown class {other}"))),
            }
        }
        Ok(limits)
    }
}

/// Bytes that must never be printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(**)")
    }
}

fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid(name, "not a whole number".into())),
    }
}

/// `kid:base64url,kid:base64url`.
fn playback_keys(spec: &str, active: &str) -> Result<PlaybackKeys, ConfigError> {
    const NAME: &str = "PLAYBACK_KEYS";
    let mut keys = BTreeMap::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (kid, key) = item
            .split_once(':')
            .ok_or_else(|| ConfigError::Invalid(NAME, "expected kid:base64url entries".into()))?;
        let kid = Kid::parse(kid).map_err(|e| ConfigError::Invalid(NAME, format!("kid: {e}")))?;
        let key = URL_SAFE_NO_PAD
            .decode(key)
            .map_err(|_| ConfigError::Invalid(NAME, format!("key {kid} is not base64url")))?;
        keys.insert(kid, key);
    }
    let active = Kid::parse(active)
        .map_err(|e| ConfigError::Invalid("PLAYBACK_ACTIVE_KID", e.to_string()))?;
    PlaybackKeys::new(active, keys).map_err(|e| ConfigError::Invalid(NAME, e.to_string()))
}

/// A section's value, or the error that names its broken setting.
type Section<T> = OnceCell<Result<T, ConfigError>>;

fn section<T>(
    cell: &Section<T>,
    read: impl FnOnce() -> Result<T, ConfigError>,
) -> Result<&T, &ConfigError> {
    cell.get_or_init(read).as_ref()
}

impl EdgeConfig {
    /// Settings read through `get` (upper-case names; adapters map them as needed), each
    /// section when it is first asked for.
    pub fn new(get: impl Fn(&str) -> Option<String> + 'static) -> Self {
        Self(Rc::new(Sections {
            get: Box::new(get),
            origin: OnceCell::new(),
            origin_secret: OnceCell::new(),
            cursors: OnceCell::new(),
            sync_secret: OnceCell::new(),
            playback: OnceCell::new(),
            access: OnceCell::new(),
            rate_limits: OnceCell::new(),
            feeds: OnceCell::new(),
            site: OnceCell::new(),
            upload_origins: OnceCell::new(),
        }))
    }

    /// Reads every section: the first broken setting, if any.
    pub fn check(&self) -> Result<(), &ConfigError> {
        self.origin()?;
        self.cursors()?;
        self.sync_secret()?;
        self.playback()?;
        self.access()?;
        self.rate_limits()?;
        self.feeds()?;
        self.site()?;
        self.upload_origins()?;
        Ok(())
    }

    /// Where and how to reach the origin.
    pub fn origin(&self) -> Result<&OriginSettings, &ConfigError> {
        section(&self.0.origin, || {
            let get = &self.0.get;
            let regions = match get("REGIONS").filter(|v| !v.trim().is_empty()) {
                Some(json) => {
                    RegionTable::from_json(&json).map_err(|e| ConfigError::Invalid("REGIONS", e))?
                }
                None => {
                    let origin_url = required(get, "ORIGIN_URL")?;
                    if !(origin_url.starts_with("http://") || origin_url.starts_with("https://")) {
                        return Err(ConfigError::Invalid(
                            "ORIGIN_URL",
                            "must be an http(s) URL".into(),
                        ));
                    }
                    RegionTable::single(&origin_url)
                }
            };
            let timeout_ms = number(get, "ORIGIN_TIMEOUT_MS", 10_000)?;
            Ok(OriginSettings {
                regions,
                unhealthy_secs: number(get, "REGION_UNHEALTHY_SECS", 30)?.max(1),
                timeout_ms: u32::try_from(timeout_ms.clamp(100, 60_000)).expect("clamped"),
                secret: self.origin_secret().map_err(Clone::clone)?.clone(),
            })
        })
    }

    /// Checks the page cursors the origin seals (derived from the origin secret alone: a feed
    /// page with a cursor, served from the cache, needs no region table).
    pub fn cursors(&self) -> Result<&CursorKey, &ConfigError> {
        section(&self.0.cursors, || {
            let secret = self.origin_secret().map_err(Clone::clone)?;
            Ok(CursorKey::derive(secret.expose()))
        })
    }

    /// `EDGE_ORIGIN_SECRET`, which the origin section and the cursors' key share.
    fn origin_secret(&self) -> Result<&Secret, &ConfigError> {
        section(&self.0.origin_secret, || {
            secret(&self.0.get, "EDGE_ORIGIN_SECRET")
        })
    }

    /// Secret the origin signs sync batches with (`SYNC_SECRET`; a different one from the
    /// origin secret: a leak of either does not give the other direction).
    pub fn sync_secret(&self) -> Result<&Secret, &ConfigError> {
        section(&self.0.sync_secret, || secret(&self.0.get, "SYNC_SECRET"))
    }

    /// How playback tokens are signed and checked.
    pub fn playback(&self) -> Result<&PlaybackSettings, &ConfigError> {
        section(&self.0.playback, || {
            let get = &self.0.get;
            Ok(PlaybackSettings {
                keys: playback_keys(
                    &required(get, "PLAYBACK_KEYS")?,
                    &required(get, "PLAYBACK_ACTIVE_KID")?,
                )?,
                ttl_secs: number(get, "PLAYBACK_TOKEN_TTL_SECS", 3600)?,
                leeway_secs: number(get, "PLAYBACK_LEEWAY_SECS", 30)?,
                bind_ip: get("PLAYBACK_BIND_IP")
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| ConfigError::Invalid("PLAYBACK_BIND_IP", e))?,
                bind_country: match get("PLAYBACK_BIND_COUNTRY").as_deref().map(str::trim) {
                    None | Some("") | Some("false") => false,
                    Some("true") => true,
                    Some(_) => {
                        return Err(ConfigError::Invalid(
                            "PLAYBACK_BIND_COUNTRY",
                            "expected true or false".into(),
                        ))
                    }
                },
            })
        })
    }

    /// How access tokens are checked.
    pub fn access(&self) -> Result<&AccessSettings, &ConfigError> {
        section(&self.0.access, || {
            let get = &self.0.get;
            Ok(AccessSettings {
                policy: JwtPolicy::new(
                    required(get, "JWT_ISSUER")?,
                    required(get, "JWT_AUDIENCE")?,
                ),
                jwks_ttl_secs: number(get, "JWKS_CACHE_SECS", 300)?,
                jwks_min_refresh_secs: number(get, "JWKS_MIN_REFRESH_SECS", 30)?.max(1),
            })
        })
    }

    /// Quotas per route class.
    pub fn rate_limits(&self) -> Result<&RateLimits, &ConfigError> {
        section(&self.0.rate_limits, || {
            RateLimits::parse((self.0.get)("RATE_LIMITS"))
        })
    }

    /// How the shared feeds are cached.
    pub fn feeds(&self) -> Result<&FeedCaching, &ConfigError> {
        section(&self.0.feeds, || {
            let get = &self.0.get;
            Ok(FeedCaching {
                fresh_secs: number(get, "FEED_FRESH_SECS", 30)?.max(1),
                stale_while_revalidate_secs: number(get, "FEED_SWR_SECS", 300)?,
                stale_if_error_secs: number(get, "FEED_STALE_IF_ERROR_SECS", 3600)?,
            })
        })
    }

    /// The site's own names (cache keys, absolute URLs in pages).
    pub fn site(&self) -> Result<&SiteSettings, &ConfigError> {
        section(&self.0.site, || {
            let host = (self.0.get)("CACHE_HOST").filter(|h| !h.trim().is_empty());
            let origin = cache_origin(host.as_deref())?;
            Ok(SiteSettings {
                site_origin: host.map(|_| origin.clone()),
                cache_origin: origin,
            })
        })
    }

    /// Where browsers upload straight to (tus, at the creator's home region): `UPLOAD_ORIGINS`
    /// (comma-separated http(s) URLs, their origins taken), else each region's origin. The
    /// studio page's CSP allows `connect-src` to exactly these.
    pub fn upload_origins(&self) -> Result<&[String], &ConfigError> {
        section(&self.0.upload_origins, || {
            match (self.0.get)("UPLOAD_ORIGINS").filter(|s| !s.trim().is_empty()) {
                Some(list) => upload_origins("UPLOAD_ORIGINS", list.split(',')),
                None => {
                    let regions = self.origin().map_err(Clone::clone)?.regions.all();
                    upload_origins("REGIONS", regions.iter().map(|r| r.origin.as_str()))
                }
            }
        })
        .map(Vec::as_slice)
    }
}

/// A shared secret long enough to sign with.
fn secret(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Secret, ConfigError> {
    let bytes = required(get, name)?.into_bytes();
    if bytes.len() < edge_auth::MIN_SECRET_LEN {
        return Err(ConfigError::Invalid(
            name,
            format!("must be at least {} bytes", edge_auth::MIN_SECRET_LEN),
        ));
    }
    Ok(Secret(bytes))
}

fn upload_origins<'a>(
    name: &'static str,
    urls: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, ConfigError> {
    let mut origins: Vec<String> = Vec::new();
    for url in urls.map(str::trim).filter(|u| !u.is_empty()) {
        let origin = crate::routes::pages::csp_source(url).ok_or_else(|| {
            ConfigError::Invalid(
                name,
                format!("{url:?} is not an http(s) URL whose origin a CSP can name"),
            )
        })?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

fn cache_origin(host: Option<&str>) -> Result<String, ConfigError> {
    let Some(host) = host else {
        return Ok("https://edge-cache.invalid".into());
    };
    let host = host.trim().to_ascii_lowercase();
    let ok = host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(format!("https://{host}"))
    } else {
        Err(ConfigError::Invalid(
            "CACHE_HOST",
            "expected a host name (letters, digits, '-', '.')".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<&'static str, String> {
        let mut m = BTreeMap::new();
        m.insert("ORIGIN_URL", "http://127.0.0.1:1/".to_owned());
        m.insert("EDGE_ORIGIN_SECRET", "s".repeat(32));
        m.insert("SYNC_SECRET", "y".repeat(32));
        m.insert(
            "PLAYBACK_KEYS",
            format!("k1:{}", URL_SAFE_NO_PAD.encode([9u8; 32])),
        );
        m.insert("PLAYBACK_ACTIVE_KID", "k1".to_owned());
        m.insert("JWT_ISSUER", "iss".to_owned());
        m.insert("JWT_AUDIENCE", "aud".to_owned());
        m
    }

    /// Every section read, as `/healthz` reads them.
    fn load(m: &BTreeMap<&'static str, String>) -> Result<EdgeConfig, ConfigError> {
        let m = m.clone();
        let c = EdgeConfig::new(move |k| m.get(k).cloned());
        c.check().map_err(Clone::clone)?;
        Ok(c)
    }

    #[test]
    fn reads_a_complete_config() {
        let c = load(&base()).unwrap();
        assert_eq!(
            c.origin().unwrap().regions.all()[0].origin,
            "http://127.0.0.1:1"
        );
        assert_eq!(c.playback().unwrap().ttl_secs, 3600);
        assert_eq!(c.playback().unwrap().keys.active().as_str(), "k1");
        assert_eq!(c.rate_limits().unwrap().login.limit, 10);
    }

    #[test]
    fn upload_origins_default_to_the_regions_and_are_checked() {
        let c = load(&base()).unwrap();
        assert_eq!(c.upload_origins().unwrap(), ["http://127.0.0.1:1"]);
        assert_eq!(c.site().unwrap().site_origin, None);
        let mut m = base();
        m.insert(
            "UPLOAD_ORIGINS",
            " https://Up.example/tus , https://up.example,http://[::1]:8".into(),
        );
        m.insert("CACHE_HOST", "Video.Example".into());
        let c = load(&m).unwrap();
        assert_eq!(
            c.upload_origins().unwrap(),
            ["https://up.example", "http://[::1]:8"]
        );
        assert_eq!(
            c.site().unwrap().site_origin.as_deref(),
            Some("https://video.example")
        );
        for bad in ["https://a;script-src *", "ftp://x", "https://a b"] {
            m.insert("UPLOAD_ORIGINS", bad.into());
            assert!(
                matches!(load(&m), Err(ConfigError::Invalid("UPLOAD_ORIGINS", _))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rate_limits_override_by_class() {
        let mut m = base();
        m.insert("RATE_LIMITS", " login=5/30 , playback=7/10".into());
        let c = load(&m).unwrap();
        let limits = c.rate_limits().unwrap();
        assert_eq!((limits.login.limit, limits.login.window_secs), (5, 30));
        assert_eq!(limits.playback.limit, 7);
    }

    #[test]
    fn names_the_bad_setting_without_its_value() {
        let mut m = base();
        m.remove("JWT_ISSUER");
        assert_eq!(load(&m).unwrap_err(), ConfigError::Missing("JWT_ISSUER"));
        let mut m = base();
        m.insert("EDGE_ORIGIN_SECRET", "short-secret-value".into());
        let e = load(&m).unwrap_err().to_string();
        assert!(
            e.contains("EDGE_ORIGIN_SECRET") && !e.contains("short-secret-value"),
            "{e}"
        );
        let mut m = base();
        m.insert(
            "PLAYBACK_KEYS",
            format!("k1:{}", URL_SAFE_NO_PAD.encode([9u8; 16])),
        );
        assert!(matches!(
            load(&m),
            Err(ConfigError::Invalid("PLAYBACK_KEYS", _))
        ));
        let mut m = base();
        m.insert("RATE_LIMITS", "login=5/60,upload=1/1".into());
        assert!(matches!(
            load(&m),
            Err(ConfigError::Invalid("RATE_LIMITS", _))
        ));
        let mut m = base();
        m.insert("RATE_LIMITS", "login=0/60".into());
        assert!(matches!(
            load(&m),
            Err(ConfigError::Invalid("RATE_LIMITS", _))
        ));
        let mut m = base();
        m.insert("PLAYBACK_ACTIVE_KID", "k9".into());
        assert!(matches!(
            load(&m),
            Err(ConfigError::Invalid("PLAYBACK_KEYS", _))
        ));
    }

    #[test]
    fn a_section_reads_its_own_settings_once_and_fails_alone() {
        let (c, asked) =
            crate::testing::config_asked(&[("JWT_ISSUER", ""), ("REGIONS", "not a table")]);
        // Two sections, each asked for twice: their own settings, each read once.
        for _ in 0..2 {
            assert_eq!(c.playback().unwrap().keys.active().as_str(), "k1");
            assert_eq!(c.site().unwrap().cache_origin, "https://edge-cache.invalid");
        }
        assert_eq!(*asked.borrow(), crate::testing::SEGMENT_SETTINGS);
        // The broken sections fail by themselves, and whatever reads them.
        assert_eq!(c.access().unwrap_err(), &ConfigError::Missing("JWT_ISSUER"));
        assert!(matches!(
            c.origin(),
            Err(ConfigError::Invalid("REGIONS", _))
        ));
        assert!(matches!(
            c.upload_origins(),
            Err(ConfigError::Invalid("REGIONS", _))
        ));
        assert!(c.rate_limits().is_ok() && c.feeds().is_ok() && c.sync_secret().is_ok());
        assert!(c.cursors().is_ok(), "cursors need only the origin secret");
        assert!(matches!(c.check(), Err(ConfigError::Invalid("REGIONS", _))));
    }

    #[test]
    fn the_origin_and_the_cursors_share_one_read_of_the_origin_secret() {
        let (c, asked) = crate::testing::config_asked(&[("EDGE_ORIGIN_SECRET", "short")]);
        for _ in 0..2 {
            assert!(matches!(
                c.cursors(),
                Err(ConfigError::Invalid("EDGE_ORIGIN_SECRET", _))
            ));
            assert!(matches!(
                c.origin(),
                Err(ConfigError::Invalid("EDGE_ORIGIN_SECRET", _))
            ));
        }
        let asked = asked.borrow();
        let reads = asked.iter().filter(|n| **n == "EDGE_ORIGIN_SECRET").count();
        assert_eq!(reads, 1, "{asked:?}");
    }
}
