//! The webhook receiver the tests deliver to: `webhook_receiver.py` on loopback, which checks
//! signatures with Python's hmac, fails or refuses as told, and logs every request.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{free_port, Proc};

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:port/hook`.
    pub url: String,
    dir: tempfile::TempDir,
    _proc: Proc,
}

impl Receiver {
    /// Starts one that accepts every genuine delivery (once told the secrets).
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/webhook_receiver.py"
        ))
        .arg(port.to_string())
        .arg(dir.path());
        let mut proc = Proc::spawn("webhook receiver", cmd, port, dir.path().join("out.log"));
        let base = format!("http://127.0.0.1:{port}");
        proc.wait_ready(&base, Duration::from_secs(10)).await;
        Self {
            url: format!("{base}/hook"),
            dir,
            _proc: proc,
        }
    }

    fn write(&self, name: &str, text: &str) {
        // Whole or not at all: the receiver reads these files while we write them.
        let tmp = self.dir.path().join(format!(".{name}"));
        std::fs::write(&tmp, text).expect("writing a receiver file");
        std::fs::rename(&tmp, self.path(name)).expect("writing a receiver file");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The file the receiver reads its secrets from (one per line), for a writer of its own.
    pub fn secrets_file(&self) -> PathBuf {
        self.path("secrets")
    }

    /// The secrets a genuine delivery is signed with (any one of them).
    pub fn trust(&self, secrets: &[&str]) {
        self.write("secrets", &secrets.join("\n"));
    }

    /// Answers 500 to the first `n` attempts of each event id, then 200.
    pub fn fail_first(&self, n: u32) {
        self.write("mode", &format!("fail {n}"));
    }

    /// Answers 503 to everything until told otherwise.
    pub fn go_down(&self) {
        self.write("mode", "down");
    }

    /// Holds every genuine delivery unanswered (logged as `"held"`) until told otherwise, then
    /// answers 200 whether its sender is still there or not.
    pub fn hold(&self) {
        self.write("mode", "hold");
    }

    /// Accepts every genuine delivery.
    pub fn accept(&self) {
        self.write("mode", "accept");
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a receiver log line"))
            .collect()
    }

    /// The deliveries answered 200, in arrival order.
    pub fn accepted(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|l| l["status"] == 200)
            .collect()
    }

    /// Waits until `done` holds for the accepted deliveries, or panics with the log.
    pub async fn until(&self, what: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) {
        self.until_logged(what, limit, |log| {
            let accepted: Vec<Value> = log.iter().filter(|l| l["status"] == 200).cloned().collect();
            done(&accepted)
        })
        .await;
    }

    /// Waits until `done` holds for every request logged so far, or panics with the log.
    pub async fn until_logged(&self, what: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.log()) {
            assert!(
                Instant::now() < deadline,
                "receiver: {what} not within {limit:?}; its log: {:#?}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
