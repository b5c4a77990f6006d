// sempix mask editor (plain JS, no build step).
//
// The server sends, once per click, two distance maps (semantic and colour, uint16). Every
// slider move is handled here: D = min_k G_k(lam*sem_k + (1-lam)*col_k), G_k the minimax path
// distance from click k when "connected" is on (recomputed only when lam, `connected`,
// the points or the space change), mask = D < tau (or a smoothstep of half-width `feather`
// around tau), overlay and adjustment preview drawn into a canvas ImageData at most
// PREVIEW_MAX_PIXELS large. The maths mirror sempix/mask/core.py and sempix/mask/adjust.py.
"use strict";

const $ = (id) => document.getElementById(id);

const S = {
  sid: null, W: 0, H: 0, job: null, ready: false, semantic: false, hasLabels: false,
  points: [],               // {x, y, space, sem: Float32Array|null, col: Float32Array}
  orig: null,               // Uint8ClampedArray RGBA of the original image
  out: null,                // ImageData shown
  dist: null, mask: null,   // Float32Array (W*H)
  floodCap: 0,              // D is exact below it when connected (see computeDistance)
  lam: 0.8, tau: 0.3, feather: 0.02, space: "lab", connected: true, view: "overlay",
  adj: { exposure: 0, contrast: 0, saturation: 0, temperature: 0, tint: 0, hue: 0 },
  labelsImg: null, config: null, maskDirty: true, distDirty: true, nPts: 0, scheduled: false, pending: 0,
  stats: { renders: 0, totalMs: 0, lastMs: 0, maskMs: 0, clicks: 0, lastClickMs: 0 },
};
window.sempixEditor = S;

const ctx = $("canvas").getContext("2d", { willReadFrequently: true });
const PREVIEW_MAX_PIXELS = 1_000_000;

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
  // The preview works at most PREVIEW_MAX_PIXELS (a screen shows no more); the server
  // renders the downloads at full resolution with the same maths.
  const c = $("canvas");
  const sc = Math.min(1, Math.sqrt(PREVIEW_MAX_PIXELS / (S.W * S.H)));
  S.PW = Math.max(1, Math.round(S.W * sc)); S.PH = Math.max(1, Math.round(S.H * sc));
  c.width = S.PW; c.height = S.PH;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, 0, 0, S.PW, S.PH);
  S.orig = ctx.getImageData(0, 0, S.PW, S.PH).data;
  S.out = ctx.createImageData(S.PW, S.PH);
  S.dist = new Float32Array(S.PW * S.PH);
  S.mask = new Uint8Array(S.PW * S.PH);
  S.adjLin = null; S.adjKey = null;
  $("drop").classList.remove("empty");
  fitCanvas();
  $("rw").value = S.W; $("rh").value = S.H;
  S.maskDirty = true; S.distDirty = true;
  renderNow();
}

