//! Headless Chromium running hls.js, dash.js or Shaka: a small page server (the player page, the players'
//! scripts, and the page's report), and the browser process, killed whatever happens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PAGE: &str = include_str!("../browser/player.html");

/// Where `./scripts/test` puts the npm packages (hls.js, dash.js, Shaka).
fn players_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules")
}

fn script(name: &str) -> Option<Vec<u8>> {
    let path = match name {
        "/hls.min.js" => players_dir().join("hls.js/dist/hls.min.js"),
        "/dash.all.min.js" => players_dir().join("dashjs/dist/dash.all.min.js"),
        "/shaka-player.compiled.js" => players_dir().join("shaka-player/dist/shaka-player.compiled.js"),
        _ => return None,
    };
    Some(std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (./scripts/test installs it: npm ci --prefix tests/browser)", path.display())
    }))
}

/// Serves the player page and scripts on loopback (a different origin from the edge, as a real site
/// is) and passes each report the page POSTs to the test.
pub struct PageServer {
    pub addr: SocketAddr,
    reports: mpsc::Receiver<serde_json::Value>,
}

impl PageServer {
    pub fn start() -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, reports) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || serve(stream, tx));
            }
        });
        PageServer { addr, reports }
    }

    /// The next report, or `None` after `limit`.
    pub fn report(&self, limit: Duration) -> Option<serde_json::Value> {
        self.reports.recv_timeout(limit).ok()
    }

    /// Opens the player page with `query` in headless Chromium; the page's report (it must come
    /// within 90 s). Call from a blocking context (`block_in_place`).
    pub fn play(&self, query: &str) -> serde_json::Value {
        let url = format!("http://{}/player.html?{query}", self.addr);
        let player = query.split('&').next().unwrap_or(query);
        let _browser = Browser::open(&url);
        self.report(Duration::from_secs(90)).unwrap_or_else(|| panic!("{player}: no report from the page within 90 s"))
    }
}

fn serve(stream: TcpStream, reports: mpsc::Sender<serde_json::Value>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
    let (status, content_type, body) = match path.as_str() {
        "/player.html" => ("200 OK", "text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
        "/report" => {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                let _ = reports.send(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
            }
            ("204 No Content", "text/plain", Vec::new())
        }
        "/favicon.ico" => ("404 Not Found", "text/plain", Vec::new()),
        name => match script(name) {
            Some(js) => ("200 OK", "application/javascript", js),
            None => ("404 Not Found", "text/plain", Vec::new()),
        },
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
}

/// A headless Chromium showing one page; its whole process group is killed on drop.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

/// Headless Chromium on `url` with `extra` flags, in its own process group, its profile in `profile`.
fn chromium(url: &str, extra: &[String], profile: &tempfile::TempDir) -> Child {
    Command::new("chromium")
        .process_group(0)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .args([
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            "--mute-audio",
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium runs (./scripts/test installs it with apt)")
}

impl Browser {
    pub fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = chromium(url, &[], &profile);
        Browser { child, _profile: profile }
    }

    /// Renders `url` for a few seconds of page time (its scripts run, its data loads) and writes a
    /// PNG of `width`x`height` to `path`.
    pub fn screenshot(url: &str, path: &std::path::Path, (width, height): (u32, u32)) {
        let profile = tempfile::tempdir().unwrap();
        let extra = [
            "--hide-scrollbars".to_owned(),
            "--virtual-time-budget=6000".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--screenshot={}", path.display()),
        ];
        let mut child = chromium(url, &extra, &profile);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                panic!("chromium took more than 60 s to screenshot {url}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
