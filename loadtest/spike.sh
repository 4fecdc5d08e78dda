#!/usr/bin/env bash
# The kick-off: N players join one live channel (2 s segments) within a few seconds, on this machine.
# estuary (release, default edge workers, segment cache CACHE), ffmpeg pushing a live stream to it over
# HTTP PUT, and estuary-load, all share the machine's cores: nothing is pinned.
#
#   loadtest/spike.sh [players=2000] [seconds=60] [ramp=5] [poll|blocking|ll-hls] [cache=256MiB]
#   PODS=3 loadtest/spike.sh ...     # a cluster: redis-server and 3 estuary processes on one storage root
#
# With PODS=n (n > 1) the encoder pushes into pod 1, the players are spread evenly over the n pods'
# edges (`--urls`), and the pods share the channel through a local redis-server (Debian's; installed
# when missing); the report adds, per pod, where its segments came from on a cache miss (the owner's
# memory over the internal listener, or storage).
#
# The encoder pushes a clip pre-encoded here first (two video variants, 1280x720 at 1.5 Mb/s and
# 640x360 at 0.5 Mb/s, AAC, a keyframe every 2 s) with `-re -c copy`, so it costs the machine what an
# encoder's upload costs, not what x264 costs. Players pick a variant at random and keep ~12 s of buffer
# (estuary-load's realtime pace); `poll` reloads the playlist every half target duration, `blocking` uses
# `_HLS_msn`. `ll-hls` pushes the same clip through ffmpeg's DASH muxer in streaming mode (0.5 s CMAF
# chunks, each segment uploaded as it is made) and runs estuary-load's LL-HLS players (parts, preload
# hints, `_HLS_msn` + `_HLS_part`), which report their latency behind the clock.
#
# Printed: estuary-load's report, then the targets: errors, stalls, p99 playlist TTFB (< 50 ms) and
# estuary's peak RSS (VmHWM over the run) against the cache size plus 64 MiB. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYERS=${1:-2000}
SECONDS_RUN=${2:-60}
RAMP=${3:-5}
MODE=${4:-poll}
CACHE=${5:-256MiB}
PODS=${PODS:-1}
SCENARIO=spike
case $MODE in
  poll) BLOCKING=() ;;
  blocking) BLOCKING=(--blocking) ;;
  ll-hls) BLOCKING=() SCENARIO=ll-hls ;;
  *) echo "mode: poll, blocking or ll-hls" >&2; exit 2 ;;
esac

NEEDED=(ffmpeg)
[ "$PODS" -gt 1 ] && NEEDED+=(redis-server)
for tool in "${NEEDED[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo || echo sudo)
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
  fi
done
cargo build --release --quiet -p estuary -p estuary-load
ESTUARY=$PWD/target/release/estuary
LOAD=$PWD/target/release/estuary-load

WORK=$(mktemp -d)
PIDS=()
# Stops the encoder before the origin it pushes to (last started, first stopped).
cleanup() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; sleep 0.2; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The encoder's source: long enough for the warm-up, the ramp and the run.
CLIP_SECS=$((SECONDS_RUN + RAMP + 30))
echo "pre-encoding ${CLIP_SECS} s of source..."
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -f lavfi -i sine=sample_rate=48000 \
  -filter_complex '[0:v]split=2[hi][lo0];[lo0]scale=640:360[lo]' -map '[hi]' -map '[lo]' -map 1:a -t "$CLIP_SECS" \
  -c:v libx264 -preset veryfast -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p \
  -b:v:0 1500k -maxrate:v:0 1800k -bufsize:v:0 3000k -b:v:1 500k -maxrate:v:1 600k -bufsize:v:1 1000k \
  -c:a aac -b:a 96k "$WORK/source.mp4"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$WORK/root"
