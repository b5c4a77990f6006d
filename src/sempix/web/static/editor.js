// sempix mask editor (plain JS, no build step).
//
// The server sends, once per click, two distance maps (semantic and colour, uint16). Every
// slider move is handled here: D = min_k lam*sem_k + (1-lam)*col_k, mask = D < tau (or a
// smoothstep of half-width `feather` around tau), overlay and adjustment preview drawn into a
// canvas ImageData. The maths mirror sempix/mask/core.py and sempix/mask/adjust.py exactly.
"use strict";

const $ = (id) => document.getElementById(id);

const S = {
  sid: null, W: 0, H: 0, job: null, ready: false, semantic: false, hasLabels: false,
  points: [],               // {x, y, space, sem: Float32Array|null, col: Float32Array}
  orig: null,               // Uint8ClampedArray RGBA of the original image
  out: null,                // ImageData shown
  dist: null, mask: null,   // Float32Array (W*H)
  lam: 0.5, tau: 0.25, feather: 0.02, space: "luminance", view: "overlay",
  adj: { exposure: 0, contrast: 0, saturation: 0, temperature: 0, tint: 0, hue: 0 },
  labelsImg: null, config: null, maskDirty: true, scheduled: false, pending: 0,
  stats: { renders: 0, totalMs: 0, lastMs: 0, maskMs: 0, clicks: 0, lastClickMs: 0 },
};
window.sempixEditor = S;

const ctx = $("canvas").getContext("2d", { willReadFrequently: true });

function setStatus(msg, isError = false) {
  const el = $("status");
  el.textContent = msg;
  el.classList.toggle("error", !!isError);
}

async function apiJSON(url, opts) {
  const r = await fetch(url, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `HTTP ${r.status}`);
  return body;
}

// ------------------------------------------------------------------------------ opening images

async function openFile(file) {
  if (!file) return;
  resetSession();
  setStatus(`uploading ${file.name} (${(file.size / 1e6).toFixed(1)} MB)…`);
  showProgress(0, "uploading");
  const fd = new FormData();
  fd.append("file", file);
  const be = $("backend").value;
  if (be) fd.append("backend", be);
  let info;
  try {
    info = await apiJSON("/api/images", { method: "POST", body: fd });
  } catch (e) {
    hideProgress();
    setStatus(`upload failed: ${e.message}`, true);
    return;
  }
  S.sid = info.session; S.W = info.width; S.H = info.height; S.job = info.job;
  S.name = info.name;
  setStatus(`${info.width}×${info.height}: computing features…`);
  const imgPromise = loadImage(`/api/sessions/${S.sid}/image`);
  pollJob(S.job, (st) => showProgress(st.progress, st.message || st.state)).then(async (st) => {
    hideProgress();
    if (st.state !== "done") { setStatus(`features failed: ${st.error}`, true); return; }
    const sinfo = await apiJSON(`/api/sessions/${S.sid}`);
    S.ready = true; S.semantic = sinfo.semantic; S.hasLabels = sinfo.has_labels;
    let msg = `ready (${sinfo.backend} features${sinfo.semantic ? "" : ", not semantic"}) — click the image`;
    if (sinfo.fallback) msg += ` [${sinfo.fallback}]`;
    setStatus(msg);
    $("view-labels").disabled = !S.hasLabels;
    if (S.hasLabels) loadLabels();
    $("do-resize").disabled = false;
    updateButtons();
  });
  const img = await imgPromise;
  const c = $("canvas");
  c.width = S.W; c.height = S.H;
  ctx.drawImage(img, 0, 0);
  S.orig = ctx.getImageData(0, 0, S.W, S.H).data;
  S.out = ctx.createImageData(S.W, S.H);
  S.dist = new Float32Array(S.W * S.H);
  S.mask = new Float32Array(S.W * S.H);
  $("drop").classList.remove("empty");
  $("rw").value = S.W; $("rh").value = S.H;
  S.maskDirty = true;
  renderNow();
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("image failed to load"));
    img.src = url;
  });
}

