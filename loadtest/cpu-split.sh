#!/usr/bin/env bash
# Where a cached playlist's CPU goes: the server on CPU 0 with no quota, `wrk -t1 -c64 -d5` on CPU 1,
# and the server's user and system CPU per request read from /proc/PID/stat around each run.
# estuary (`/vod/` warm) and nginx-vod-module with its caches on (the peer kit's build and config),
# on the peer kit's media. Needs 2 CPUs, wrk, and the kit beside the repository (../shared/bench).
#
#   loadtest/cpu-split.sh [runs=3]
set -euo pipefail
RUNS=${1:-3}
KIT=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
MEDIA=${XDG_CACHE_HOME:-$HOME/.cache}/estuary-peer-bench/media
[ -f "$MEDIA/test.mp4" ] || { echo "no kit media in $MEDIA: run $KIT/peer-bench.sh once first" >&2; exit 2; }
cargo build --release --quiet -p estuary
ESTUARY=$PWD/target/release/estuary
NGX=$KIT/nginx-vod
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tick=$(getconf CLK_TCK)

measure() { # name pid url
  local name=$1 pid=$2 url=$3 i u0 s0 u1 s1 out
  curl -fsS -o /dev/null "$url"
  for ((i = 0; i < RUNS; i++)); do
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    out=$(taskset -c 1 wrk -t1 -c64 -d5 "$url")
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    echo "$out" | awk -v n="$name" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$tick" '
      /requests in/ { r = $1 } /Requests\/sec/ { rps = $2 }
      END { printf "%-28s %9.0f req/s  user %5.2f us  system %5.2f us  total %5.2f us per request\n",
            n, rps, u / t * 1e6 / r, s / t * 1e6 / r, (u + s) / t * 1e6 / r }'
  done
}

port=$(free_port)
mkdir -p "$WORK/ngx/temp"
conf=$(<"$NGX/conf/vod-on.conf.in")
user=; [ "$(id -u)" = 0 ] && user="user root;"   # the workers must read the media in root's cache folder
conf=${conf//@USER@/$user}; conf=${conf//@NOFILE@/$(ulimit -n)}; conf=${conf//@WORK@/$WORK/ngx}
conf=${conf//@ROOT@/$MEDIA}; conf=${conf//@PORT@/$port}
printf '%s\n' "$conf" >"$WORK/ngx/nginx.conf"
taskset -c 0 "$NGX/lib/ld-linux-x86-64.so.2" --library-path "$NGX/lib" "$NGX/bin/nginx" \
  -p "$WORK/ngx/" -c "$WORK/ngx/nginx.conf" -e "$WORK/ngx/error.log" & PIDS+=($!)
sleep 1
measure "nginx-vod, cache on" "$(pgrep -P "${PIDS[0]}" | head -1)" "http://127.0.0.1:$port/hls/test.mp4/index-v1.m3u8"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

edge=$(free_port); api=$(free_port); ingest=$(free_port)
env ESTUARY_EDGE_WORKERS=1 ESTUARY_LOG_ACCESS=false ESTUARY_LOG_LEVEL=warn taskset -c 0 "$ESTUARY" serve \
  --edge-addr "127.0.0.1:$edge" --api-addr "127.0.0.1:$api" --ingest-addr "127.0.0.1:$ingest" \
  --storage-root "$MEDIA" --cache-bytes 512MiB & PIDS+=($!)
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$edge/healthz" 2>/dev/null && break; sleep 0.1; done
measure "estuary /vod/ warm" "${PIDS[1]}" "http://127.0.0.1:$edge/vod/test.mp4/v0.m3u8"
