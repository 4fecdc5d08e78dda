//! Path traversal and malformed paths: none may return a file from outside the storage root.

mod common;

use std::fs;

use common::client::send_raw;
use common::{TestServer, test_config};

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

#[tokio::test]
async fn nothing_outside_the_root_is_ever_served() {
    // root/ holds media; its sibling holds a secret; a symlink inside points out.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("media")).unwrap();
    fs::write(root.join("media/ok.m3u8"), "#EXTM3U\n").unwrap();
    fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("media/link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("escape")).unwrap();

    let mut config = test_config();
    config.storage.root = root.clone();
    let s = TestServer::start(config).await;

    let ok =
        send_raw(s.edge, b"GET /static/media/ok.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    assert_eq!(ok.status, 200);

    let paths: &[&[u8]] = &[
        b"/static/../secret.txt",
        b"/static/media/../../secret.txt",
        b"/static/%2e%2e/secret.txt",
        b"/static/%2E%2E/secret.txt",
        b"/static/media/%2e%2e/%2e%2e/secret.txt",
        b"/static/..%2fsecret.txt",
        b"/static/media%2f..%2f..%2fsecret.txt",
        b"/static/%2e%2e%2fsecret.txt",
        b"/static/..%5csecret.txt",
        b"/static/media\\..\\..\\secret.txt",
        b"/static/%252e%252e/secret.txt",
        b"/static//etc/passwd",
        b"/static/%2fetc%2fpasswd",
        b"/static/media/link.txt",
        b"/static/escape/secret.txt",
        b"/static/media/ok.m3u8%00.txt",
        b"/static/./media/../../secret.txt",
        b"/static/media/./ok.m3u8/../../../secret.txt",
        b"/../secret.txt",
        b"/static/....//secret.txt",
        b"/static/%c0%ae%c0%ae/secret.txt",
        b"/static/media/%0a../secret.txt",
        b"/static/" as &[u8],
        b"/static/media/",
    ];
    assert!(paths.len() >= 15);
    for path in paths {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(path);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let shown = String::from_utf8_lossy(path);
        match send_raw(s.edge, &raw).await {
            Ok(reply) => {
                assert!(matches!(reply.status, 400 | 404), "{shown} answered {} {}", reply.status, reply.text());
                assert!(!reply.text().contains(SECRET), "{shown} leaked the secret");
                assert!(!reply.text().contains("root:"), "{shown} leaked /etc/passwd");
            }
            // The HTTP parser may refuse the request line outright; that is fine too.
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{shown}: {e}"),
        }
    }
    // The server is still up and serving.
    let ok =
        send_raw(s.edge, b"GET /static/media/ok.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    assert_eq!(ok.status, 200);
}
