//! What spin-host takes from a `spin.toml`, as `spin up` reads it: each `[[trigger.http]]`
//! route with its component, and each component's Wasm file and files mounts. Variables are not
//! read from it (they come flat from `--var` and `SPIN_VARIABLE_*`, see the crate docs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// One component of the app.
#[derive(Debug, PartialEq, Eq)]
pub struct ComponentSpec {
    /// Its name in the manifest (`[component.<name>]`).
    pub name: String,
    /// The Wasm file, relative paths taken from the manifest's folder.
    pub source: PathBuf,
    /// Host folders mounted read-only in the component: (host folder, guest path).
    pub mounts: Vec<(PathBuf, String)>,
}

/// A route as Spin writes it: `/path` (exact) or `/path/...` (that path and everything below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Only this path.
    Exact(String),
    /// This prefix (without its trailing `/...`) and every path below it.
    Wildcard(String),
}

impl Route {
    fn parse(s: &str) -> anyhow::Result<Self> {
        if !s.starts_with('/') {
            bail!("route {s:?} must start with /");
        }
        Ok(match s.strip_suffix("/...") {
            Some(prefix) => Route::Wildcard(prefix.to_owned()),
            None => Route::Exact(s.to_owned()),
        })
    }

    /// `None` if the route does not take `path`; else how specific it is (higher wins).
    fn rank(&self, path: &str) -> Option<usize> {
        match self {
            // An exact route beats any wildcard.
            Route::Exact(p) => (p == path).then_some(usize::MAX),
            Route::Wildcard(prefix) => {
                let below = path
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                below.then_some(prefix.len())
            }
        }
    }
}

/// The app: its components and the routes to them.
#[derive(Debug)]
pub struct App {
    /// The components, in name order.
    pub components: Vec<ComponentSpec>,
    /// Each route with the index of its component in `components`.
    pub routes: Vec<(Route, usize)>,
}

impl App {
    /// The component that answers `path` as Spin's router picks it: an exact route first, else
    /// the wildcard with the longest prefix.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .filter_map(|(r, c)| Some((r.rank(path)?, *c)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, c)| c)
    }

    /// One component (`--component`) on every path.
    pub fn single(source: PathBuf) -> Self {
        Self {
            components: vec![ComponentSpec {
                name: "edge".into(),
                source,
                mounts: Vec::new(),
            }],
            routes: vec![(Route::Wildcard(String::new()), 0)],
        }
    }

    /// Reads a `spin.toml`.
    pub fn load(manifest: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let base = manifest.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).with_context(|| format!("in {}", manifest.display()))
    }

    fn parse(text: &str, base: &Path) -> anyhow::Result<Self> {
        let m: Manifest = toml::from_str(text)?;
        let names: Vec<&String> = m.component.keys().collect();
        let mut components = Vec::new();
        for (name, c) in &m.component {
            let mut mounts = Vec::new();
            for f in &c.files {
                let Files::Mount {
                    source,
                    destination,
                } = f
                else {
                    bail!(
                        "component {name}: only files = [{{ source, destination }}] is supported"
                    );
                };
                mounts.push((base.join(source), destination.clone()));
            }
            components.push(ComponentSpec {
                name: name.clone(),
                source: base.join(&c.source),
                mounts,
            });
        }
        let mut routes = Vec::new();
        for t in &m.trigger.http {
            let Some(i) = names.iter().position(|n| **n == t.component) else {
                bail!("route {} names no component {:?}", t.route, t.component);
            };
            routes.push((Route::parse(&t.route)?, i));
        }
        Ok(Self { components, routes })
    }
}

#[derive(Deserialize)]
struct Manifest {
    trigger: Triggers,
    component: BTreeMap<String, Component>,
}

#[derive(Deserialize)]
struct Triggers {
    http: Vec<HttpTrigger>,
}

#[derive(Deserialize)]
struct HttpTrigger {
    route: String,
    component: String,
}

#[derive(Deserialize)]
struct Component {
    source: String,
    #[serde(default)]
    files: Vec<Files>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Files {
    Mount {
        source: String,
        destination: String,
    },
    #[allow(dead_code)] // read only to say it is not supported
    Glob(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "x"
[[trigger.http]]
route = "/..."
component = "edge"
[[trigger.http]]
route = "/"
component = "web"
[[trigger.http]]
route = "/watch"
component = "web"
[[trigger.http]]
route = "/assets/..."
component = "web"
[component.edge]
source = "target/edge.wasm"
[component.edge.variables]
a = "{{ a }}"
[component.web]
source = "target/web.wasm"
files = [{ source = "web/dist", destination = "/" }]
"#;

    #[test]
    fn routes_like_spin() {
        let app = App::parse(MANIFEST, Path::new("/repo")).unwrap();
        let name = |p: &str| app.route(p).map(|i| app.components[i].name.as_str());
        assert_eq!(name("/"), Some("web"));
        assert_eq!(name("/watch"), Some("web"));
        assert_eq!(name("/assets/app.css"), Some("web"));
        assert_eq!(name("/assets"), Some("web"));
        assert_eq!(name("/assetsx"), Some("edge"));
        assert_eq!(name("/watch/x"), Some("edge"));
        assert_eq!(name("/v1/videos/x"), Some("edge"));
        assert_eq!(name("/healthz"), Some("edge"));
        let web = &app.components[app.route("/").unwrap()];
        assert_eq!(web.source, Path::new("/repo/target/web.wasm"));
        assert_eq!(
            web.mounts,
            vec![(PathBuf::from("/repo/web/dist"), "/".to_owned())]
        );
        let single = App::single("e.wasm".into());
        assert_eq!(single.route("/"), Some(0));
        assert_eq!(single.route("/anything/at/all"), Some(0));
    }
}
