//! The SMTP server the notification emails go to: `smtp_sink.py` on loopback (aiosmtpd, from
//! Debian's python3-aiosmtpd), which parses each message with Python's email package and logs
//! what the tests check, and refuses for good (554) a message whose subject holds `REFUSE`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{free_port, Proc};

/// A running SMTP server.
pub struct Sink {
    /// `smtp://127.0.0.1:port`, for `APP_NOTIFICATIONS__SMTP_URL`.
    pub url: String,
    dir: tempfile::TempDir,
    proc: Proc,
}

impl Sink {
    /// Starts one and waits until it takes connections.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        // Debian's python3, which has Debian's aiosmtpd, whatever python3 comes first on PATH.
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/src/smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir.path());
        let proc = Proc::spawn("smtp sink", cmd, port, dir.path().join("out.log"));
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the SMTP sink did not start:\n{}",
                proc.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            url: format!("smtp://127.0.0.1:{port}"),
            dir,
            proc,
        }
    }

    /// Every message received so far, in order. A line the sink is still writing (no newline
    /// yet) is left for the next read.
    pub fn messages(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("messages.jsonl")).unwrap_or_default();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .map(|l| serde_json::from_str(l).expect("a sink line is JSON"))
            .collect()
    }

    /// Waits until `done` holds for the messages (checked every 100 ms), or panics after
    /// `limit` naming `what`.
    pub async fn until(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let m = self.messages();
            if done(&m) {
                return m;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; received {m:#?}\n{}",
                self.proc.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
