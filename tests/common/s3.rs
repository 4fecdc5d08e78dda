//! A real S3-compatible server on loopback (`s3s-fs`), started and stopped by the tests.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use estuary::config::{Config, S3Config, StorageBackend};

pub const ACCESS_KEY: &str = "estuary-test";
pub const SECRET_KEY: &str = "estuary-test-secret";
pub const BUCKET: &str = "media";

/// `s3s-fs` serving a folder (each sub-folder is a bucket). Killed when dropped.
pub struct S3Server {
    child: Option<Child>,
    pub root: PathBuf,
    pub addr: SocketAddr,
}

impl S3Server {
    /// Starts on a free port with one empty bucket.
    pub fn start(root: &Path) -> S3Server {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server =
            S3Server { child: None, root: root.to_owned(), addr: format!("127.0.0.1:{port}").parse().unwrap() };
        server.resume();
        server
    }

    /// Starts (again) on the same port and folder.
    pub fn resume(&mut self) {
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &self.addr.port().to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("s3s-fs is needed by this test (run ./scripts/test, which installs it): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (an outage, as far as estuary can tell).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn s3_config(&self) -> S3Config {
        S3Config {
            bucket: BUCKET.into(),
            endpoint: format!("http://{}", self.addr),
            path_style: true,
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
            max_attempts: 2,
            ..S3Config::default()
        }
    }

    /// An estuary test config reading from this server.
    pub fn estuary_config(&self) -> Config {
        let mut c = super::test_config();
        c.storage.backend = StorageBackend::S3;
        c.storage.s3 = self.s3_config();
        c.storage.breaker_threshold = 3;
        c.storage.breaker_cooldown = Duration::from_millis(500);
        c
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
