//! What operators build on. After real traffic (VOD through the cache, a 404, a live push), the
//! `/metrics` exposition passes `promtool check metrics`; it carries the series the dashboard and
//! alerts are drawn from, with their labels (object kind, tier, backend and operation, channel); and
//! every metric `deploy/grafana/estuary.json` and `deploy/prometheus/alerts.yaml` name is one estuary
//! exports. The JSON access log says who asked, what, the answer, and the request id.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::client::get;
use common::live_push::{create_channel, push_sample};
use common::process::Estuary;
use common::{TestServer, assets_dir, test_config_in};

const TOKEN: &str = "operations-key-0123456789abcdef";

/// Metrics exported only where they mean something, and why.
const CONDITIONAL: &[(&str, &str)] = &[("estuary_memory_limit_bytes", "only under a cgroup memory limit")];

/// The metric names a text names (`estuary_...`, `process_...`), histogram suffixes taken off.
fn named_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["estuary_", "process_"] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String =
                text[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            names.insert(base.to_owned());
        }
    }
    names
}

/// The metrics an exposition declares (`# TYPE name kind`).
fn exported(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

fn promtool_check_metrics(exposition: &str) -> std::process::Output {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; ./scripts/test installs it)");
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_what_the_dashboard_and_alerts_are_drawn_from() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(assets_dir().join("sample/sample.mp4"), dir.path().join("sample.mp4")).unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    for path in ["master.m3u8", "v0.m3u8", "v0/init.mp4", "v0/1.m4s", "v0/1.m4s"] {
        assert_eq!(get(s.edge, &format!("/vod/sample.mp4/{path}")).await.status, 200, "{path}");
    }
    assert_eq!(get(s.edge, "/vod/missing.mp4/master.m3u8").await.status, 404);
    create_channel(s.api, &format!(r#"{{"id":"ops","token":"{TOKEN}","target_duration":"4s"}}"#)).await;
    push_sample(s.ingest, &format!("/ingest/ops/{TOKEN}/v0"), &[], 201).await;

    let text = get(s.api, "/metrics").await.text();
    let lint = promtool_check_metrics(&text);
    assert!(
        lint.status.success() && lint.stdout.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    // Latency by object kind, the autoscaler's in-flight and connection gauges, storage latency by
    // backend and operation, the process and build, the live channel's upload age.
    for start in [
        r#"estuary_http_request_duration_seconds_bucket{kind="segment",route="/vod/{*path}",tier="edge",le="0.0005"}"#,
        r#"estuary_http_request_duration_seconds_bucket{kind="playlist",route="/vod/{*path}",tier="edge",le="+Inf"}"#,
        r#"estuary_http_request_duration_seconds_count{kind="init",route="/vod/{*path}",tier="edge"} 1"#,
        r#"estuary_http_requests_total{kind="segment",route="/vod/{*path}",status="200",tier="edge"} 2"#,
        r#"estuary_http_requests_total{kind="playlist",route="/vod/{*path}",status="404",tier="edge"} 1"#,
        r#"estuary_http_requests_total{kind="segment",route="/ingest/{channel}/{*path}",status="201",tier="ingest"} 1"#,
        r#"estuary_http_requests_in_flight{tier="edge"} 0"#,
        r#"estuary_http_requests_in_flight{tier="api"} 1"#,
        r#"estuary_http_connections_open{tier="api"} "#,
        r#"estuary_storage_request_duration_seconds_bucket{backend="local",operation="get_ranges",le="+Inf"} "#,
        r#"estuary_storage_request_duration_seconds_count{backend="local",operation="head"} "#,
        r#"estuary_build_info{version=""#,
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        r#"estuary_live_seconds_since_upload{channel="ops"} "#,
    ] {
        assert!(text.lines().any(|l| l.starts_with(start)), "no {start}\n{text}");
    }
    assert!(text.contains("# TYPE estuary_http_requests_in_flight gauge\n"), "{text}");
    assert!(text.contains("# TYPE estuary_storage_request_duration_seconds histogram\n"), "{text}");

    // Every metric the dashboard and the alerts name is exported (or says when it is not).
    let exported = exported(&text);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["deploy/grafana/estuary.json", "deploy/prometheus/alerts.yaml"] {
        let names = named_metrics(&std::fs::read_to_string(root.join(file)).unwrap());
        assert!(names.len() > 10, "{file}: {names:?}");
        for name in &names {
            let conditional = CONDITIONAL.iter().any(|(n, _)| n == name);
            assert!(exported.contains(name) || conditional, "{file} names {name}, which estuary does not export");
        }
    }
    // Every alert has its runbook.
    let runbooks = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let alerts = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yaml")).unwrap();
    for alert in alerts.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(runbooks.contains(&format!("### {alert}\n")), "{alert} has no runbook in docs/operations.md");
        assert!(alerts.contains(&format!("docs/operations.md#{}", alert.to_lowercase())), "{alert}: no runbook link");
    }
}

/// The JSON access lines `estuary` printed so far whose `message` starts with "request".
fn access_lines(estuary: &Estuary, wait_for: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lines.len() < wait_for && std::time::Instant::now() < deadline {
        let Ok(line) = estuary.log.recv_timeout(std::time::Duration::from_millis(200)) else { continue };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if event["target"] == "estuary::access" {
            lines.push(event);
        }
    }
    lines
}

/// Logs an SRE can work an incident from: who asked (the client behind trusted proxies, its user
/// agent, CloudFront's id), what, the answer, and a request id the response echoes; a 5xx at `warn`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_carry_what_an_incident_needs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(assets_dir().join("sample/sample.mp4"), dir.path().join("sample.mp4")).unwrap();
    let trusted = r#"["127.0.0.0/8", "130.176.0.0/16"]"#;
    let estuary =
        Estuary::spawn(&["--storage-root", dir.path().to_str().unwrap()], &[("ESTUARY_LOG_TRUSTED_PROXIES", trusted)]);
    // As CloudFront sends it through a load balancer on loopback: the viewer, then CloudFront's hop.
    let headers = [
        ("X-Amz-Cf-Id", "Yx3CJsV_cf-request-id=="),
        ("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 130.176.1.1"),
        ("User-Agent", "AppleCoreMedia/1.0.0.21A5326a (iPhone; U; CPU OS 17_0 like Mac OS X)"),
    ];
    let path = "/vod/sample.mp4/master.m3u8?start=0";
    // The second answer comes from the hot path (a pre-rendered head): it names its request too.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let reply = common::client::request(estuary.edge, "GET", path, &headers).await;
        assert_eq!(reply.status, 200);
        ids.push(reply.header("x-request-id").expect("X-Request-Id echoed").to_owned());
    }
    assert_ne!(ids[0], ids[1]);
    let lines = access_lines(&estuary, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, id) in lines.iter().zip(&ids) {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["message"], "request served", "{line}");
        assert_eq!(line["request_id"], id.as_str(), "{line}");
        assert_eq!(line["client_ip"], "203.0.113.9", "the viewer, not what it claimed before CloudFront: {line}");
        assert_eq!(line["forwarded_for"], "6.6.6.6, 203.0.113.9, 130.176.1.1", "{line}");
        assert_eq!(line["cf_id"], "Yx3CJsV_cf-request-id==", "{line}");
        assert!(line["user_agent"].as_str().unwrap().starts_with("AppleCoreMedia/"), "{line}");
        assert_eq!(
            (line["path"].as_str(), line["query"].as_str()),
            (Some("/vod/sample.mp4/master.m3u8"), Some("start=0"))
        );
        assert_eq!((line["kind"].as_str(), line["status"].as_u64()), (Some("playlist"), Some(200)), "{line}");
        assert!(line["duration_us"].as_u64().is_some() && line["cache"].is_string(), "{line}");
    }
    assert_eq!(lines[1]["cache"], "hit");
    // The first read the MP4's moov from storage before its headers; the hot answer read nothing.
    assert!(lines[0]["storage_us"].as_u64().unwrap() > 0, "{}", lines[0]);
    assert_eq!(lines[1]["storage_us"].as_u64(), Some(0), "{}", lines[1]);
    // An upstream's own request id is kept.
    let upstream = common::client::request(estuary.edge, "GET", "/nothing", &[("X-Request-Id", "alb-1-2-3")]).await;
    assert_eq!(upstream.header("x-request-id"), Some("alb-1-2-3"));
    let refused = access_lines(&estuary, 1);
    assert_eq!((refused[0]["message"].as_str(), refused[0]["status"].as_u64()), (Some("request refused"), Some(404)));
    assert_eq!(refused[0]["client_ip"], "127.0.0.1", "no forwarding header: the peer");

    // Storage goes away (a real S3 server, stopped): the edge answers 5xx, logged at WARN with why.
    let s3_dir = tempfile::tempdir().unwrap();
    let mut s3 = common::s3::S3Server::start(s3_dir.path());
    let endpoint = format!("http://{}", s3.addr);
    let broken = Estuary::spawn(
        &[],
        &[
            ("ESTUARY_STORAGE_BACKEND", "s3"),
            ("ESTUARY_STORAGE_S3_BUCKET", common::s3::BUCKET),
            ("ESTUARY_STORAGE_S3_ENDPOINT", endpoint.as_str()),
            ("ESTUARY_STORAGE_S3_PATH_STYLE", "true"),
            ("ESTUARY_STORAGE_S3_ACCESS_KEY_ID", common::s3::ACCESS_KEY),
            ("ESTUARY_STORAGE_S3_SECRET_ACCESS_KEY", common::s3::SECRET_KEY),
            ("ESTUARY_STORAGE_DEADLINE", "1s"),
        ],
    );
    s3.stop();
    let failed = get(broken.edge, "/vod/a.mp4/master.m3u8").await;
    assert!(failed.status >= 500, "{} {}", failed.status, failed.text());
    let lines = access_lines(&broken, 1);
    let line = &lines[0];
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["message"], "request failed", "{line}");
    assert_eq!(line["status"].as_u64(), Some(u64::from(failed.status)), "{line}");
    assert!(line["error"].is_string() && line["request_id"].is_string(), "why, and which request: {line}");
}