async function pollJob(job, onProgress) {
  for (;;) {
    let st;
    try { st = await apiJSON(`/api/jobs/${job}`); } catch (e) { return { state: "error", error: e.message }; }
    onProgress(st);
    if (st.state === "done" || st.state === "error") return st;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function showProgress(frac, msg) {
  $("progress").hidden = false;
  $("progress-bar").style.width = `${Math.round(frac * 100)}%`;
  $("progress-text").textContent = `${Math.round(frac * 100)}% ${msg || ""}`;
}
function hideProgress() { $("progress").hidden = true; }

function resetSession() {
  S.sid = null; S.ready = false; S.points = []; S.labelsImg = null; S.hasLabels = false;
  $("legend").hidden = true; $("legend").innerHTML = "";
  updateButtons();
}

async function loadLabels() {
  try {
    const leg = await apiJSON(`/api/sessions/${S.sid}/labels`);
    S.labelsImg = await loadImage(`/api/sessions/${S.sid}/labels.png`);
    const ul = $("legend");
    ul.innerHTML = "";
    for (const c of leg.classes.slice(0, 40)) {
      const li = document.createElement("li");
      li.innerHTML = `<i style="background:${c.color}"></i><span></span><small>${(c.fraction * 100).toFixed(1)}%</small>`;
      li.querySelector("span").textContent = c.name;
      ul.appendChild(li);
    }
    ul.hidden = S.view !== "labels";
  } catch (e) { /* no labels */ }
}

// ------------------------------------------------------------------------------------ clicking

async function addPoint(x, y) {
  if (!S.ready) { setStatus("features are still being computed…"); return; }
  const p = { x, y, space: S.space, sem: null, col: null };
  S.points.push(p);
  updateButtons();
  await fetchDistances(p);
  S.maskDirty = true;
  schedule();
}

async function fetchDistances(p) {
  const t0 = performance.now();
  S.pending++;
  try {
    const r = await fetch(`/api/sessions/${S.sid}/distance?x=${p.x}&y=${p.y}&space=${p.space}`);
    if (!r.ok) {
      let msg = `HTTP ${r.status}`;
      try { msg = (await r.json()).error; } catch (e) { /* binary */ }
      throw new Error(msg);
    }
    const buf = await r.arrayBuffer();
    const n = S.W * S.H;
    const ss = parseFloat(r.headers.get("X-Sem-Scale")) / 65535;
    const cs = parseFloat(r.headers.get("X-Col-Scale")) / 65535;
    const q = new Uint16Array(buf);
    const col = new Float32Array(n);
    for (let i = 0; i < n; i++) col[i] = q[n + i] * cs;
    let sem = null;
    if (r.headers.get("X-Semantic") === "1") {
      sem = new Float32Array(n);
      for (let i = 0; i < n; i++) sem[i] = q[i] * ss;
    }
    p.sem = sem; p.col = col;
    S.stats.clicks++; S.stats.lastClickMs = performance.now() - t0;
  } catch (e) {
    setStatus(`click failed: ${e.message}`, true);
    S.points = S.points.filter((o) => o !== p);
  } finally {
    S.pending--;
    updateButtons();
  }
}

function updateButtons() {
  const has = S.points.length > 0;
  $("undo").disabled = !has; $("clear").disabled = !has;
  $("dl-image").disabled = !(S.ready && has); $("dl-mask").disabled = !(S.ready && has);
  $("points-info").textContent = has
    ? `${S.points.length} point(s): ` + S.points.map((p) => `(${p.x},${p.y})`).join(" ")
    : "no points";
}

// ------------------------------------------------------------------------------- mask maths

function computeMask() {
  const t0 = performance.now();
  const n = S.W * S.H, d = S.dist, m = S.mask;
  const lam = S.lam, rest = 1 - lam, tau = S.tau, F = S.feather;
  const pts = S.points.filter((p) => p.col && p.space === S.space);
  if (!pts.length) { m.fill(0); S.stats.maskMs = performance.now() - t0; return false; }
  for (let k = 0; k < pts.length; k++) {
    const col = pts[k].col, sem = pts[k].sem;
    if (k === 0) {
      if (sem) for (let i = 0; i < n; i++) d[i] = lam * sem[i] + rest * col[i];
      else d.set(col);
    } else if (sem) {
      for (let i = 0; i < n; i++) { const v = lam * sem[i] + rest * col[i]; if (v < d[i]) d[i] = v; }
    } else {
      for (let i = 0; i < n; i++) { const v = col[i]; if (v < d[i]) d[i] = v; }
    }
  }
  if (F <= 0) {
    for (let i = 0; i < n; i++) m[i] = d[i] < tau ? 1 : 0;
  } else {
    const hi = tau + F, inv = 1 / (2 * F);
    for (let i = 0; i < n; i++) {
      let t = (hi - d[i]) * inv;
      t = t < 0 ? 0 : (t > 1 ? 1 : t);
      m[i] = t * t * (3 - 2 * t);
    }
  }
  S.stats.maskMs = performance.now() - t0;
  return true;
}

// ------------------------------------------------------------------------- adjustment maths
// Mirrors sempix/mask/adjust.py: linear light, exposure -> white balance -> contrast ->
// saturation -> hue (SVG hueRotate) -> clip, blend with the mask in linear light, sRGB encode.

const LUMA = [0.2126, 0.7152, 0.0722];
const TO_LIN = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const c = i / 255;
  TO_LIN[i] = c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}
const ENC_N = 16384;
const ENC = new Uint8ClampedArray(ENC_N + 1);
for (let i = 0; i <= ENC_N; i++) {
  const x = i / ENC_N;
  const v = x <= 0.0031308 ? x * 12.92 : 1.055 * Math.pow(x, 1 / 2.4) - 0.055;
  ENC[i] = Math.round(v * 255);
}

function wbGains(t, g) {
  const gr = Math.pow(2, 0.5 * t), gg = Math.pow(2, -0.5 * g), gb = Math.pow(2, -0.5 * t);
  const y = LUMA[0] * gr + LUMA[1] * gg + LUMA[2] * gb;
  return [gr / y, gg / y, gb / y];
}

function colorMatrix(sat, hueDeg) {
  const s = 1 + sat, [lr, lg, lb] = LUMA;
  const A = [
    [lr + (1 - lr) * s, lg - lg * s, lb - lb * s],
    [lr - lr * s, lg + (1 - lg) * s, lb - lb * s],
    [lr - lr * s, lg - lg * s, lb + (1 - lb) * s],
  ];
  const a = hueDeg * Math.PI / 180, c = Math.cos(a), sn = Math.sin(a);
  const H = [
    [0.213 + c * 0.787 - sn * 0.213, 0.715 - c * 0.715 - sn * 0.715, 0.072 - c * 0.072 + sn * 0.928],
    [0.213 - c * 0.213 + sn * 0.143, 0.715 + c * 0.285 + sn * 0.140, 0.072 - c * 0.072 - sn * 0.283],
    [0.213 - c * 0.213 - sn * 0.787, 0.715 - c * 0.715 + sn * 0.715, 0.072 + c * 0.928 + sn * 0.072],
  ];
  const M = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    let v = 0;
    for (let k = 0; k < 3; k++) v += H[i][k] * A[k][j];
    M[i][j] = v;
  }
  return M;
}

