//! Prometheus metrics: counted in process, served on a listener of their own (never the public
//! one) by [`serve`], in the Prometheus text format (0.0.4).
//!
//! Two kinds of series. Counters and histograms are updated where things happen (a request
//! answered, upload bytes written, a rendition encoded). Gauges of state that lives in the
//! database (the outbox's backlog per edge; the job queues' depth and oldest age, once they
//! register here) are read when scraped, from the [`GaugeSource`]s registered with
//! [`Metrics::register_gauge_source`]: nothing polls between scrapes, and a scrape sees the
//! state as of that moment.
//!
//! Labels stay bounded: routes are path templates (`/v1/videos/{id}`), never raw paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE as CONTENT_TYPE_TEXT;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UploadLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TranscodeLabels {
    rendition: String,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_seconds() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

fn transcode_seconds() -> Histogram {
    Histogram::new([
        1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
    ])
}

/// Registers a handle to `metric` under `name`, and gives `metric` back to be updated.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// One gauge family as a [`GaugeSource`] read it: each sample is its labels and its value.
#[derive(Debug, Clone)]
pub struct GaugeFamily {
    /// The metric's name (`[a-z_]+`, unique in the registry).
    pub name: &'static str,
    /// What it measures, for `# HELP`.
    pub help: &'static str,
    /// Label pairs and value of each series.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Something that reads gauges from where the state is (the database), at scrape time.
///
/// The hook for the job queues: a source that answers depth, oldest age and outcomes per kind
/// from the jobs table registers itself once with [`Metrics::register_gauge_source`]. A source
/// that fails is logged and left out of that scrape; the others are still served.
#[async_trait]
pub trait GaugeSource: Send + Sync + 'static {
    /// What it is, for the log line when it fails.
    fn name(&self) -> &'static str;
    /// The current values.
    async fn read(&self) -> anyhow::Result<Vec<GaugeFamily>>;
}

/// What the sources answered at the last scrape, for the registry to encode.
#[derive(Debug, Default)]
struct SourcedGauges(Mutex<Vec<GaugeFamily>>);

impl Collector for SourcedGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = self.0.lock().expect("gauges lock");
        // Like the registry's own families: none without a series.
        for family in families.iter().filter(|f| !f.samples.is_empty()) {
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, MetricType::Gauge)?;
            for (labels, value) in &family.samples {
                metric.encode_family(labels)?.encode_gauge(value)?;
            }
        }
        Ok(())
    }
}

/// The origin's metrics. One per process (per [`crate::state::AppState`], so tests that run
/// several origins in one process count each on its own).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RequestLabels>,
    upload_bytes: Family<UploadLabels, Counter>,
    transcode_seconds: Histograms<TranscodeLabels>,
    sourced: Arc<SourcedGauges>,
    sources: Mutex<Vec<Arc<dyn GaugeSource>>>,
    served_at: std::sync::OnceLock<std::net::SocketAddr>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series the origin counts, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let requests = registered(
            r,
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            Family::default(),
        );
        let request_seconds = registered(
            r,
            "http_request_duration_seconds",
            "Time from a request's arrival to its response's headers, by method, route template \
             and status",
            Family::new_with_constructor(request_seconds as fn() -> Histogram),
        );
        let upload_bytes = registered(
            r,
            "upload_bytes",
            "Bytes of upload bodies written to disk, by protocol (put, tus)",
            Family::default(),
        );
        let transcode_seconds = registered(
            r,
            "transcode_rendition_seconds",
            "Time to encode and store one rendition, by rendition and outcome (done, failed, \
             lost: another worker took over)",
            Family::new_with_constructor(transcode_seconds as fn() -> Histogram),
        );
        let sourced = Arc::new(SourcedGauges::default());
        registry.register_collector(Box::new(sourced.clone()));
        Self {
            registry,
            requests,
            request_seconds,
            upload_bytes,
            transcode_seconds,
            sourced,
            sources: Mutex::default(),
            served_at: std::sync::OnceLock::new(),
        }
    }

    /// Where [`serve`] listens, once it does (the port a `:0` setting was given).
    pub fn served_at(&self) -> Option<std::net::SocketAddr> {
        self.served_at.get().copied()
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts upload bytes written (`protocol`: `put` or `tus`).
    pub fn upload_bytes(&self, protocol: &'static str, bytes: u64) {
        self.upload_bytes
            .get_or_create(&UploadLabels { protocol })
            .inc_by(bytes);
    }

    /// Records one rendition's encode (`outcome`: `done`, `failed` or `lost`).
    pub fn transcoded(&self, rendition: &str, outcome: &'static str, elapsed: Duration) {
        self.transcode_seconds
            .get_or_create(&TranscodeLabels {
                rendition: rendition.to_owned(),
                outcome,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Adds gauges read at every scrape (see [`GaugeSource`]).
    pub fn register_gauge_source(&self, source: impl GaugeSource) {
        self.sources
            .lock()
            .expect("sources lock")
            .push(Arc::new(source));
    }

    /// Reads the gauge sources, then encodes every series in the Prometheus text format.
    pub async fn render(&self) -> String {
        let sources = self.sources.lock().expect("sources lock").clone();
        let mut families = Vec::new();
        for source in sources {
            match source.read().await {
                Ok(read) => families.extend(read),
                Err(e) => tracing::warn!(source = source.name(), error = %e, "gauge source failed"),
            }
        }
        *self.sourced.0.lock().expect("gauges lock") = families;
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Binds the metrics listener of `listen` (`host:port`).
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics listener {listen}"))
}

/// Serves `GET /metrics` on `listener` until the process stops (the address is known to
/// [`Metrics::served_at`] from this call on). Nothing else is there: the listener is for the
/// scraper only (see docs/security.md, "Metrics").
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = std::io::Result<()>> {
    if let Ok(addr) = listener.local_addr() {
        let _ = metrics.served_at.set(addr);
    }
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], m.render().await)
            }),
        )
        .with_state(metrics);
    async move { axum::serve(listener, app).await }
}
