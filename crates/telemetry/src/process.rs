//! Process metrics under the names every Prometheus client library uses (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc`; the cgroup's memory limit; and
//! `estuary_build_info`. Where `/proc` is missing (not Linux) the process figures are left out.

use std::time::{Duration, SystemTime};

use super::metrics::write_sample;

/// The ticks `/proc/self/stat` counts CPU time in: `USER_HZ`, 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// The commit estuary was built from (`ESTUARY_COMMIT` at build time, as the Dockerfile sets it).
const COMMIT: &str = match option_env!("ESTUARY_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Appends the process metrics; `started` is when the process started.
pub fn render(out: &mut String, started: SystemTime) {
    let build = [("version", env!("CARGO_PKG_VERSION")), ("commit", COMMIT)];
    write_sample(out, "estuary_build_info", "gauge", "Always 1: the version and commit running", &build, 1.0);
    let start = started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    write_sample(out, "process_start_time_seconds", "gauge", "Start time, Unix seconds", &[], start.as_secs_f64());
    if let Some(cpu) = cpu_seconds() {
        write_sample(out, "process_cpu_seconds_total", "counter", "User and system CPU time", &[], cpu);
    }
    if let Some(rss) = resident_bytes() {
        write_sample(out, "process_resident_memory_bytes", "gauge", "Resident memory", &[], rss as f64);
    }
    if let Some(open) = std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count) {
        write_sample(out, "process_open_fds", "gauge", "Open file descriptors", &[], open as f64);
    }
    if let Some(max) = max_fds() {
        write_sample(out, "process_max_fds", "gauge", "The open file descriptor limit", &[], max as f64);
    }
    if let Some(limit) = memory_limit() {
        let help = "The cgroup's memory limit (memory.max), when one is set";
        write_sample(out, "estuary_memory_limit_bytes", "gauge", help, &[], limit as f64);
    }
}

/// User plus system time from `/proc/self/stat` (fields 14 and 15, after the command's parentheses).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_command = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    // After the command come the state (field 3) and the rest: utime is field 14, stime 15.
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some((ticks(14)? + ticks(15)?) as f64 / USER_HZ)
}

/// `VmRSS` from `/proc/self/status`.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(kib * 1024)
}

/// The soft limit of open files from `/proc/self/limits`.
fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// The memory limit of the cgroup (v2 `memory.max`, else v1 `memory.limit_in_bytes`); `None` when
/// there is none (`max`, or v1's "no limit" of nearly 2^63).
fn memory_limit() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse::<u64>().ok();
    read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .filter(|&limit| limit < 1 << 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut out = String::new();
        render(&mut out, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert!(out.contains("estuary_build_info{version=\""), "{out}");
        assert!(out.contains("process_start_time_seconds 1700000000\n"), "{out}");
        if cfg!(target_os = "linux") {
            for name in [
                "process_cpu_seconds_total ",
                "process_resident_memory_bytes ",
                "process_open_fds ",
                "process_max_fds ",
            ] {
                let value: f64 = out
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_else(|| panic!("{name}\n{out}"))
                    .parse()
                    .unwrap();
                assert!(value > 0.0 || name.starts_with("process_cpu"), "{name}{value}");
            }
        }
    }
}