// Per-channel tables (exposure, white balance, contrast) for each 8-bit input value.
function channelTables(adj) {
  const g = wbGains(adj.temperature, adj.tint), e = Math.pow(2, adj.exposure);
  const k = Math.pow(2, adj.contrast);
  const T = [new Float32Array(256), new Float32Array(256), new Float32Array(256)];
  for (let ch = 0; ch < 3; ch++) for (let i = 0; i < 256; i++) {
    let x = TO_LIN[i] * e * g[ch];
    if (adj.contrast !== 0) x = 0.18 * Math.pow(Math.max(x, 0) / 0.18, k);
    T[ch][i] = x;
  }
  return T;
}

function adjustPixels(src, mask, dst, adj) {
  const n = mask.length;
  const T = channelTables(adj), M = colorMatrix(adj.saturation, adj.hue);
  const useM = adj.saturation !== 0 || adj.hue !== 0;
  const [T0, T1, T2] = T;
  const m00 = M[0][0], m01 = M[0][1], m02 = M[0][2], m10 = M[1][0], m11 = M[1][1], m12 = M[1][2],
    m20 = M[2][0], m21 = M[2][1], m22 = M[2][2];
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const m = mask[i];
    const r8 = src[j], g8 = src[j + 1], b8 = src[j + 2];
    if (m <= 0) { dst[j] = r8; dst[j + 1] = g8; dst[j + 2] = b8; dst[j + 3] = 255; continue; }
    let r = T0[r8], g = T1[g8], b = T2[b8];
    if (useM) {
      const r2 = m00 * r + m01 * g + m02 * b, g2 = m10 * r + m11 * g + m12 * b, b2 = m20 * r + m21 * g + m22 * b;
      r = r2; g = g2; b = b2;
    }
    r = r < 0 ? 0 : (r > 1 ? 1 : r); g = g < 0 ? 0 : (g > 1 ? 1 : g); b = b < 0 ? 0 : (b > 1 ? 1 : b);
    const w = 1 - m;
    r = m * r + w * TO_LIN[r8]; g = m * g + w * TO_LIN[g8]; b = m * b + w * TO_LIN[b8];
    dst[j] = ENC[Math.round(r * ENC_N)]; dst[j + 1] = ENC[Math.round(g * ENC_N)]; dst[j + 2] = ENC[Math.round(b * ENC_N)];
    dst[j + 3] = 255;
  }
}

