#!/usr/bin/env bash
# One cached segment and one playlist served by estuary (pass-through /static,
# cache warm) and by Debian's nginx (1 worker, sendfile on), each pinned to
# CPU 0, loaded by wrk pinned to CPU 1, in one run on this machine.
#
#   loadtest/static-vs-nginx.sh [seconds] [connections]
#
# Installs nginx and wrk with apt when they are missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-64}
ROOT=$PWD/assets
SEGMENT=sample/hls/seg_000.m4s
PLAYLIST=sample/hls/media.m3u8

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet --bin estuary
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(free_port); EDGE_PORT=$(free_port); API_PORT=$(free_port)

cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; application/dash+xml mpd; }
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /static/ { alias $ROOT/; add_header Cache-Control "public, max-age=86400"; add_header Access-Control-Allow-Origin *; }
  }
}
CONF
taskset -c 0 "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" & PIDS+=($!)
ESTUARY_EDGE_WORKERS=1 ESTUARY_LOG_ACCESS=false ESTUARY_LOG_LEVEL=warn \
  taskset -c 0 target/release/estuary serve --edge-addr 127.0.0.1:$EDGE_PORT --api-addr 127.0.0.1:$API_PORT \
  --storage-root "$ROOT" & PIDS+=($!)
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$EDGE_PORT/healthz" >/dev/null && curl -fs -o /dev/null "http://127.0.0.1:$NGINX_PORT/static/$PLAYLIST" && break
  sleep 0.2
done
# Warm estuary's cache.
curl -fs -o /dev/null "http://127.0.0.1:$EDGE_PORT/static/$SEGMENT"
curl -fs -o /dev/null "http://127.0.0.1:$EDGE_PORT/static/$PLAYLIST"

run() { # name url -> "req/s MiB/s p99"
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$2")
  local rps mibs p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mibs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /MB/) {sub("MB","",v)} else if (v ~ /KB/) {sub("KB","",v); v/=1024}; print v}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%-28s %12s %10s %10s  %s\n' "$1" "$rps" "$mibs" "$p99" "$errs"
  echo "$rps $mibs" > "$WORK/$1"
}
printf '%-28s %12s %10s %10s\n' "target (1 core each)" "req/s" "MiB/s" "p99"
run nginx-segment "http://127.0.0.1:$NGINX_PORT/static/$SEGMENT"
run estuary-segment "http://127.0.0.1:$EDGE_PORT/static/$SEGMENT"
run nginx-playlist "http://127.0.0.1:$NGINX_PORT/static/$PLAYLIST"
run estuary-playlist "http://127.0.0.1:$EDGE_PORT/static/$PLAYLIST"
ratio() { awk -v a="$(cut -d' ' -f"$3" "$WORK/$1")" -v b="$(cut -d' ' -f"$3" "$WORK/$2")" 'BEGIN {printf "%.2f", a/b}'; }
echo
echo "estuary/nginx segment:  req/s $(ratio estuary-segment nginx-segment 1)  MiB/s $(ratio estuary-segment nginx-segment 2)"
echo "estuary/nginx playlist: req/s $(ratio estuary-playlist nginx-playlist 1)"
