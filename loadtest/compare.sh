#!/usr/bin/env bash
# estuary side by side with Debian's nginx serving the same content pre-packaged, on this machine, in one
# run. Each server is pinned to CPU 0 (nginx: 1 worker, sendfile on; estuary: 1 edge worker, access log
# off); the load (wrk, estuary-load) runs on CPU 1.
#
#   loadtest/compare.sh [seconds per row] [wrk connections] [players] [burst players]
#
# Rows:
#   segment / playlist   wrk on one 6 s video segment and its media playlist
#   vod players          estuary-load vod: master, playlists, init, then segments flat out
#   burst                estuary-load burst: N requests for one segment at the same moment, cold
#                        (cache purged) and warm, against one cold request alone
# p99 ms is wrk's full-response latency for segment/playlist rows, the segments' time to first byte for
# players and burst rows. RSS MiB is the server's peak resident memory during the row (VmHWM, reset per row).
# Servers:
#   nginx                ffmpeg's static HLS (fMP4, 6 s, demuxed video + audio) from disk
#   estuary static       the same files passed through /static (segment cache warm)
#   estuary vod          on the fly from the MP4 via /vod, segment cache off (cache-bytes 0): every
#                        request builds its playlist or segment (the index stays cached)
#   estuary vod warm     on the fly via /vod, segment cache warm
#
# Installs nginx-light, wrk and ffmpeg with apt when missing. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-64}
PLAYERS=${3:-200}
BURST=${4:-1000}

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if ((${#need[@]})); then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release --quiet -p estuary -p estuary-load
ESTUARY=$PWD/target/release/estuary
LOAD=$PWD/target/release/estuary-load

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
taskset -c 0 "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" & NGINX_PID=$!; PIDS+=($!)

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
estuary COLD 0
NGINX_URL=http://127.0.0.1:$NGINX_PORT
for _ in $(seq 100); do
  curl -fs -o /dev/null "$WARM_EDGE/healthz" && curl -fs -o /dev/null "$COLD_EDGE/healthz" &&
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
echo "segment bytes: nginx/static $(curl -fs "$NGINX_URL$SEG_STATIC" | wc -c), estuary vod $(curl -fs "$WARM_EDGE$SEG_VOD" | wc -c)"
echo "playlist bytes: static $(curl -fs "$NGINX_URL$STATIC/v.m3u8" | wc -c), estuary vod $(curl -fs "$WARM_EDGE$VOD/v0.m3u8" | wc -c)"

# Peak RSS of one row: reset the high-water mark before it, read it after.
rss_reset() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
rss_peak() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
json() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

ROWS=$WORK/rows
row() { # server req/s MiB/s p99ms errors rss
  printf '%-10s %-18s %10.0f %9.1f %9.2f %7s %6s\n' "$ROW" "$@"
  printf '%s\t%s\t%s\t%s\n' "$ROW" "$1" "$2" "$3" >> "$ROWS"
}
wrk_row() { # server url pid
  local out rps mibs p99 errs
  rss_reset "$3"
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  mibs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /MB/) {sub("MB","",v)} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else {sub("B","",v); v/=1048576}; print v}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /ms/) {sub("ms","",v)} else if (v ~ /us/) {sub("us","",v); v/=1000} else if (v ~ /s/) {sub("s","",v); v*=1000}; print v}' <<<"$out")
  errs=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}' <<<"$out")
  row "$1" "$rps" "$mibs" "$p99" "$errs" "$(rss_peak "$3")"
}
load_row() { # server master-url pid
  local r
  rss_reset "$3"
  r=$(taskset -c 1 "$LOAD" vod --url "$2" --players "$PLAYERS" --duration "${DURATION}s" --pace fast --threads 1 --json)
  row "$1" "$(json r[\"requests_per_sec\"] <<<"$r")" "$(json r[\"mib_per_sec\"] <<<"$r")" \
    "$(json "r['by_kind'][-1]['ttfb_ms']['p99']" <<<"$r")" "$(json r[\"errors\"] <<<"$r")" "$(rss_peak "$3")"
}

echo
printf '%-10s %-18s %10s %9s %9s %7s %6s\n' row server req/s MiB/s "p99 ms" errors "RSS MiB"
ROW=segment
wrk_row nginx "$NGINX_URL$SEG_STATIC" "$NGINX_PID"
wrk_row "estuary static" "$WARM_EDGE$SEG_STATIC" "$WARM_PID"
wrk_row "estuary vod" "$COLD_EDGE$SEG_VOD" "$COLD_PID"
wrk_row "estuary vod warm" "$WARM_EDGE$SEG_VOD" "$WARM_PID"
ROW=playlist
wrk_row nginx "$NGINX_URL$STATIC/v.m3u8" "$NGINX_PID"
wrk_row "estuary static" "$WARM_EDGE$STATIC/v.m3u8" "$WARM_PID"
wrk_row "estuary vod" "$COLD_EDGE$VOD/v0.m3u8" "$COLD_PID"
wrk_row "estuary vod warm" "$WARM_EDGE$VOD/v0.m3u8" "$WARM_PID"
ROW=players
load_row nginx "$NGINX_URL$STATIC/master.m3u8" "$NGINX_PID"
load_row "estuary static" "$WARM_EDGE$STATIC/master.m3u8" "$WARM_PID"
load_row "estuary vod" "$COLD_EDGE$VOD/master.m3u8" "$COLD_PID"
load_row "estuary vod warm" "$WARM_EDGE$VOD/master.m3u8" "$WARM_PID"

echo
echo "estuary/nginx:"
awk -F'\t' '$2=="nginx" {rps[$1]=$3; mib[$1]=$4; next}
  {printf "  %-10s %-18s req/s %5.2f  MiB/s %5.2f\n", $1, $2, $3/rps[$1], $4/mib[$1]}' "$ROWS"

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