function isIdentity(adj) { return Object.values(adj).every((v) => v === 0); }

// ---------------------------------------------------------------------------------- drawing

function schedule() {
  if (S.scheduled) return;
  S.scheduled = true;
  requestAnimationFrame(() => { S.scheduled = false; renderNow(); });
}

function renderNow() {
  if (!S.orig) return;
  const t0 = performance.now();
  if (S.maskDirty) { computeMask(); S.maskDirty = false; }
  const src = S.orig, dst = S.out.data, m = S.mask, n = S.W * S.H;
  const view = S.view;
  if (view === "labels" && S.labelsImg) {
    ctx.putImageData(new ImageData(new Uint8ClampedArray(src), S.W, S.H), 0, 0);
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 0.75;
    ctx.drawImage(S.labelsImg, 0, 0, S.W, S.H);
    ctx.restore();
  } else {
    if (view === "adjusted") {
      if (isIdentity(S.adj)) dst.set(src);
      else adjustPixels(src, m, dst, S.adj);
    } else if (view === "mask") {
      for (let i = 0, j = 0; i < n; i++, j += 4) {
        const v = m[i] * 255; dst[j] = v; dst[j + 1] = v; dst[j + 2] = v; dst[j + 3] = 255;
      }
    } else { // overlay: tint the selection, dim the rest a little
      for (let i = 0, j = 0; i < n; i++, j += 4) {
        const a = m[i] * 0.55, b = 1 - a, dim = 0.75 + 0.25 * m[i];
        dst[j] = (src[j] * b + 255 * a) * dim;
        dst[j + 1] = (src[j + 1] * b + 40 * a) * dim;
        dst[j + 2] = (src[j + 2] * b + 90 * a) * dim;
        dst[j + 3] = 255;
      }
      if (!S.points.length) dst.set(src);
    }
    ctx.putImageData(S.out, 0, 0);
  }
  drawMarkers();
  const dt = performance.now() - t0;
  S.stats.renders++; S.stats.totalMs += dt; S.stats.lastMs = dt;
  $("perf").textContent = `${S.W}×${S.H} · last update ${dt.toFixed(1)} ms ` +
    `(mask ${S.stats.maskMs.toFixed(1)} ms) · last click ${S.stats.lastClickMs.toFixed(0)} ms`;
}

window.__renderNow = renderNow;

function drawMarkers() {
  const r = Math.max(4, Math.round(Math.min(S.W, S.H) / 150));
  ctx.save();
  ctx.lineWidth = Math.max(1.5, r / 3);
  for (const p of S.points) {
    ctx.beginPath();
    ctx.arc(p.x + 0.5, p.y + 0.5, r, 0, 2 * Math.PI);
    ctx.strokeStyle = "#000"; ctx.stroke();
    ctx.beginPath();
    ctx.arc(p.x + 0.5, p.y + 0.5, r - ctx.lineWidth, 0, 2 * Math.PI);
    ctx.strokeStyle = "#fff"; ctx.stroke();
  }
  ctx.restore();
}

// ------------------------------------------------------------------------------- downloads

function maskParams(extra = {}) {
  return Object.assign({
    points: S.points.map((p) => [p.x, p.y]), lam: S.lam, tau: S.tau, space: S.space,
    feather: S.feather, refine: $("refine").checked, adjustments: S.adj,
  }, extra);
}

async function download(url, body, filename) {
  setStatus("rendering full resolution…");
  try {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) { let m = `HTTP ${r.status}`; try { m = (await r.json()).error; } catch (e) { /* */ } throw new Error(m); }
    const blob = await r.blob();
    saveBlob(blob, filename);
    setStatus(`downloaded ${filename}`);
  } catch (e) { setStatus(`download failed: ${e.message}`, true); }
}

