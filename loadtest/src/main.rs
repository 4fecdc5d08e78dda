//! The `estuary-load` command.

use std::time::Duration;

use clap::Parser;
use estuary_load::{Abr, Pace, RunConfig, Scenario, run};

#[derive(Parser)]
#[command(name = "estuary-load", version, about = "Simulate HLS/DASH players against an origin")]
struct Cli {
    /// vod, live, spike, ll-hls, dash or burst.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Master playlist (vod, live, spike, ll-hls), MPD (dash) or any URL (burst).
    #[arg(long, required_unless_present = "urls")]
    url: Option<String>,
    /// The same object on several origins (pods), comma-separated: players are spread evenly
    /// across them (player i plays from the (i mod n)-th).
    #[arg(long, value_delimiter = ',', conflicts_with = "url")]
    urls: Vec<String>,
    #[arg(long, default_value_t = 10)]
    players: u64,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Players join evenly over this time (spike: the kick-off window).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    ramp: Duration,
    #[arg(long, value_enum, default_value = "realtime")]
    pace: Pace,
    /// Variant choice: a variant index, "random" or "throughput".
    #[arg(long, default_value = "0")]
    abr: String,
    /// Live: blocking playlist reload (`_HLS_msn`) instead of polling.
    #[arg(long)]
    blocking: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file (the table still goes to stdout).
    #[arg(long)]
    json_file: Option<std::path::PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// A header sent with every request, "Name: value" (repeatable): the origin lock's header
    /// when the origin is locked to its CDN, an authorization token.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Exit with status 2 when more than this share of the requests failed (0.01: 1%).
    #[arg(long, default_value_t = 0.01)]
    max_error_rate: f64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let abr = match cli.abr.as_str() {
        "random" => Abr::Random,
        "throughput" => Abr::Throughput,
        n => Abr::Fixed(n.parse().map_err(|_| anyhow::anyhow!("--abr takes a variant index, random or throughput"))?),
    };
    let urls: Vec<String> = cli.url.into_iter().chain(cli.urls).collect();
    let headers = cli
        .headers
        .iter()
        .map(|h| {
            let (name, value) =
                h.split_once(':').ok_or_else(|| anyhow::anyhow!("--header {h:?}: expected \"Name: value\""))?;
            let name = http::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|e| anyhow::anyhow!("--header {h:?}: {e}"))?;
            let value =
                http::HeaderValue::from_str(value.trim()).map_err(|e| anyhow::anyhow!("--header {h:?}: {e}"))?;
            Ok((name, value))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(bad) = urls.iter().find(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
        anyhow::bail!("{bad:?} is not an http:// or https:// URL");
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if cli.threads > 0 {
        rt.worker_threads(cli.threads);
    }
    let rt = rt.enable_all().build()?;
    let scenario = cli.scenario;
    let ramp = if scenario == Scenario::Spike && cli.ramp.is_zero() { Duration::from_secs(5) } else { cli.ramp };
    let report = rt.block_on(run(RunConfig {
        scenario,
        urls,
        players: cli.players,
        duration: cli.duration,
        ramp,
        pace: cli.pace,
        abr,
        blocking: cli.blocking,
        progress: !cli.json,
        headers,
    }));
    if let Some(path) = &cli.json_file {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let rate = report.errors as f64 / report.requests.max(1) as f64;
    if rate > cli.max_error_rate {
        eprintln!(
            "estuary-load: {} of {} requests failed ({:.2}%), over --max-error-rate {}",
            report.errors,
            report.requests,
            rate * 100.0,
            cli.max_error_rate
        );
        std::process::exit(2);
    }
    Ok(())
}
