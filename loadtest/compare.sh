#!/usr/bin/env bash
# estuary against nginx (static files, sendfile) and nginx + nginx-vod-module (MP4 packaged on the fly),
# measured where the server is the bottleneck, then estuary's coalescing under a burst.
#
#   loadtest/compare.sh [peer-kit options]        e.g. -d 5 -r 5 -c 64 (defaults: -d 3 -r 3 -c "64 256")
#   COMPARE_BURST=0 loadtest/compare.sh ...       the first part only
#   ESTUARY_PEER_KIT=DIR loadtest/compare.sh ...  the peer kit elsewhere than ../shared/bench
#
# 1. The peer kit (`../shared/bench/peer-bench.sh`, see its README): nginx, nginx-vod with and without
#    its caches, estuary /static/, /vod/ warm and /vod/ with the cache off, each alone in a cgroup with
#    a CPU quota (0.25 CPU by default) while wrk runs free, so the server, not wrk, is saturated even
#    on 2 cores. It prints throughput, server CPU per request and per MiB, peak RSS and the estuary
#    ratios; a row whose server used under 90% of its quota is marked "not server-bound": compare its
#    CPU cost, not its throughput. It needs root (the cgroup) and wrk.
# 2. Burst: N requests for one segment at the same moment on open connections, cold (cache purged)
#    and warm, against one request alone in the same state; storage reads show the coalescing. Not
#    server-bound (the load generator shares the machine): latency and reads only.
#
# Installs wrk and ffmpeg with apt when missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${ESTUARY_PEER_KIT:-$PWD/../shared/bench}
BURST=${BURST:-1000}
[ -x "$KIT/peer-bench.sh" ] || { echo "the peer kit is not at $KIT (set ESTUARY_PEER_KIT)" >&2; exit 2; }
(($#)) || set -- -d 3 -r 3 -c "64 256"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if ((${#need[@]})); then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --quiet -p estuary -p estuary-load
ESTUARY=$PWD/target/release/estuary
LOAD=$PWD/target/release/estuary-load

echo "== server-bound: the peer kit ($KIT/peer-bench.sh $*)"
"$KIT/peer-bench.sh" --estuary "$ESTUARY" "$@"
[ "${COMPARE_BURST:-1}" = 0 ] && exit 0

echo
echo "== burst (not server-bound: latency and storage reads)"
NGINX=("$KIT/nginx-vod/lib/ld-linux-x86-64.so.2" --library-path "$KIT/nginx-vod/lib" "$KIT/nginx-vod/bin/nginx")

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# The content: the sample MP4 for /vod, and ffmpeg's packaging of it for nginx and /static.
ROOT=$WORK/root
mkdir -p "$ROOT/hls"
cp assets/sample/sample.mp4 "$ROOT/sample.mp4"
ffmpeg -hide_banner -loglevel error -y -i "$ROOT/sample.mp4" -map 0:v -map 0:a -c copy \
  -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
  -hls_segment_filename "$ROOT/hls/%v_%d.m4s" -var_stream_map "v:0,agroup:audio,name:v a:0,agroup:audio,name:a" \
  -master_pl_name master.m3u8 "$ROOT/hls/%v.m3u8"
# ffmpeg lists the audio rendition as a variant as well; write the master a packager would.
cat > "$ROOT/hls/master.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=600750,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,AUDIO="audio"
v.m3u8
M3U8

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(free_port)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; }
http {
  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location /static/ { alias $ROOT/; add_header Cache-Control "public, max-age=86400"; add_header Access-Control-Allow-Origin *; }
  }
}
CONF
taskset -c 0 "${NGINX[@]}" -c "$WORK/nginx.conf" -p "$WORK" & NGINX_PID=$!; PIDS+=($!)