function saveBlob(blob, filename) {
  const a = $("dl-link");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 30000);
}

// ---------------------------------------------------------------------------------- resize

async function doResize() {
  const w = parseInt($("rw").value, 10), h = parseInt($("rh").value, 10);
  $("resize-status").textContent = "carving…";
  try {
    const { job } = await apiJSON(`/api/sessions/${S.sid}/resize`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ width: w, height: h }),
    });
    const st = await pollJob(job, (s) => { $("resize-status").textContent = `carving ${Math.round(s.progress * 100)}%`; });
    if (st.state !== "done") throw new Error(st.error || "failed");
    const r = await fetch(`/api/jobs/${job}/result`);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    saveBlob(await r.blob(), `${S.name || "image"}-${w}x${h}.png`);
    $("resize-status").textContent = `downloaded ${w}×${h}`;
  } catch (e) { $("resize-status").textContent = `resize failed: ${e.message}`; }
}

// ------------------------------------------------------------------------------ wiring

function bindSlider(id, key, digits) {
  const el = $(id), out = $(`${id}-out`);
  const upd = () => {
    S[key] = parseFloat(el.value);
    out.textContent = S[key].toFixed(digits);
    S.maskDirty = true;
    schedule();
  };
  el.addEventListener("input", upd);
  upd();
}

function init() {
  bindSlider("lam", "lam", 2);
  bindSlider("tau", "tau", 3);
  bindSlider("feather", "feather", 3);
  $("space").addEventListener("change", async () => {
    S.space = $("space").value;
    await Promise.all(S.points.map((p) => { p.space = S.space; return fetchDistances(p); }));
    S.maskDirty = true; schedule();
  });
  for (const el of document.querySelectorAll(".adj")) {
    const out = el.nextElementSibling;
    el.addEventListener("input", () => {
      S.adj[el.id] = parseFloat(el.value);
      out.textContent = el.value;
      if (S.view !== "adjusted") {
        S.view = "adjusted";
        document.querySelector('input[name=view][value=adjusted]').checked = true;
      }
      schedule();
    });
  }
  $("reset-adj").addEventListener("click", () => {
    for (const el of document.querySelectorAll(".adj")) { el.value = 0; el.nextElementSibling.textContent = "0"; S.adj[el.id] = 0; }
    schedule();
  });
  for (const r of document.querySelectorAll("input[name=view]")) {
    r.addEventListener("change", () => {
      S.view = r.value;
      $("legend").hidden = S.view !== "labels";
      schedule();
    });
  }
  $("undo").addEventListener("click", () => { S.points.pop(); S.maskDirty = true; updateButtons(); schedule(); });
  $("clear").addEventListener("click", () => { S.points = []; S.maskDirty = true; updateButtons(); schedule(); });
  $("canvas").addEventListener("click", (ev) => {
    const rect = $("canvas").getBoundingClientRect();
    const x = Math.min(S.W - 1, Math.max(0, Math.floor((ev.clientX - rect.left) * S.W / rect.width)));
    const y = Math.min(S.H - 1, Math.max(0, Math.floor((ev.clientY - rect.top) * S.H / rect.height)));
    addPoint(x, y);
  });
  $("file").addEventListener("change", (ev) => openFile(ev.target.files[0]));
  const drop = $("stage");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); $("drop").classList.add("dragover"); });
  drop.addEventListener("dragleave", () => $("drop").classList.remove("dragover"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    $("drop").classList.remove("dragover");
    if (ev.dataTransfer.files.length) openFile(ev.dataTransfer.files[0]);
  });
  $("dl-image").addEventListener("click", () => {
    const fmt = $("dl-format").value;
    download(`/api/sessions/${S.sid}/render`, maskParams({ format: fmt }), `${S.name || "image"}-edited.${fmt === "jpeg" ? "jpg" : "png"}`);
  });
  $("dl-mask").addEventListener("click", () => download(`/api/sessions/${S.sid}/mask`, maskParams(), `${S.name || "image"}-mask.png`));
  $("do-resize").addEventListener("click", doResize);
  apiJSON("/api/config").then((cfg) => {
    S.config = cfg;
    $("resize-panel").hidden = !cfg.resize;
  }).catch(() => {});
}

init();