CLUSTER_ENV=()
if [ "$PODS" -gt 1 ]; then
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & PIDS+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break; sleep 0.1; done
  CLUSTER_ENV=(ESTUARY_CLUSTER_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/")
fi
# Every player holds one or two connections to its pod: past estuary's default cap (8,192), as many
# as the descriptor limit allows (the load generator, on the same machine, needs as many).
MAX_CONNECTIONS=$(( $(ulimit -Hn) - 1024 ))
[ "$MAX_CONNECTIONS" -lt 8192 ] && MAX_CONNECTIONS=8192
EDGES=(); APIS=(); ESTUARY_PIDS=()
for pod in $(seq "$PODS"); do
  EDGE_PORT=$(free_port); API_PORT=$(free_port); INGEST_PORT=$(free_port); INTERNAL_PORT=$(free_port)
  env ESTUARY_LOG_ACCESS=false ESTUARY_LOG_LEVEL=warn ESTUARY_CLUSTER_INTERNAL_ADDR="127.0.0.1:$INTERNAL_PORT" \
    ESTUARY_LIMITS_MAX_CONNECTIONS="$MAX_CONNECTIONS" \
    "${CLUSTER_ENV[@]}" "$ESTUARY" serve --edge-addr "127.0.0.1:$EDGE_PORT" \
    --api-addr "127.0.0.1:$API_PORT" --ingest-addr "127.0.0.1:$INGEST_PORT" --storage-root "$WORK/root" \
    --cache-bytes "$CACHE" & ESTUARY_PIDS+=($!); PIDS+=($!)
  EDGES+=("http://127.0.0.1:$EDGE_PORT"); APIS+=("http://127.0.0.1:$API_PORT")
  [ "$pod" -eq 1 ] && INGEST=http://127.0.0.1:$INGEST_PORT
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$EDGE_PORT/healthz" && break; sleep 0.1; done
done
EDGE=${EDGES[0]}; API=${APIS[0]}; ESTUARY_PID=${ESTUARY_PIDS[0]}

json() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }
# The ingest URL the API hands out carries the stream key in its path.
INGEST_URL=$(curl -fs -X POST -H 'Content-Type: application/json' \
  -d '{"id": "kick", "target_duration": "2s", "window": "30s", "dvr": "10m"}' "$API/api/v1/channels" | json 'r["ingest_url"]')

if [ "$MODE" = ll-hls ]; then
  ffmpeg -hide_banner -loglevel error -re -i "$WORK/source.mp4" -map 0:v:0 -map 0:v:1 -map 0:a -c copy \
    -f dash -streaming 1 -ldash 1 -seg_duration 2 -frag_type duration -frag_duration 0.5 -use_timeline 0 \
    -method PUT -http_persistent 1 -hls_playlist 1 "${INGEST_URL}manifest.mpd" \
    </dev/null & PIDS+=($!)
else
  ffmpeg -hide_banner -loglevel error -re -i "$WORK/source.mp4" -map 0:v:0 -map 0:a -map 0:v:1 -map 0:a -c copy \
    -f hls -hls_time 2 -hls_segment_type fmp4 -method PUT \
    -var_stream_map "v:0,a:0 v:1,a:1" -master_pl_name master.m3u8 \
    -hls_segment_filename "${INGEST_URL}v%v/seg_%05d.m4s" "${INGEST_URL}v%v/index.m3u8" \
    </dev/null & PIDS+=($!)
fi

# Players join once the channel has a few segments, as they would after the stream is announced.
for _ in $(seq 200); do
  n=$(curl -fs "$API/api/v1/channels/kick" | json 'r["segments_retained"]' 2>/dev/null || echo 0)
  [ "$n" -ge 4 ] && break
  sleep 0.25
done
echo "channel live with $n segments; $PLAYERS players join over ${RAMP}s ($MODE), run ${SECONDS_RUN}s"

