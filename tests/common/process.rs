//! The real `estuary` binary as a child process: started on free loopback ports, always killed when the test ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `estuary serve`. Dropping it kills the process (by its own PID).
pub struct Estuary {
    child: Child,
    pub edge: SocketAddr,
    pub api: SocketAddr,
    pub ingest: Option<SocketAddr>,
    /// The internal (pod-to-pod) listener, in a cluster.
    pub internal: Option<SocketAddr>,
    pub log: mpsc::Receiver<String>,
}

impl Estuary {
    /// Runs `estuary serve --log-format json` on free ports with the given extra args and environment.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Estuary {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_estuary"));
        cmd.args(["serve", "--edge-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--log-format", "json"]);
        if !args.contains(&"--ingest-addr") {
            cmd.args(["--ingest-addr", "127.0.0.1:0"]);
        }
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn estuary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut estuary = Estuary {
            child,
            edge: "0.0.0.0:0".parse().unwrap(),
            api: "0.0.0.0:0".parse().unwrap(),
            ingest: None,
            internal: None,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut edge, mut api) = (None, None);
        let clustered = env.iter().any(|(k, _)| *k == "ESTUARY_CLUSTER_REDIS_URL");
        while edge.is_none() || api.is_none() || (clustered && estuary.internal.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = estuary.log.recv_timeout(left).expect("estuary printed its listening addresses");
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if event["message"] == "listening" {
                let addr = event["addr"].as_str().and_then(|a| a.parse().ok());
                match event["tier"].as_str() {
                    Some("edge") => edge = addr,
                    Some("api") => api = addr,
                    Some("ingest") => estuary.ingest = addr,
                    Some("internal") => estuary.internal = addr,
                    _ => {}
                }
            }
        }
        estuary.edge = edge.unwrap();
        estuary.api = api.unwrap();
        estuary
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM to this process.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Estuary {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show what the server said, to explain the failure.
            let lines: Vec<String> = self.log.try_iter().collect();
            for line in lines.iter().rev().take(200).rev() {
                eprintln!("estuary: {line}");
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
