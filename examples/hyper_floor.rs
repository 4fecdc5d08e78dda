//! The floor of estuary's HTTP stack: hyper's HTTP/1 server on one tokio worker answering every
//! request with the same 259-byte playlist and the headers the edge sends, with no routing, middleware
//! or cache. `wrk` against it shows what hyper + tokio cost per request on this machine.
//!
//!     cargo run --release --example hyper_floor -- 127.0.0.1:18099

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18099".into());
    let playlist = "assets/sample/hls/media.m3u8";
    let body = Bytes::from(
        std::fs::read(playlist)
            .map_err(|e| std::io::Error::other(format!("{playlist}: {e} (run from the repo root)")))?,
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("etag", "\"103-61b8fef962c130a5\"")
                                .header("last-modified", "Sun, 22 Nov 2026 02:37:40 GMT")
                                .header("cache-control", "public, max-age=2")
                                .header("vary", "Accept-Encoding")
                                .header("content-type", "application/vnd.apple.mpegurl")
                                .header("accept-ranges", "bytes")
                                .header("access-control-allow-origin", "*")
                                .header(
                                    "access-control-expose-headers",
                                    "Content-Length, Content-Range, ETag, Last-Modified, Date, Age",
                                )
                                .body(Full::new(body))
                                .expect("constant, valid headers"),
                        )
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}
