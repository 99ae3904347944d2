//! The Worker's JS shell (edge/cloudflare/shell.js) under workerd, with a stand-in for its
//! Wasm half that traps on request: a trap, whether on the first call or on an answer, resets
//! the instance (wasm-bindgen's reset function) and answers that request 500; the next
//! request is served by the fresh instance, configured again. A Rust panic cannot be caused on purpose in the
//! real Worker (no route panics, and no debug switch is built in), so the stand-in plays it.

use std::process::Command;
use std::time::Duration;

use e2e::{free_port, root, Proc};

/// The exports shell.js imports from wasm-bindgen's module, as plain JS. `x-instance` says
/// which instance answered; `/trap` traps in `begin`, `/later` in `resume`.
const STAND_IN: &str = r#"
let instance = 1;
let configured = false;
let out = new Uint8Array();
export function __wbg_reset_state() { instance++; configured = false; }
export function configure() { configured = true; }
export function payload() { return out; }
export function limit() { return '[null, {}]'; }
export function failed() {
  out = new TextEncoder().encode('{"error":"internal"}');
  return JSON.stringify([{ c: 'respond', status: 500, headers: [], b: [0, out.length] }, { c: 'end' }]);
}
export function begin(id, head) {
  if (!configured) throw new Error('a fresh instance must be configured first');
  const url = JSON.parse(head)[1];
  if (url.endsWith('/trap')) throw new WebAssembly.RuntimeError('unreachable');
  if (url.endsWith('/later')) return JSON.stringify([{ c: 'sleep', t: 0, ms: 1 }]);
  const headers = [['x-instance', String(instance)]];
  return JSON.stringify([{ c: 'respond', status: 200, headers }, { c: 'end' }]);
}
export function resume() { throw new WebAssembly.RuntimeError('unreachable'); }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_resets_the_instance_and_later_requests_are_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("edge/cloudflare/shell.js"),
        dir.path().join("shell.js"),
    )
    .unwrap();
    std::fs::write(dir.path().join("index.js"), STAND_IN).unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("config.capnp"),
        format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "edge", worker = .edge)],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "edge")],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "shell.js", esModule = embed "shell.js"),
    (name = "index.js", esModule = embed "index.js"),
  ],
  compatibilityDate = "2025-09-01",
);
"#
        ),
    )
    .unwrap();
    let workerd = root().join("node_modules/@cloudflare/workerd-linux-64/bin/workerd");
    let mut cmd = Command::new(workerd);
    cmd.arg("serve").arg(dir.path().join("config.capnp"));
    let mut proc = Proc::spawn("workerd", cmd, port, dir.path().join("workerd.log"));
    let base = format!("http://127.0.0.1:{port}");
    proc.wait_ready(&format!("{base}/ok"), Duration::from_secs(30))
        .await;

    let c = reqwest::Client::new();
    let get = |path: &str| c.get(format!("{base}{path}")).send();
    let instance = |r: &reqwest::Response| r.headers()["x-instance"].to_str().unwrap().to_owned();
    let first = get("/ok").await.unwrap();
    assert_eq!(
        (first.status().as_u16(), instance(&first)),
        (200, "1".into())
    );

    let trapped = get("/trap").await.unwrap();
    assert_eq!(trapped.status().as_u16(), 500);
    assert_eq!(trapped.text().await.unwrap(), r#"{"error":"internal"}"#);
    let next = get("/ok").await.unwrap();
    assert_eq!(
        (next.status().as_u16(), instance(&next)),
        (200, "2".into()),
        "a fresh instance"
    );

    let trapped = get("/later").await.unwrap();
    assert_eq!(trapped.status().as_u16(), 500, "{}", proc.log());
    assert_eq!(trapped.text().await.unwrap(), r#"{"error":"internal"}"#);
    let next = get("/ok").await.unwrap();
    assert_eq!((next.status().as_u16(), instance(&next)), (200, "3".into()));
}
