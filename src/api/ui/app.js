// The preview page's script (/ui/app.js): a file of its own, so the page's CSP allows no inline script.
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const video = $("video");
let edgeUrl = "";
let hls = null;
let dash = null;
const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem("estuary-token") || "";
tokenInput.addEventListener("change", () => { sessionStorage.setItem("estuary-token", tokenInput.value); refresh(); });

async function api(path) {
  const headers = tokenInput.value ? { Authorization: "Bearer " + tokenInput.value } : {};
  const response = await fetch("/api/v1" + path, { headers });
  if (!response.ok) throw new Error(path + ": " + response.status + " " + (await response.text()));
  return response.json();
}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function button(td, label, url) {
  const b = document.createElement("button");
  b.textContent = label;
  b.onclick = () => play(url);
  td.appendChild(b);
}
function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }

async function refresh() {
  $("error").textContent = "";
  try {
    const stats = await api("/stats");
    const health = $("health");
    health.innerHTML = "";
    const rows = [
      ["Ready", stats.ready ? "yes" : "no", stats.ready ? "ok" : "bad"],
      ["Uptime", Math.round(stats.uptime_seconds) + " s"],
      ["Cache", stats.cache.hits + " hits, " + stats.cache.misses + " misses, " + mib(stats.cache.bytes)],
      ["Storage", stats.storage.backend + ", " + (stats.storage.healthy ? "healthy" : "failing: " + stats.storage.last_error),
        stats.storage.healthy ? "ok" : "bad"],
      ["Storage circuit", String(stats.storage_circuit), stats.storage_circuit === "closed" ? "ok" : "bad"],
      ["Live", stats.live.channels + " channels"],
    ];
    for (const [name, value, cls] of rows) {
      const row = health.insertRow();
      cell(row, name);
      cell(row, value, cls);
    }
    await listAssets();
    const { channels } = await api("/channels");
    const table = $("channels");
    table.innerHTML = "<tr><th>Channel</th><th>Status</th><th>Sequence</th><th>Last upload</th><th></th></tr>";
    for (const c of channels) {
      const row = table.insertRow();
      cell(row, c.id);
      cell(row, c.status, c.status === "live" ? "ok" : "");
      cell(row, c.media_sequence ?? "");
      cell(row, c.last_upload ?? "");
      const td = row.insertCell();
      button(td, "HLS", edgeUrl + c.playback.hls);
      button(td, "DASH", edgeUrl + c.playback.dash);
    }
    document.title = "estuary: " + channels.length + " channels";
  } catch (e) {
    $("error").textContent = String(e.message || e);
  }
}

async function listAssets() {
  const found = await api("/assets?prefix=" + encodeURIComponent($("prefix").value));
  edgeUrl = found.edge_url;
  const table = $("assets");
  table.innerHTML = "<tr><th>Asset</th><th>Size</th><th></th></tr>";
  for (const a of found.assets) {
    const row = table.insertRow();
    cell(row, a.key);
    cell(row, mib(a.size));
    const td = row.insertCell();
    button(td, "HLS", a.hls);
    button(td, "DASH", a.dash);
  }
}

function stop() {
  if (hls) { hls.destroy(); hls = null; }
  if (dash) { dash.reset(); dash = null; }
}

function play(url) {
  stop();
  $("playing").textContent = url;
  if (url.includes(".mpd")) {
    dash = dashjs.MediaPlayer().create();
    dash.on(dashjs.MediaPlayer.events.ERROR, (e) => failed("dash.js: " + JSON.stringify(e.error || e)));
    dash.initialize(video, url, true);
  } else {
    hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_, d) => d.fatal && failed("hls.js: " + d.type + " " + d.details));
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
  }
}

// What is playing: the bit rate of the rendition and how far behind the live edge (or the clock).
function figures() {
  let bitrate = null;
  let latency = null;
  if (hls && hls.currentLevel >= 0 && hls.levels[hls.currentLevel]) {
    bitrate = hls.levels[hls.currentLevel].bitrate;
    if (hls.playingDate) latency = Date.now() - hls.playingDate.getTime();
  }
  if (dash) {
    const q = dash.getQualityFor("video");
    const list = dash.getBitrateInfoListFor("video");
    if (list && list[q]) bitrate = list[q].bitrate;
    const live = dash.getCurrentLiveLatency();
    if (live > 0) latency = live * 1000;
  }
  return { bitrate, latency };
}
setInterval(() => {
  const { bitrate, latency } = figures();
  const table = $("stats");
  table.innerHTML = "";
  const rows = [
    ["Picture", video.videoWidth ? video.videoWidth + "x" + video.videoHeight : "-"],
    ["Bit rate", bitrate ? Math.round(bitrate / 1000) + " kbit/s" : "-"],
    ["Latency", latency !== null ? (latency / 1000).toFixed(2) + " s" : "- (VOD)"],
    ["Position", video.currentTime.toFixed(1) + " s"],
    ["Buffered ahead", video.buffered.length ? (video.buffered.end(video.buffered.length - 1) - video.currentTime).toFixed(1) + " s" : "-"],
  ];
  for (const [name, value] of rows) {
    const row = table.insertRow();
    cell(row, name);
    cell(row, value);
  }
}, 1000);

// The browser test's hook: ?play=URL&report=URL&until=seconds.
const reportTo = params.get("report");
let reported = false;
function report(fields) {
  if (!reportTo || reported) return;
  reported = true;
  fetch(reportTo, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: JSON.stringify(fields) });
}
function failed(error) {
  $("error").textContent = error;
  report({ ok: false, error: String(error) });
}
let start = null;
const until = Number(params.get("until") || "6");
video.addEventListener("timeupdate", () => {
  if (start === null) start = video.currentTime;
  if (video.currentTime - start < until) return;
  const { bitrate, latency } = figures();
  const quality = video.getVideoPlaybackQuality();
  report({ ok: true, played: video.currentTime - start, width: video.videoWidth, height: video.videoHeight,
    frames: quality.totalVideoFrames, bitrate_bps: bitrate, latency_ms: latency,
    shown: { bitrate: $("stats").rows[1].cells[1].textContent, latency: $("stats").rows[2].cells[1].textContent } });
});

$("refresh").onclick = refresh;
$("list").onclick = () => listAssets().catch((e) => ($("error").textContent = String(e.message || e)));
const scripts = ["/ui/hls.min.js", "/ui/dash.all.min.js"].map((src) => new Promise((resolve, reject) => {
  const s = document.createElement("script");
  s.src = src;
  s.onload = resolve;
  s.onerror = () => reject(new Error("cannot load " + src));
  document.head.appendChild(s);
}));
Promise.all(scripts).then(async () => {
  await refresh();
  if (params.get("play")) play(params.get("play"));
}).catch((e) => failed(e.message));
