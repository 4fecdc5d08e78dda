#!/usr/bin/env bash
# Checks what ships for operators: the dependencies' licences, bans and sources (cargo deny; its
# advisories need the RustSec git repository, which CI's network does not reach), the Prometheus
# alerts (promtool check rules), the Grafana dashboard's model (deploy/grafana/check.py) and the
# CloudFront template (cfn-lint, from PyPI into a venv under target/). Each checker is also run on a
# deliberately broken copy and must refuse it,
# so a checker that passes everything cannot hide here. (That every metric they name is exported is
# tests/operations.rs's part.) Run by ./scripts/test after the cargo tests.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

venv=target/cfn-lint
if [ ! -x "$venv/bin/cfn-lint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet cfn-lint
fi

# Passes on the real file, fails on the broken one.
refuses() {
  local what=$1 broken=$2
  shift 2
  if "$@" "$broken" >"$work/out" 2>&1; then
    echo "FAIL: $what accepted a broken file ($broken)" >&2
    cat "$work/out" >&2
    exit 1
  fi
  echo "$what refuses a broken file, as it must"
}

cargo deny --log-level error check licenses bans sources
echo "cargo deny: licences, bans and sources ok"
grep -v '^    "MIT",$' deny.toml >"$work/deny.toml"
deny_licences() { cargo deny --log-level error --config "$1" check licenses; }
refuses "cargo deny" "$work/deny.toml" deny_licences

promtool check rules deploy/prometheus/alerts.yaml
sed 's/> 0.01/> > 0.01/' deploy/prometheus/alerts.yaml >"$work/alerts.yaml"
refuses "promtool check rules" "$work/alerts.yaml" promtool check rules

python3 deploy/grafana/check.py deploy/grafana/estuary.json
python3 - "$work/estuary.json" <<'PY'
import json, sys
model = json.load(open("deploy/grafana/estuary.json"))
model["panels"][2]["id"] = model["panels"][1]["id"]
json.dump(model, open(sys.argv[1], "w"))
PY
refuses "the dashboard check" "$work/estuary.json" python3 deploy/grafana/check.py

"$venv/bin/cfn-lint" deploy/cloudfront/distribution.yaml
echo "deploy/cloudfront/distribution.yaml: cfn-lint clean"
sed 's/HttpVersion: http2and3/HttpVersion: http9/' deploy/cloudfront/distribution.yaml >"$work/distribution.yaml"
refuses "cfn-lint" "$work/distribution.yaml" "$venv/bin/cfn-lint"

# The Dockerfile's dependency layer builds the workspace from its manifests alone: every crate's
# Cargo.toml must be copied there and its target stubbed, or `docker build` fails on the first
# crate added after it was written.
docker_manifests() {
  local dockerfile=$1 manifest crate
  for manifest in crates/*/Cargo.toml; do
    crate=$(basename "$(dirname "$manifest")")
    grep -qx "COPY $manifest $manifest" "$dockerfile" || { echo "$dockerfile does not copy $manifest"; return 1; }
    grep -q "for crate in .*\b$crate\b" "$dockerfile" || { echo "$dockerfile does not stub crates/$crate"; return 1; }
  done
}
docker_manifests Dockerfile
echo "Dockerfile: every crate's manifest is in the dependency layer"
grep -v '^COPY crates/live/Cargo.toml' Dockerfile >"$work/Dockerfile"
refuses "the Dockerfile's manifest check" "$work/Dockerfile" docker_manifests