# A metric summed over every pod (or one pod's, with a third argument: its API URL).
metric() {
  local apis=("${APIS[@]}")
  [ -n "${3:-}" ] && apis=("$3")
  for api in "${apis[@]}"; do curl -fs "$api/metrics"; done |
    awk -v m="$1" -v f="$2" 'index($1, m) == 1 && (f == "" || index($1, f)) {n+=$2} END {printf "%d", n}'
}
cpu_secs() { for pid in "${ESTUARY_PIDS[@]}"; do cat "/proc/$pid/stat"; done | awk '{n += ($14 + $15) / 100} END {printf "%.1f", n}'; }
for pid in "${ESTUARY_PIDS[@]}"; do echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true; done
cpu0=$(cpu_secs)
served0=$(metric estuary_http_requests_total 'tier="edge"')
reads0=$(metric estuary_storage_reads_total "")
URLS=$(printf '%s/live/kick/master.m3u8,' "${EDGES[@]}")
"$LOAD" "$SCENARIO" --urls "${URLS%,}" --players "$PLAYERS" --ramp "${RAMP}s" \
  --duration "${SECONDS_RUN}s" --abr random "${BLOCKING[@]}" --json-file "$WORK/report.json"
served=$(($(metric estuary_http_requests_total 'tier="edge"') - served0))
reads=$(($(metric estuary_storage_reads_total "") - reads0))
cpu=$(awk -v a="$cpu0" -v b="$(cpu_secs)" 'BEGIN {printf "%.1f", b - a}')
# The largest pod's peak.
rss=$(for pid in "${ESTUARY_PIDS[@]}"; do awk '/VmHWM/ {printf "%.0f\n", $2/1024}' "/proc/$pid/status"; done | sort -n | tail -1)
if [ "$PODS" -gt 1 ]; then
  echo
  echo "live segment reads on a cache miss, per pod (pod 1 takes the encoder's pushes):"
  for i in "${!APIS[@]}"; do
    echo "  pod $((i + 1)): from the owner's memory $(metric estuary_live_segment_reads_total 'source="owner"' "${APIS[i]}")," \
      "failed tries of it $(metric estuary_live_segment_reads_total 'source="owner_failed"' "${APIS[i]}")," \
      "from storage $(metric estuary_live_segment_reads_total 'source="storage"' "${APIS[i]}")," \
      "edge requests $(metric estuary_http_requests_total 'tier="edge"' "${APIS[i]}")"
  done
fi
cache_mib=$(numfmt --from=iec-i --to-unit=Mi "${CACHE%B}")

echo
python3 - "$WORK/report.json" "$rss" "$cache_mib" "$served" "$reads" "$cpu" "$MODE" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rss, cache, served, reads, cpu = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
kinds = {k["kind"]: k for k in r["by_kind"]}
p99 = kinds["playlist"]["ttfb_ms"]["p99"] if "playlist" in kinds else float("nan")
def line(what, value, target, ok):
    print(f"  {what:<28} {value:>14}   {target:<22} {'met' if ok else 'MISSED'}")
print("targets:")
line("errors", r["errors"], "0", r["errors"] == 0)
line("stalls", r["stalls"], "0", r["stalls"] == 0)
line("players never started", r["players_never_started"], "0", r["players_never_started"] == 0)
if sys.argv[7] == "ll-hls":
    l = r["live_latency_ms"] or {}
    print(f"  {'latency p50/p99 (ms)':<28} {l.get('p50', 0):>6.0f} / {l.get('p99', 0):<5.0f}  behind the clock (no target here)")
    print(f"  {'playlist TTFB p99 (ms)':<28} {p99:>14.1f}   (held for _HLS_part: not a TTFB target)")
elif sys.argv[7] == "blocking":
    print(f"  {'playlist TTFB p99 (ms)':<28} {p99:>14.1f}   (held for _HLS_msn: not a TTFB target)")
else:
    line("playlist TTFB p99 (ms)", f"{p99:.1f}", "< 50", p99 < 50)
line("estuary peak RSS (MiB, largest pod)", rss, f"< {cache} + 64 = {cache + 64}", rss < cache + 64)
print(f"  requests the server counted: {served} (the load generator: {r['requests']}); "
      f"storage reads: {reads}; estuary CPU (all pods): {cpu:.1f} s over {r['seconds']:.0f} s")
PY