# estuary NAME CACHE_BYTES: starts an instance pinned to CPU 0; sets NAME_EDGE, NAME_API, NAME_PID.
estuary() {
  local edge api ingest
  edge=$(free_port); api=$(free_port); ingest=$(free_port)
  ESTUARY_EDGE_WORKERS=1 ESTUARY_LOG_ACCESS=false ESTUARY_LOG_LEVEL=warn \
    taskset -c 0 "$ESTUARY" serve --edge-addr "127.0.0.1:$edge" --api-addr "127.0.0.1:$api" \
    --ingest-addr "127.0.0.1:$ingest" --storage-root "$ROOT" --cache-bytes "$2" & PIDS+=($!)
  printf -v "$1_PID" %s $!; printf -v "$1_EDGE" %s "http://127.0.0.1:$edge"; printf -v "$1_API" %s "http://127.0.0.1:$api"
}
estuary WARM 256MiB
NGINX_URL=http://127.0.0.1:$NGINX_PORT
for _ in $(seq 100); do
  curl -fs -o /dev/null "$WARM_EDGE/healthz" &&
    curl -fs -o /dev/null "$NGINX_URL/static/hls/master.m3u8" && break
  sleep 0.2
done

STATIC=/static/hls
VOD=/vod/sample.mp4
SEG_STATIC=$STATIC/v_1.m4s
SEG_VOD=$VOD/v0/2.m4s
for path in $STATIC/master.m3u8 $STATIC/v.m3u8 $SEG_STATIC $VOD/master.m3u8 $VOD/v0.m3u8 $SEG_VOD; do
  curl -fs -o /dev/null "$WARM_EDGE$path"
done

rss_reset() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
rss_peak() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
json() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

# Burst: BURST players on open connections GET one segment at the same moment.
purge() { curl -fs -X POST -H 'Content-Type: application/json' -d '{"all": true}' "$1/api/v1/cache/purge" >/dev/null; }
burst() { taskset -c 1 "$LOAD" burst --url "$1" --players "$2" --duration 60s --threads 1 --json; }
burst_row() { # server url api pid cold|warm
  local single r reads0 reads1 reads2
  [ "$5" = cold ] && purge "$3"
  reads0=$(storage_reads "$3")
  single=$(burst "$2" 1 | json "r['by_kind'][0]['ttfb_ms']['p99']")
  [ "$5" = cold ] && purge "$3"
  reads1=$(storage_reads "$3")
  rss_reset "$4"
  r=$(burst "$2" "$BURST")
  reads2=$(storage_reads "$3")
  printf '%-24s %9.2f %9.2f %9.2f %9.2f %7s %10s %6s\n' "$1 $5" "$single" \
    "$(json "r['by_kind'][0]['ttfb_ms']['p50']" <<<"$r")" "$(json "r['by_kind'][0]['ttfb_ms']['p99']" <<<"$r")" \
    "$(json "r['by_kind'][0]['ttfb_ms']['max']" <<<"$r")" "$(json r[\"errors\"] <<<"$r")" \
    "$((reads1 - reads0))/$((reads2 - reads1))" "$(rss_peak "$4")"
}
echo
echo "burst: $BURST requests for one segment at the same moment, on open connections (TTFB ms)."
echo "'one' is a single request alone in the same cache state; 'reads' are storage reads for it / for the burst."
printf '%-24s %9s %9s %9s %9s %7s %10s %6s\n' server one p50 p99 max errors reads "RSS MiB"
NGINX_API=  # nginx has no cache to purge and no read counter
storage_reads() { if [ -n "$1" ]; then curl -fs "$1/metrics" | awk '$1 ~ /^estuary_storage_reads_total/ {n+=$2} END {printf "%d", n}'; else echo 0; fi; }
burst_row nginx "$NGINX_URL$SEG_STATIC" "$NGINX_API" "$NGINX_PID" warm
burst_row "estuary static" "$WARM_EDGE$SEG_STATIC" "$WARM_API" "$WARM_PID" cold
burst_row "estuary static" "$WARM_EDGE$SEG_STATIC" "$WARM_API" "$WARM_PID" warm
burst_row "estuary vod" "$WARM_EDGE$SEG_VOD" "$WARM_API" "$WARM_PID" cold
burst_row "estuary vod" "$WARM_EDGE$SEG_VOD" "$WARM_API" "$WARM_PID" warm
