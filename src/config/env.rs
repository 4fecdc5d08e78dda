//! Environment overlay: `ESTUARY_<SECTION>_<FIELD>` sets `[section] field`, for every field of the config.
//!
//! The variable names are derived from the config tree itself, so a new
//! field gets its variable for free: `edge.addr` is `ESTUARY_EDGE_ADDR`,
//! `cache.bytes` is `ESTUARY_CACHE_BYTES`, `storage.root` is
//! `ESTUARY_STORAGE_ROOT`. An unknown `ESTUARY_*` variable is an error, so a
//! typo in a deployment manifest does not pass silently.

use toml::Value;

use super::{Config, ConfigError};

pub const ENV_PREFIX: &str = "ESTUARY_";

/// Variables the command line reads itself.
const CLI_VARIABLES: &[&str] = &["ESTUARY_CONFIG"];

/// Kubernetes' service links for a Service named `estuary` (`ESTUARY_PORT=tcp://10.0.0.1:8080`,
/// `ESTUARY_SERVICE_HOST`, `ESTUARY_PORT_8080_TCP_ADDR`, ...): not configuration, and no field of
/// ours has their shape.
pub(super) fn is_service_link(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else { return false };
    if rest == "PORT" || rest == "SERVICE_HOST" || rest == "SERVICE_PORT" || rest.starts_with("SERVICE_PORT_") {
        return true;
    }
    let Some(port) = rest.strip_prefix("PORT_") else { return false };
    let mut parts = port.splitn(3, '_');
    let number = parts.next().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let proto = parts.next().is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
    let field = parts.next().is_none_or(|f| matches!(f, "PROTO" | "PORT" | "ADDR"));
    number && proto && field
}

pub(super) fn apply<I: IntoIterator<Item = (String, String)>>(config: &mut Config, vars: I) -> Result<(), ConfigError> {
    let mut tree = Value::try_from(&*config).map_err(|e| ConfigError::new("config", e.to_string()))?;
    let mut leaves = Vec::new();
    collect_leaves(&tree, &mut Vec::new(), &mut leaves);
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && !CLI_VARIABLES.contains(&name.as_str()))
        .collect();
    let links: Vec<String> = vars.iter().filter(|(n, _)| is_service_link(n)).map(|(n, _)| n.clone()).collect();
    if !links.is_empty() {
        // Logging is not set up yet (its settings come from here): one line on stderr.
        eprintln!(
            "estuary: ignoring {} Kubernetes service-link variable(s) ({}); set `enableServiceLinks: false` in the pod spec",
            links.len(),
            links.join(", ")
        );
        vars.retain(|(n, _)| !is_service_link(n));
    }
    if vars.is_empty() {
        return Ok(());
    }
    vars.sort();
    for (name, raw) in vars {
        let Some(leaf) = leaves.iter().find(|l| l.env_name == name) else {
            return Err(ConfigError::new(
                name,
                "unknown environment variable (see estuary.example.toml for the fields)",
            ));
        };
        let value = if leaf.is_string { Value::String(raw) } else { parse_literal(&raw) };
        set(&mut tree, &leaf.path, value);
        *config =
            tree.clone().try_into().map_err(|e: toml::de::Error| ConfigError::new(&name, e.message().to_owned()))?;
    }
    Ok(())
}

struct Leaf {
    path: Vec<String>,
    env_name: String,
    is_string: bool,
}

fn collect_leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<Leaf>) {
    match value {
        Value::Table(table) => {
            for (k, v) in table {
                path.push(k.clone());
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        leaf => out.push(Leaf {
            env_name: format!("{ENV_PREFIX}{}", path.join("_").to_ascii_uppercase()),
            path: path.clone(),
            is_string: leaf.is_str(),
        }),
    }
}

/// A TOML literal (`42`, `true`, `["a"]`), or the raw text as a string.
fn parse_literal(raw: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn set(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for part in &path[..path.len() - 1] {
        node = match node.get_mut(part) {
            Some(next) => next,
            None => return,
        };
    }
    if let (Some(table), Some(last)) = (node.as_table_mut(), path.last()) {
        table.insert(last.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;
    use std::time::Duration;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_documented_names_work() {
        let mut c = Config::default();
        c.apply_env(vars(&[
            ("ESTUARY_EDGE_ADDR", "127.0.0.1:18080"),
            ("ESTUARY_API_ADDR", "127.0.0.1:19090"),
            ("ESTUARY_STORAGE_ROOT", "/srv/media"),
            ("ESTUARY_CACHE_BYTES", "1GiB"),
            ("ESTUARY_HTTP_HEADER_READ_TIMEOUT", "3s"),
            ("ESTUARY_LOG_ACCESS", "false"),
            ("ESTUARY_EDGE_WORKERS", "3"),
            ("ESTUARY_CONFIG", "/etc/estuary.toml"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(c.edge.addr.to_string(), "127.0.0.1:18080");
        assert_eq!(c.api.addr.to_string(), "127.0.0.1:19090");
        assert_eq!(c.storage.root.to_str(), Some("/srv/media"));
        assert_eq!(c.cache.bytes, ByteSize(1 << 30));
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(3));
        assert!(!c.log.access);
        assert_eq!(c.edge.workers, 3);
    }

    #[test]
    fn numbers_stay_strings_where_strings_are_expected() {
        let mut c = Config::default();
        c.apply_env(vars(&[("ESTUARY_API_TOKEN", "12345")])).unwrap();
        assert_eq!(c.api.token, "12345");
    }

    #[test]
    fn kubernetes_service_links_are_ignored() {
        let mut c = Config::default();
        c.apply_env(vars(&[
            ("ESTUARY_PORT", "tcp://10.0.0.1:8080"),
            ("ESTUARY_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
            ("ESTUARY_PORT_8080_TCP_ADDR", "10.0.0.1"),
            ("ESTUARY_PORT_9090_UDP_PROTO", "udp"),
            ("ESTUARY_SERVICE_HOST", "10.0.0.1"),
            ("ESTUARY_SERVICE_PORT", "8080"),
            ("ESTUARY_SERVICE_PORT_EDGE", "8080"),
        ]))
        .unwrap();
        assert_eq!(c, Config::default());
        assert!(!is_service_link("ESTUARY_PORT_X_TCP") && !is_service_link("ESTUARY_EDGE_ADDR"));
        assert!(c.apply_env(vars(&[("ESTUARY_PORTS", "1")])).is_err(), "other unknown names are still errors");
    }

    #[test]
    fn bad_and_unknown_variables_are_named() {
        let mut c = Config::default();
        let e = c.apply_env(vars(&[("ESTUARY_EDGE_ADRESS", "x")])).unwrap_err();
        assert_eq!(e.field, "ESTUARY_EDGE_ADRESS");
        let e = c.apply_env(vars(&[("ESTUARY_EDGE_ADDR", "not an address")])).unwrap_err();
        assert_eq!(e.field, "ESTUARY_EDGE_ADDR");
        let e = c.apply_env(vars(&[("ESTUARY_CACHE_BYTES", "lots")])).unwrap_err();
        assert_eq!(e.field, "ESTUARY_CACHE_BYTES");
    }
}
