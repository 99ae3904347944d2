//! Runs a Spin HTTP component (WASI 0.2 `incoming-handler`) in Wasmtime, providing the Spin
//! interfaces the edge component imports: `fermyon:spin/key-value@2.0.0` (the `default` store,
//! shared by every request of this process; in memory, or kept in a folder with `--kv-dir`),
//! `fermyon:spin/variables@2.0.0` and outbound `wasi:http`, restricted to an allow-list like
//! `allowed_outbound_hosts` in spin.toml. `fermyon:spin/redis@2.0.0` is there only so the
//! component links: every call fails (Redis-backed runs use `spin up`). Like Spin, it sets
//! `spin-client-addr` on each request to the connection's peer address.
//!
//! The component it runs is the same file `spin up` runs with `spin.toml`. It stays beside
//! `spin up` for what the CLI cannot give a test: a store that is a folder of files a test can
//! read and seed, and a start in a fraction of the time.
//!
//! Instances come from Wasmtime's pooling allocator, as under `spin up` (`pool`): up to 128
//! requests at once, each instance's memory at most 1 GiB.
//!
//! It runs one component on every path (`--component`), or the components of a `spin.toml`
//! (`--manifest`) routed as `spin up` routes them: an exact route first, else the longest
//! wildcard prefix (`manifest.rs`), each with its `files` mounts preopened read-only. That is
//! how the web app's static component (`edge/spin-static`) serves the pages beside the edge.
//!
//! ```text
//! spin-host --component edge.wasm --listen 127.0.0.1:3000 \
//!     --var origin_url=http://127.0.0.1:8700 --allow-outbound http://127.0.0.1:*
//! spin-host --manifest spin.toml --listen 127.0.0.1:3000 …
//! ```

mod manifest;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{DirPerms, FilePerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::bindings::ProxyPre;
use wasmtime_wasi_http::body::{HyperOutgoingBody, HyperOutgoingBody as OutBody};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::types::{HostFutureIncomingResponse, OutgoingRequestConfig};
use wasmtime_wasi_http::{HttpResult, WasiHttpCtx, WasiHttpView};

mod spin {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-host",
        with: {
            "fermyon:spin/key-value.store": super::KvStore,
            "fermyon:spin/redis.connection": super::RedisConnection,
        },
    });
}

use spin::fermyon::spin::{key_value, redis, variables};

/// The one store a component may open: `default`.
pub struct KvStore;

/// The `default` store: in memory, and with `--kv-dir` also on disk (one file per key, named by
/// the key in hex, written to a temporary file and renamed), so it survives a restart the way
/// `spin up`'s SQLite store in `.spin/` does.
struct Kv {
    map: Mutex<HashMap<String, Vec<u8>>>,
    dir: Option<PathBuf>,
}

impl Kv {
    fn open(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            for entry in std::fs::read_dir(d)? {
                let path = entry?.path();
                let Some(key) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| hex::decode(n).ok())
                    .and_then(|k| String::from_utf8(k).ok())
                else {
                    continue; // a temporary file from an interrupted write
                };
                map.insert(key, std::fs::read(&path)?);
            }
        }
        Ok(Self {
            map: Mutex::new(map),
            dir,
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.map.lock().expect("kv lock")
    }

    fn persist(&self, key: &str, value: Option<&[u8]>) -> Result<(), key_value::Error> {
        let Some(d) = &self.dir else { return Ok(()) };
        let path = d.join(hex::encode(key));
        let io = |e: std::io::Error| key_value::Error::Other(format!("kv on disk: {e}"));
        match value {
            Some(v) => {
                let tmp = d.join(format!(".tmp-{}", hex::encode(key)));
                std::fs::write(&tmp, v).map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)
            }
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
                _ => Ok(()),
            },
        }
    }
}

/// What every request of this process shares.
struct Shared {
    kv: Kv,
    vars: HashMap<String, String>,
    allowed_outbound: Vec<String>,
}

