//! The `estuary` command: `serve` runs the origin, `check-config` prints the effective config, `health` probes a running one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use estuary::config::{ByteSize, Config, EdgeRuntime, LogFormat};
use estuary::packaging::url::{self, VodPath};
use estuary::server::{self, StartOptions};

#[derive(Parser)]
#[command(name = "estuary", version, about = "HLS/DASH streaming origin")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the origin (edge, ingest and API tiers).
    Serve(ServeArgs),
    /// Load and validate the configuration, then print it as TOML.
    CheckConfig(ServeArgs),
    /// Package an MP4 file in memory and print what players would get (renditions, segments, the master playlist).
    Inspect {
        file: PathBuf,
        /// Target segment duration in seconds.
        #[arg(long, default_value_t = 6.0)]
        segment_duration: f64,
    },
    /// Ask a running estuary whether it is healthy (exit 0) or not (exit 1); for container health checks.
    Health {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        #[arg(long, default_value = "/healthz")]
        path: String,
    },
}

/// Flags override the environment, which overrides the config file.
#[derive(Args)]
struct ServeArgs {
    /// TOML config file (see estuary.example.toml).
    #[arg(long, env = "ESTUARY_CONFIG")]
    config: Option<PathBuf>,
    /// Edge listener (players, CDN): IP:port or localhost:port [default: 0.0.0.0:8080] [env: ESTUARY_EDGE_ADDR].
    #[arg(long, value_parser = estuary::config::listen::parse)]
    edge_addr: Option<SocketAddr>,
    /// Ingest listener (encoders): IP:port or localhost:port [default: 0.0.0.0:8081] [env: ESTUARY_INGEST_ADDR].
    #[arg(long, value_parser = estuary::config::listen::parse)]
    ingest_addr: Option<SocketAddr>,
    /// API listener (operators, probes, metrics): IP:port or localhost:port [default: 127.0.0.1:9090]
    /// [env: ESTUARY_API_ADDR].
    #[arg(long, value_parser = estuary::config::listen::parse)]
    api_addr: Option<SocketAddr>,
    /// Root folder of local storage [default: assets] [env: ESTUARY_STORAGE_ROOT].
    #[arg(long)]
    storage_root: Option<PathBuf>,
    /// Segment cache capacity ("512MiB", "2GiB", or bytes) [default: 512MiB] [env: ESTUARY_CACHE_BYTES].
    #[arg(long, value_parser = ByteSize::parse)]
    cache_bytes: Option<ByteSize>,
    /// Log lines for people (pretty) or for log shippers (json) [default: pretty] [env: ESTUARY_LOG_FORMAT].
    #[arg(long)]
    log_format: Option<LogFormat>,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        config.apply_env(std::env::vars())?;
        if let Some(a) = self.edge_addr {
            config.edge.addr = a;
        }
        if let Some(a) = self.ingest_addr {
            config.ingest.addr = a;
        }
        if let Some(a) = self.api_addr {
            config.api.addr = a;
        }
        if let Some(r) = &self.storage_root {
            config.storage.root = r.clone();
        }
        if let Some(b) = self.cache_bytes {
            config.cache.bytes = b;
        }
        if let Some(f) = self.log_format {
            config.log.format = f;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args.config().and_then(serve),
        Command::CheckConfig(args) => args.config().and_then(|c| {
            print!("{}", toml::to_string_pretty(&c.redacted())?);
            Ok(())
        }),
        Command::Inspect { file, segment_duration } => inspect(&file, segment_duration),
        Command::Health { addr, path } => health(addr, &path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("estuary: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let _log_guard = estuary::server::logging::init(&config.log);
    server::resources::return_large_buffers();
    match server::resources::raise_descriptor_limit() {
        Ok(n) => tracing::info!(descriptors = n, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the descriptor limit"),
    }
    let workers = match config.edge.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let per_core = config.edge.runtime == EdgeRuntime::PerCore;
    let (cores, shared) = if per_core {
        (server::per_core::Runtimes::start(workers)?, None)
    } else {
        let shared = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("edge")
            .enable_all()
            .build()
            .context("building the edge runtime")?;
        (server::per_core::Runtimes::default(), Some(shared))
    };
    let control_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("control")
        .enable_all()
        .build()
        .context("building the control runtime")?;
    let edge_runtimes = match &shared {
        Some(runtime) => vec![runtime.handle().clone()],
        None => cores.handles(),
    };
    let options = StartOptions { storage: None, edge_runtimes };
    control_rt.block_on(async {
        let running = server::start(&config, options).await?;
        if let Some(addr) = running.edge_addr {
            let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
            let vod = url::vod("sample/sample.mp4", VodPath::Master);
            tracing::info!(
                edge_workers = workers,
                edge_runtime = ?config.edge.runtime,
                "estuary is ready: try `ffplay http://{host}:{port}/static/sample/hls/master.m3u8` \
                 (or, packaged on the fly, `ffplay http://{host}:{port}{vod}`)",
                port = addr.port()
            );
        }
        server::termination_signal().await;
        running.shutdown().await;
        anyhow::Ok(())
    })?;
    if let Some(runtime) = shared {
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    cores.stop();
    control_rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// `estuary inspect`: the packaging dry run, reported for people.
fn inspect(file: &std::path::Path, segment_duration: f64) -> anyhow::Result<()> {
    use estuary::packaging::inspect::dry_run;
    use estuary::packaging::mp4::IndexLimits;
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let run = dry_run(&data, segment_duration, IndexLimits::default())?;
    let p = &run.presentation;
    println!("{}: {:.3} s, target duration {} s", file.display(), p.duration_secs, p.target_duration);
    for r in p.renditions() {
        println!(
            "  {} {} {} segments, peak {} b/s, average {} b/s",
            r.id,
            r.codecs,
            r.segment_count(),
            r.peak_bps,
            r.average_bps
        );
    }
    print!("\n{}", run.master_playlist);
    Ok(())
}

/// A minimal HTTP/1.1 GET with a 3 s budget; success is a 2xx status.
fn health(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).context("reading the status line")?;
    let status = std::str::from_utf8(&head[9..12]).unwrap_or("???");
    if status.starts_with('2') { Ok(()) } else { anyhow::bail!("{addr}{path} answered {status}") }
}