// Show the canvas as large as the stage allows (CSS scaling; clicks map back to image pixels).
function fitCanvas() {
  if (!S.PW) return;
  const st = $("stage");
  const availW = Math.max(100, st.clientWidth - 28), availH = Math.max(100, st.clientHeight - 48);
  const sc = Math.min(availW / S.PW, availH / S.PH, 4);
  $("canvas").style.width = `${Math.floor(S.PW * sc)}px`;
  $("canvas").style.height = `${Math.floor(S.PH * sc)}px`;
}
window.addEventListener("resize", fitCanvas);

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
  S.maskDirty = true; S.distDirty = true;
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
    const W = S.W, H = S.H, n = W * H, PW = S.PW, PH = S.PH;
    const ss = parseFloat(r.headers.get("X-Sem-Scale")) / 65535;
    const cs = parseFloat(r.headers.get("X-Col-Scale")) / 65535;
    const q = new Uint16Array(buf);
    // (point-)sample the full-resolution maps at the preview pixel centres
    const xs = new Int32Array(PW);
    for (let x = 0; x < PW; x++) xs[x] = Math.min(W - 1, Math.floor((x + 0.5) * W / PW));
    const col = new Float32Array(PW * PH);
    const sem = r.headers.get("X-Semantic") === "1" ? new Float32Array(PW * PH) : null;
    for (let y = 0, o = 0; y < PH; y++) {
      const row = Math.min(H - 1, Math.floor((y + 0.5) * H / PH)) * W;
      for (let x = 0; x < PW; x++, o++) {
        const i = row + xs[x];
        col[o] = q[n + i] * cs;
        if (sem) sem[o] = q[i] * ss;
      }
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

// S.dist = min_k G_k with d_k = lam*sem_k + (1-lam)*col_k and G_k its minimax path distance from
// click k when S.connected (same as sempix.mask.combine(..., points=...): D < tau keeps only what
// is 4-connected to a click), else G_k = d_k. Recomputed only when lam, the points, the colour
// space or `connected` change (S.distDirty). A tau/feather move only re-thresholds it.
function computeDistance() {
  const n = S.PW * S.PH, d = S.dist;
  const lam = S.lam, rest = 1 - lam;
  const pts = S.points.filter((p) => p.col && p.space === S.space);
  S.nPts = pts.length;
  // the flood stops at floodCap: D is exact below it (all a threshold at tau + feather needs) and
  // >= floodCap elsewhere; computeMask re-floods when tau + feather reaches the cap
  S.floodCap = S.tau + S.feather + 0.15;
  const tmp = S.tmpDist && S.tmpDist.length === n ? S.tmpDist : (S.tmpDist = new Float32Array(n));
  for (let k = 0; k < pts.length; k++) {
    const col = pts[k].col, sem = pts[k].sem;
    if (sem) for (let i = 0; i < n; i++) tmp[i] = lam * sem[i] + rest * col[i];
    else tmp.set(col);
    const g = S.connected
      ? minimax(tmp, S.PW, S.PH, pts[k].x * S.PW / S.W, pts[k].y * S.PH / S.H, S.floodCap) : tmp;
    if (k === 0) d.set(g);
    else for (let i = 0; i < n; i++) if (g[i] < d[i]) d[i] = g[i];
  }
}

// Minimax path distance from pixel (x, y): G(p) = min over 4-connected paths of the largest d on
// the path, exact below `cap` and >= cap elsewhere (Infinity where the flood stopped) (mirrors sempix.distance.minimax_distance). A bucket queue (2048 buckets per distance
// unit, O(N)) instead of the library's binary heap keeps a lam move on a 1 MP preview fast; values
// stay exact floats, only the visiting order within one bucket (< 0.0005) may differ.
const MM_SCALE = 2048, MM_NB = 2048 * 4;
function minimax(d, W, H, x, y, cap = Infinity) {
  const n = W * H;
  x = Math.min(W - 1, Math.max(0, Math.floor(x))); y = Math.min(H - 1, Math.max(0, Math.floor(y)));
  const out = new Float32Array(n).fill(Infinity), done = new Uint8Array(n);
  const head = new Int32Array(MM_NB).fill(-1);
  let room = n + 16, pix = new Int32Array(room), nxt = new Int32Array(room), size = 0;
  const push = (v, i) => {
    if (size === room) {
      room *= 2;
      const a = new Int32Array(room); a.set(pix); pix = a;
      const b = new Int32Array(room); b.set(nxt); nxt = b;
    }
    let k = (v * MM_SCALE) | 0;
    if (k >= MM_NB) k = MM_NB - 1;
    pix[size] = i; nxt[size] = head[k]; head[k] = size++;
  };
  const s0 = y * W + x;
  out[s0] = d[s0]; push(d[s0], s0);
  const last = Math.min(MM_NB - 1, Math.floor(cap * MM_SCALE) + 1);
  for (let b = 0; b <= last; b++) {
    while (head[b] !== -1) {
      const e = head[b]; head[b] = nxt[e];
      const i = pix[e];
      if (done[i]) continue;
      done[i] = 1;
      const k = out[i], yy = (i / W) | 0, xx = i - yy * W;
      for (let t = 0; t < 4; t++) {
        let q;
        if (t === 0) { if (yy === 0) continue; q = i - W; }
        else if (t === 1) { if (yy === H - 1) continue; q = i + W; }
        else if (t === 2) { if (xx === 0) continue; q = i - 1; }
        else { if (xx === W - 1) continue; q = i + 1; }
        if (done[q]) continue;
        const v = d[q] > k ? d[q] : k;
        if (v < out[q]) { out[q] = v; push(v, q); }
      }
    }
  }
  return out;
}

// S.mask (Uint8Array, mask * 255 rounded): hard threshold D < tau, or a smoothstep of half-width
// `feather` around tau (same formula as sempix.mask.threshold).
function computeMask() {
  const t0 = performance.now();
  if (S.connected && S.tau + S.feather >= S.floodCap) S.distDirty = true;
  if (S.distDirty) { computeDistance(); S.distDirty = false; }
  const n = S.PW * S.PH, d = S.dist, m = S.mask, tau = S.tau, F = S.feather;
  if (!S.nPts) { m.fill(0); S.stats.maskMs = performance.now() - t0; return false; }
  if (F <= 0) {
    for (let i = 0; i < n; i++) m[i] = d[i] < tau ? 255 : 0;
  } else {
    const hi = tau + F, inv = 1 / (2 * F);
    for (let i = 0; i < n; i++) {
      let t = (hi - d[i]) * inv;
      t = t < 0 ? 0 : (t > 1 ? 1 : t);
      m[i] = (t * t * (3 - 2 * t) * 255 + 0.5) | 0;
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

// Linear-light adjusted image (Float32Array, 3 per pixel), cached per adjustment values.
function adjustedLinear(src, adj) {
  const key = JSON.stringify(adj);
  if (S.adjKey === key && S.adjLin) return S.adjLin;
  const n = S.PW * S.PH;
  if (!S.adjLin || S.adjLin.length !== 3 * n) S.adjLin = new Float32Array(3 * n);
  const out = S.adjLin;
  const [T0, T1, T2] = channelTables(adj), M = colorMatrix(adj.saturation, adj.hue);
  const useM = adj.saturation !== 0 || adj.hue !== 0;
  const m00 = M[0][0], m01 = M[0][1], m02 = M[0][2], m10 = M[1][0], m11 = M[1][1], m12 = M[1][2],
    m20 = M[2][0], m21 = M[2][1], m22 = M[2][2];
  for (let i = 0, j = 0, k = 0; i < n; i++, j += 4, k += 3) {
    let r = T0[src[j]], g = T1[src[j + 1]], b = T2[src[j + 2]];
    if (useM) {
      const r2 = m00 * r + m01 * g + m02 * b, g2 = m10 * r + m11 * g + m12 * b, b2 = m20 * r + m21 * g + m22 * b;
      r = r2; g = g2; b = b2;
    }
    out[k] = r < 0 ? 0 : (r > 1 ? 1 : r);
    out[k + 1] = g < 0 ? 0 : (g > 1 ? 1 : g);
    out[k + 2] = b < 0 ? 0 : (b > 1 ? 1 : b);
  }
  S.adjKey = key;
  return out;
}

function adjustPixels(src, mask, dst, adj) {
  const n = mask.length, A = adjustedLinear(src, adj);
  const s32 = new Uint32Array(src.buffer, src.byteOffset, n), d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0, j = 0, k = 0; i < n; i++, j += 4, k += 3) {
    const mq = mask[i];
    if (mq === 0) { d32[i] = s32[i]; continue; }
    let r = A[k], g = A[k + 1], b = A[k + 2];
    if (mq !== 255) {
      const m = mq / 255, w = 1 - m;
      r = m * r + w * TO_LIN[src[j]]; g = m * g + w * TO_LIN[src[j + 1]]; b = m * b + w * TO_LIN[src[j + 2]];
    }
    d32[i] = ENC[(r * ENC_N + 0.5) | 0] | (ENC[(g * ENC_N + 0.5) | 0] << 8) | (ENC[(b * ENC_N + 0.5) | 0] << 16) | 0xff000000;
  }
}

// Overlay tables: for each mask level q (0..255) and channel value v, the shown value.
const OVL = [new Uint32Array(65536), new Uint32Array(65536), new Uint32Array(65536)];
(function () {
  const tint = [255, 40, 90];
  for (let q = 0; q < 256; q++) {
    const m = q / 255, a = 0.55 * m, b = 1 - a, dim = 0.75 + 0.25 * m;
    for (let v = 0; v < 256; v++) for (let c = 0; c < 3; c++) {
      const x = Math.round((v * b + tint[c] * a) * dim);
      OVL[c][(q << 8) | v] = Math.min(255, Math.max(0, x)) << (8 * c);
    }
  }
})();

function overlayPixels(src, mask, dst) {
  const n = mask.length;
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
  const [O0, O1, O2] = OVL;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const q = mask[i] << 8;
    d32[i] = O0[q | src[j]] | O1[q | src[j + 1]] | O2[q | src[j + 2]] | 0xff000000;
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
  const src = S.orig, dst = S.out.data, m = S.mask, n = S.PW * S.PH;
  const view = S.view;
  if (view === "labels" && S.labelsImg) {
    ctx.putImageData(new ImageData(new Uint8ClampedArray(src), S.PW, S.PH), 0, 0);
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 0.75;
    ctx.drawImage(S.labelsImg, 0, 0, S.PW, S.PH);
    ctx.restore();
  } else {
    if (view === "adjusted") {
      if (isIdentity(S.adj)) dst.set(src);
      else adjustPixels(src, m, dst, S.adj);
    } else if (view === "mask") {
      const d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) { const v = m[i]; d32[i] = v | (v << 8) | (v << 16) | 0xff000000; }
    } else if (!S.points.length) {
      dst.set(src);
    } else { // overlay: tint the selection, dim the rest a little
      overlayPixels(src, m, dst);
    }
    ctx.putImageData(S.out, 0, 0);
  }
  drawMarkers();
  const dt = performance.now() - t0;
  S.stats.renders++; S.stats.totalMs += dt; S.stats.lastMs = dt;
  $("perf").textContent = `${S.W}×${S.H} (preview ${S.PW}×${S.PH}) · last update ${dt.toFixed(1)} ms ` +
    `(mask ${S.stats.maskMs.toFixed(1)} ms) · last click ${S.stats.lastClickMs.toFixed(0)} ms`;
}

window.__renderNow = renderNow;

function drawMarkers() {
  const r = Math.max(4, Math.round(Math.min(S.PW, S.PH) / 150)), f = S.PW / S.W;
  ctx.save();
  ctx.lineWidth = Math.max(1.5, r / 3);
  for (const p of S.points) {
    ctx.beginPath();
    ctx.arc((p.x + 0.5) * f, (p.y + 0.5) * f, r, 0, 2 * Math.PI);
    ctx.strokeStyle = "#000"; ctx.stroke();
    ctx.beginPath();
    ctx.arc((p.x + 0.5) * f, (p.y + 0.5) * f, r - ctx.lineWidth, 0, 2 * Math.PI);
    ctx.strokeStyle = "#fff"; ctx.stroke();
  }
  ctx.restore();
}

// ------------------------------------------------------------------------------- downloads

function maskParams(extra = {}) {
  return Object.assign({
    points: S.points.map((p) => [p.x, p.y]), lam: S.lam, tau: S.tau, space: S.space,
    feather: S.feather, refine: $("refine").checked, connected: S.connected, adjustments: S.adj,
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
    if (key === "lam") S.distDirty = true;
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
    S.maskDirty = true; S.distDirty = true; schedule();
  });
  $("connected").addEventListener("change", () => {
    S.connected = $("connected").checked;
    S.maskDirty = true; S.distDirty = true; schedule();
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
  $("undo").addEventListener("click", () => { S.points.pop(); S.maskDirty = true; S.distDirty = true; updateButtons(); schedule(); });
  $("clear").addEventListener("click", () => { S.points = []; S.maskDirty = true; S.distDirty = true; updateButtons(); schedule(); });
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