/// Per-request state.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    shared: Arc<Shared>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Longest wait for each phase of an outbound request (connect, first byte, between bytes).
const OUTBOUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `scheme://host:port` allowed, or `scheme://host:*` for any port, as in spin.toml.
fn outbound_allowed(allowed: &[String], scheme: &str, authority: &str) -> bool {
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
    allowed.iter().any(|a| {
        let Some((a_scheme, rest)) = a.split_once("://") else {
            return false;
        };
        let (a_host, a_port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        a_scheme == scheme && a_host == host && (a_port == "*" || a_port == port)
    })
}

impl WasiHttpView for State {
    fn ctx(&mut self) -> &mut WasiHttpCtx {
        &mut self.http
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn send_request(
        &mut self,
        request: hyper::Request<OutBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        let scheme = if config.use_tls { "https" } else { "http" };
        let authority = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        if !outbound_allowed(&self.shared.allowed_outbound, scheme, &authority) {
            eprintln!(
                "spin-host: outbound request to {scheme}://{authority} refused (not allowed)"
            );
            return Err(ErrorCode::HttpRequestDenied.into());
        }
        // Guests that set no options get 600 s per phase from wasmtime; like a Spin host
        // operator, cap them so a hung origin fails fast and the edge can fail over.
        let cap = OUTBOUND_TIMEOUT;
        let config = OutgoingRequestConfig {
            connect_timeout: config.connect_timeout.min(cap),
            first_byte_timeout: config.first_byte_timeout.min(cap),
            between_bytes_timeout: config.between_bytes_timeout.min(cap),
            ..config
        };
        Ok(wasmtime_wasi_http::types::default_send_request(
            request, config,
        ))
    }
}

impl key_value::Host for State {}

impl key_value::HostStore for State {
    fn open(&mut self, label: String) -> Result<Resource<KvStore>, key_value::Error> {
        if label != "default" {
            return Err(key_value::Error::NoSuchStore);
        }
        self.table
            .push(KvStore)
            .map_err(|e| key_value::Error::Other(e.to_string()))
    }

    fn get(
        &mut self,
        _: Resource<KvStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, key_value::Error> {
        Ok(self.shared.kv.map().get(&key).cloned())
    }

    fn set(
        &mut self,
        _: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        let mut map = self.shared.kv.map();
        self.shared.kv.persist(&key, Some(&value))?;
        map.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, _: Resource<KvStore>, key: String) -> Result<(), key_value::Error> {
        let mut map = self.shared.kv.map();
        self.shared.kv.persist(&key, None)?;
        map.remove(&key);
        Ok(())
    }

    fn exists(&mut self, _: Resource<KvStore>, key: String) -> Result<bool, key_value::Error> {
        Ok(self.shared.kv.map().contains_key(&key))
    }

    fn get_keys(&mut self, _: Resource<KvStore>) -> Result<Vec<String>, key_value::Error> {
        Ok(self.shared.kv.map().keys().cloned().collect())
    }

    fn drop(&mut self, rep: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl variables::Host for State {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.shared
            .vars
            .get(&name)
            .cloned()
            .ok_or(variables::Error::Undefined(name))
    }
}

/// A Redis connection, which this host never opens: the component links, and a deployment that
/// sets `REDIS_URL` runs under `spin up`. Every call says so.
pub struct RedisConnection;

fn no_redis<T>() -> Result<T, redis::Error> {
    Err(redis::Error::Other(
        "spin-host has no outbound Redis; run REDIS_URL under spin up".into(),
    ))
}

impl redis::Host for State {}

impl redis::HostConnection for State {
    fn open(&mut self, _: String) -> Result<Resource<RedisConnection>, redis::Error> {
        no_redis()
    }

    fn publish(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
        _: Vec<u8>,
    ) -> Result<(), redis::Error> {
        no_redis()
    }

    fn get(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
    ) -> Result<Option<Vec<u8>>, redis::Error> {
        no_redis()
    }

    fn set(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
        _: Vec<u8>,
    ) -> Result<(), redis::Error> {
        no_redis()
    }

    fn incr(&mut self, _: Resource<RedisConnection>, _: String) -> Result<i64, redis::Error> {
        no_redis()
    }

    fn del(&mut self, _: Resource<RedisConnection>, _: Vec<String>) -> Result<u32, redis::Error> {
        no_redis()
    }

    fn sadd(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
        _: Vec<String>,
    ) -> Result<u32, redis::Error> {
        no_redis()
    }

    fn smembers(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
    ) -> Result<Vec<String>, redis::Error> {
        no_redis()
    }

    fn srem(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
        _: Vec<String>,
    ) -> Result<u32, redis::Error> {
        no_redis()
    }

    fn execute(
        &mut self,
        _: Resource<RedisConnection>,
        _: String,
        _: Vec<redis::RedisParameter>,
    ) -> Result<Vec<redis::RedisResult>, redis::Error> {
        no_redis()
    }

    fn drop(&mut self, rep: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

struct Args {
    app: manifest::App,
    listen: SocketAddr,
    vars: HashMap<String, String>,
    allowed_outbound: Vec<String>,
    kv_dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut component = None;
    let mut manifest = None;
    let mut listen = None;
    let mut vars = HashMap::new();
    let mut allowed_outbound = Vec::new();
    let mut kv_dir = None;
    // Like `spin up`, variables may also come from SPIN_VARIABLE_<NAME>.
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("SPIN_VARIABLE_") {
            vars.insert(name.to_ascii_lowercase(), v);
        }
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--component" => component = Some(value()?),
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--listen" => listen = Some(value()?.parse().context("--listen wants ip:port")?),
            "--var" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').context("--var wants name=value")?;
                vars.insert(k.to_owned(), v.to_owned());
            }
            "--allow-outbound" => allowed_outbound.push(value()?),
            "--kv-dir" => kv_dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}; see the module docs for usage"),
        }
    }
    let app = match (component, manifest) {
        (Some(c), None) => manifest::App::single(c.into()),
        (None, Some(m)) => manifest::App::load(&m)?,
        _ => bail!("give either --component or --manifest"),
    };
    Ok(Args {
        app,
        listen: listen.context("--listen is required")?,
        vars,
        allowed_outbound,
        kv_dir,
    })
}

/// A component ready to instantiate, with its files mounts.
struct Loaded {
    pre: ProxyPre<State>,
    mounts: Vec<(PathBuf, String)>,
}

struct Server {
    app: manifest::App,
    components: Vec<Loaded>,
    shared: Arc<Shared>,
}

impl Server {
    async fn handle(
        &self,
        mut req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        // As Spin does: the peer address, overwriting anything the client sent under that name.
        req.headers_mut().insert(
            "spin-client-addr",
            hyper::header::HeaderValue::from_str(&peer.to_string())?,
        );
        let Some(i) = self.app.route(req.uri().path()) else {
            bail!("no route for {}", req.uri().path());
        };
        let component = &self.components[i];
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (host, guest) in &component.mounts {
            wasi.preopened_dir(host, guest, DirPerms::READ, FilePerms::READ)
                .with_context(|| format!("mounting {}", host.display()))?;
        }
        let mut store = Store::new(
            component.pre.engine(),
            State {
                wasi: wasi.build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                shared: self.shared.clone(),
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, req, out)
                .await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let e = match task.await {
                    Ok(Ok(())) => anyhow::anyhow!("component never set a response"),
                    Ok(Err(e)) => e,
                    Err(e) => e.into(),
                };
                Err(e.context("component failed before responding"))
            }
        }
    }
}

/// Requests served at once (each has its own instance), as `spin up` pools them.
const POOLED_INSTANCES: u32 = 128;
/// The largest linear memory an instance may grow to: the edge holds a media file of up to
/// 64 MiB (`MAX_CACHED_BYTES`) and its cache entry at once, with room to spare.
const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Wasmtime's pooling allocator, as `spin up` runs components: every slot (instance, memory,
/// table, stack) is reserved once, and an instance takes a warm one instead of mapping its own
/// memory per request. A slot costs address space, not memory, until it is used. A Rust
/// component of WASI 0.2 is a few core instances (the program and its adapters), each with
/// its memory and tables, hence the multipliers.
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOLED_INSTANCES)
        .total_stacks(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 8)
        .total_memories(POOLED_INSTANCES * 4)
        .total_tables(POOLED_INSTANCES * 8)
        .max_memory_size(MAX_MEMORY_BYTES);
    pool
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut config = Config::new();
    config.async_support(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
    // A pooled linear memory cannot move, so its reservation is its ceiling.
    config.memory_reservation(MAX_MEMORY_BYTES as u64);
    let engine = Engine::new(&config)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::add_only_http_to_linker_async(&mut linker)?;
    spin::SpinHost::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    let mut components = Vec::new();
    for spec in &args.app.components {
        let source = spec.source.display();
        let component = Component::from_file(&engine, &spec.source)
            .with_context(|| format!("loading component {} ({source})", spec.name))?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component).with_context(|| {
            format!(
                "component {} imports something this host does not provide",
                spec.name
            )
        })?)?;
        for (host, _) in &spec.mounts {
            anyhow::ensure!(
                host.is_dir(),
                "component {}: no folder {}",
                spec.name,
                host.display()
            );
        }
        components.push(Loaded {
            pre,
            mounts: spec.mounts.clone(),
        });
    }
    let names: Vec<String> = args.app.components.iter().map(|c| c.name.clone()).collect();
    let server = Arc::new(Server {
        app: args.app,
        components,
        shared: Arc::new(Shared {
            kv: Kv::open(args.kv_dir)?,
            vars: args.vars,
            allowed_outbound: args.allowed_outbound,
        }),
    });
    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "spin-host: serving {} on http://{}",
        names.join(", "),
        listener.local_addr()?
    );
    loop {
        let (client, peer) = listener.accept().await?;
        let server = server.clone();
        tokio::task::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move {
                    server.handle(req, peer).await.map_err(|e| {
                        eprintln!("spin-host: {e:?}");
                        e
                    })
                }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(client), service)
                .await
            {
                eprintln!("spin-host: connection error: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::outbound_allowed;

    #[test]
    fn outbound_allow_list_matches_like_spin() {
        let allowed = vec![
            "http://127.0.0.1:*".to_owned(),
            "https://api.test:443".to_owned(),
        ];
        assert!(outbound_allowed(&allowed, "http", "127.0.0.1:8700"));
        assert!(!outbound_allowed(&allowed, "https", "127.0.0.1:8700"));
        assert!(!outbound_allowed(&allowed, "http", "localhost:8700"));
        assert!(outbound_allowed(&allowed, "https", "api.test:443"));
        assert!(!outbound_allowed(&allowed, "https", "api.test:8443"));
    }
}
