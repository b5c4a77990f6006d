// sempix masks panel (plain JS, no build step).
//
// The server sends, once per click, two distance maps (semantic and colour, uint16) at the
// preview resolution (at most config.preview_pixels). Every slider move is handled here:
// D = min_k lam*sem_k + (1-lam)*col_k (recomputed only when lam, the points or the space change),
// mask = D < tau (or a smoothstep of half-width `feather` around tau), then the class selection,
// saved-mask combinations and brush strokes (see layerMask), overlay and adjustment preview drawn
// into a canvas ImageData. Downloads send the same "recipe" to the server, which renders it at full
// resolution with the same maths (sempix/web/routes/mask.py, sempix/mask).
"use strict";

const $ = (id) => document.getElementById(id);
const app = window.sempix;

const S = {
  sid: null, W: 0, H: 0, job: null, ready: false, semantic: false, hasLabels: false,
  points: [],               // {x, y, space, sem: Float32Array|null, col: Float32Array}
  classes: [],              // selected class ids
  classMask: null,          // Uint8Array (PW*PH) of the selected classes
  strokes: [],              // {mode: "add"|"subtract", radius (image px), points: [[x, y], ...]}
  combine: [],              // {op, recipe, mask: Uint8Array, name}
  saved: [],                // {name, recipe, mask: Uint8Array}
  mode: "points", brush: 12,
  orig: null,               // Uint8ClampedArray RGBA of the original image (preview)
  out: null,                // ImageData shown
  dist: null, mask: null,   // Float32Array / Uint8Array (PW*PH)
  lam: 0.8, tau: 0.3, feather: 0.02, space: "lab", connected: true, floodCap: 0, view: "overlay",
  adj: { exposure: 0, contrast: 0, saturation: 0, temperature: 0, tint: 0, hue: 0 },
  labelsImg: null, legend: [], config: null, maskDirty: true, distDirty: true, nPts: 0, scheduled: false, pending: 0,
  stats: { renders: 0, totalMs: 0, lastMs: 0, maskMs: 0, clicks: 0, lastClickMs: 0 },
};
window.sempixEditor = S;

const ctx = $("canvas").getContext("2d", { willReadFrequently: true });
const strokeCanvas = document.createElement("canvas");
const sctx = strokeCanvas.getContext("2d", { willReadFrequently: true });
let strokeCache = null;

function setStatus(msg, isError = false) { app.setStatus(msg, isError); }
const apiJSON = (url, opts) => app.api(url, opts);

// ------------------------------------------------------------------------------ opening images

async function openFile(file, { keepHistory = false } = {}) {
  if (!file) return;
  resetSession(keepHistory);
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
  S.name = info.name; S.file = file;
  S.PW = info.preview_width; S.PH = info.preview_height;
  app.setSession({ sid: S.sid, W: S.W, H: S.H, PW: S.PW, PH: S.PH, name: S.name, file, ready: false });
  setStatus(`${info.width}×${info.height}: computing features…`);
  const imgPromise = loadImage(`/api/sessions/${S.sid}/image?preview=1`);
  // slimseg: the job reports a quick preview (narrow width) first; the full width replaces it
  let quick = false;
  const onReady = async (final) => {
    const sinfo = await apiJSON(`/api/sessions/${S.sid}`);
    S.ready = true; S.semantic = sinfo.semantic; S.hasLabels = sinfo.has_labels;
    const w = sinfo.features_width ? ` x${sinfo.features_width}` : "";
    let msg = `${final ? "ready" : "quick preview"} (${sinfo.backend}${w} features${sinfo.semantic ? "" : ", not semantic"})${final ? "" : ", refining"} — click the image`;
    if (sinfo.fallback) msg += ` [${sinfo.fallback}]`;
    setStatus(msg);
    $("view-labels").disabled = !S.hasLabels;
    if (S.hasLabels) loadLabels();
    else $("classes").innerHTML = '<li class="muted">needs semantic features (ade20k)</li>';
    app.setSession(Object.assign({}, app.session, { ready: true, semantic: S.semantic, hasLabels: S.hasLabels }));
    updateButtons();
  };
  const ready = app.runJob(S.job, null, (st) => {
    showProgress(st.progress, st.message || st.state);
    if (!quick && (st.message || "").startsWith("quick preview ready")) { quick = true; onReady(false); }
  }).then(async (st) => {
    hideProgress();
    if (st.state !== "done") { setStatus(`features failed: ${st.error || st.state}`, true); return; }
    await onReady(true);
  });
  const img = await imgPromise;
  const c = $("canvas");
  c.width = S.PW; c.height = S.PH;
  strokeCanvas.width = S.PW; strokeCanvas.height = S.PH; strokeCache = null;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, 0, 0, S.PW, S.PH);
  S.orig = ctx.getImageData(0, 0, S.PW, S.PH).data;
  S.out = ctx.createImageData(S.PW, S.PH);
  S.dist = new Float32Array(S.PW * S.PH);
  S.mask = new Uint8Array(S.PW * S.PH);
  S.adjLin = null; S.adjKey = null;
  $("drop").classList.remove("empty");
  fitCanvas();
  S.maskDirty = true; S.distDirty = true;
  renderNow();
  await ready;
}

// re-open the same file after the server closed the session (410): points are re-fetched
app.reopen = async (file) => {
  const keep = { points: S.points.map((p) => [p.x, p.y]), classes: S.classes };
  await openFile(file, { keepHistory: true });
  if (!S.ready) return;
  for (const [x, y] of keep.points) await addPoint(x, y, false);
  if (keep.classes.length) await setClasses(keep.classes, false);
  setStatus("re-opened: the server had closed this image to free memory; try again");
};

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

function showProgress(frac, msg) {
  $("progress").hidden = false;
  $("progress-bar").style.width = `${Math.round(frac * 100)}%`;
  $("progress-text").textContent = `${Math.round(frac * 100)}% ${msg || ""}`;
}
function hideProgress() { $("progress").hidden = true; }

function resetSession(keepHistory) {
  S.sid = null; S.ready = false; S.points = []; S.labelsImg = null; S.hasLabels = false;
  S.classes = []; S.classMask = null; S.strokes = []; S.combine = []; S.saved = []; S.legend = [];
  $("legend").hidden = true; $("legend").textContent = "";
  $("saved").textContent = "";
  if (!keepHistory) app.history.clear();
  tracker.reset();
  updateButtons();
}

async function loadLabels() {
  try {
    const leg = await apiJSON(`/api/sessions/${S.sid}/labels`);
    S.legend = leg.classes;
    S.labelsImg = await loadImage(`/api/sessions/${S.sid}/labels.png`);
    const ul = $("legend"), cl = $("classes");
    ul.textContent = ""; cl.textContent = "";
    for (const c of leg.classes.slice(0, 40)) {
      const li = document.createElement("li");
      const sw = document.createElement("i");
      sw.className = "sw"; sw.style.background = c.color;
      const name = document.createElement("span");
      name.textContent = c.name;
      const frac = document.createElement("small");
      frac.textContent = `${(c.fraction * 100).toFixed(1)}%`;
      li.append(sw, name, frac);
      ul.appendChild(li);
      // class picker: one checkbox per class present
      const li2 = document.createElement("li");
      const lab = document.createElement("label");
      const cb = document.createElement("input");
      cb.type = "checkbox"; cb.className = "class-pick"; cb.value = String(c.id); cb.dataset.name = c.name;
      cb.addEventListener("change", () => {
        const ids = Array.from(document.querySelectorAll(".class-pick:checked")).map((x) => parseInt(x.value, 10));
        setClasses(ids, true);
      });
      const sw2 = sw.cloneNode();
      const t = document.createElement("span");
      t.textContent = `${c.name} (${(c.fraction * 100).toFixed(1)}%)`;
      lab.append(cb, sw2, t);
      li2.appendChild(lab);
      cl.appendChild(li2);
    }
    ul.hidden = S.view !== "labels";
  } catch (e) { /* no labels */ }
}

// ------------------------------------------------------------------------------------ classes

async function fetchClassMask(ids) {
  if (!ids.length) return null;
  const img = await loadImage(`/api/sessions/${S.sid}/classmask?ids=${ids.join(",")}`);
  const c = document.createElement("canvas");
  c.width = S.PW; c.height = S.PH;
  const cx = c.getContext("2d", { willReadFrequently: true });
  cx.drawImage(img, 0, 0, S.PW, S.PH);
  const d = cx.getImageData(0, 0, S.PW, S.PH).data, n = S.PW * S.PH, m = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 4) m[i] = d[j];
  return m;
}

async function setClasses(ids, record) {
  if (!S.ready) return;
  S.pending++;
  try {
    const mask = await fetchClassMask(ids);
    S.classes = ids; S.classMask = mask;
    syncClassBoxes();
    S.maskDirty = true; schedule(); updateButtons();
    if (record) tracker.commit(ids.length ? "class selection" : "clear classes");
  } catch (e) {
    setStatus(`class selection failed: ${e.message}`, true);
  } finally { S.pending--; }
}

function syncClassBoxes() {
  for (const cb of document.querySelectorAll(".class-pick")) cb.checked = S.classes.includes(parseInt(cb.value, 10));
}

// ------------------------------------------------------------------------------------ clicking

async function addPoint(x, y, record = true) {
  if (!S.ready) { setStatus("features are still being computed…"); return; }
  const p = { x, y, space: S.space, sem: null, col: null };
  S.points = S.points.concat([p]);
  updateButtons();
  await fetchDistances(p);
  S.maskDirty = true; S.distDirty = true;
  schedule();
  if (record && S.points.includes(p)) tracker.commit("add point");
}

async function fetchDistances(p) {
  const t0 = performance.now();
  S.pending++;
  try {
    const r = await fetch(`/api/sessions/${S.sid}/distance?x=${p.x}&y=${p.y}&space=${p.space}`);
    if (!r.ok) {
      let msg = `HTTP ${r.status}`, code = null;
      try { const b = await r.json(); msg = b.error; code = b.code; } catch (e) { /* binary */ }
      if (code === "session_gone") app.sessionGone(msg);
      throw new Error(msg);
    }
    const buf = await r.arrayBuffer();
    const PW = S.PW, PH = S.PH, n = PW * PH;
    if (parseInt(r.headers.get("X-Width"), 10) !== PW || parseInt(r.headers.get("X-Height"), 10) !== PH) {
      throw new Error("distance map size does not match the preview");
    }
    const ss = parseFloat(r.headers.get("X-Sem-Scale")) / 65535;
    const cs = parseFloat(r.headers.get("X-Col-Scale")) / 65535;
    const q = new Uint16Array(buf);
    const sem = r.headers.get("X-Semantic") === "1" ? new Float32Array(n) : null;
    const col = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      col[i] = q[n + i] * cs;
      if (sem) sem[i] = q[i] * ss;
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

function hasMask() { return S.points.length > 0 || S.classes.length > 0 || S.strokes.length > 0 || S.combine.length > 0; }

function updateButtons() {
  const has = hasMask();
  $("undo").disabled = !S.points.length; $("clear").disabled = !has;
  $("dl-image").disabled = !(S.ready && has); $("dl-mask").disabled = !(S.ready && has);
  $("save-mask").disabled = !(S.ready && has);
  const parts = [];
  if (S.points.length) parts.push(`${S.points.length} point(s): ` + S.points.map((p) => `(${p.x},${p.y})`).join(" "));
  if (S.classes.length) parts.push(`classes: ${S.classes.map(className).join(", ")}`);
  if (S.strokes.length) parts.push(`${S.strokes.length} brush stroke(s)`);
  if (S.combine.length) parts.push(S.combine.map((c) => `${c.op} ${c.name}`).join(", "));
  $("points-info").textContent = parts.length ? parts.join("; ") : "no points";
  const has3 = $("do-resize"); if (has3) has3.disabled = !S.ready;
}

function className(id) { const c = S.legend.find((o) => o.id === id); return c ? c.name : String(id); }

// ------------------------------------------------------------------------------------- brush

function drawStrokes() {
  sctx.clearRect(0, 0, strokeCanvas.width, strokeCanvas.height);
  const f = S.PW / S.W;
  sctx.lineCap = "round"; sctx.lineJoin = "round";
  for (const st of S.strokes) {
    const col = st.mode === "add" ? "#fff" : "#000";
    sctx.strokeStyle = col; sctx.fillStyle = col;
    const r = Math.max(0.5, st.radius * f);
    const pts = st.points.map(([x, y]) => [(x + 0.5) * f - 0.5, (y + 0.5) * f - 0.5]);
    sctx.lineWidth = 2 * r;
    if (pts.length > 1) {
      sctx.beginPath();
      sctx.moveTo(pts[0][0], pts[0][1]);
      for (const [x, y] of pts.slice(1)) sctx.lineTo(x, y);
      sctx.stroke();
    }
    for (const [x, y] of [pts[0], pts[pts.length - 1]]) {
      sctx.beginPath(); sctx.arc(x, y, r, 0, 2 * Math.PI); sctx.fill();
    }
  }
  strokeCache = sctx.getImageData(0, 0, strokeCanvas.width, strokeCanvas.height).data;
}
function strokeData() { if (!strokeCache) drawStrokes(); return strokeCache; }

function imageXY(ev) {
  const rect = $("canvas").getBoundingClientRect();
  const x = Math.min(S.W - 1, Math.max(0, Math.floor((ev.clientX - rect.left) * S.W / rect.width)));
  const y = Math.min(S.H - 1, Math.max(0, Math.floor((ev.clientY - rect.top) * S.H / rect.height)));
  return [x, y];
}

let drawing = null;
function brushDown(ev) {
  if (S.mode === "points" || !S.ready) return false;
  const [x, y] = imageXY(ev);
  const rect = $("canvas").getBoundingClientRect();
  const radius = Math.max(1, S.brush * S.W / rect.width);  // brush size in screen px -> image px
  drawing = { mode: S.mode, radius: Math.round(radius * 10) / 10, points: [[x, y]] };
  S.strokes = S.strokes.concat([drawing]);
  $("canvas").setPointerCapture(ev.pointerId);
  strokeCache = null; S.maskDirty = true; schedule();
  return true;
}
function brushMove(ev) {
  if (!drawing) return;
  const [x, y] = imageXY(ev);
  const last = drawing.points[drawing.points.length - 1];
  if (last[0] === x && last[1] === y) return;
  if (drawing.points.length < 3000) drawing.points.push([x, y]);
  strokeCache = null; S.maskDirty = true; schedule();
}
function brushUp() {
  if (!drawing) return;
  drawing = null;
  updateButtons();
  tracker.commit(S.mode === "add" ? "brush +" : "brush −");
}

// ------------------------------------------------------------------------- saved masks, combine

function recipe() {
  return {
    points: S.points.map((p) => [p.x, p.y]), lam: S.lam, tau: S.tau, space: S.space,
    connected: S.connected,
    feather: S.feather, refine: $("refine").checked, classes: S.classes.slice(),
    combine: S.combine.map((c) => ({ op: c.op, mask: c.recipe })),
    strokes: S.strokes.map((s) => ({ mode: s.mode, radius: s.radius, points: s.points.slice() })),
  };
}

function saveMask() {
  if (!hasMask()) return;
  computeMask();
  const item = { name: `mask ${S.saved.length + 1}`, recipe: recipe(), mask: S.mask.slice() };
  S.saved = S.saved.concat([item]);
  renderSaved();
  tracker.commit("save mask");
}

function combineWith(item, op) {
  S.combine = S.combine.concat([{ op, name: item.name, recipe: item.recipe, mask: item.mask }]);
  S.maskDirty = true; schedule(); updateButtons();
  tracker.commit(`${op} ${item.name}`);
}

function renderSaved() {
  const ul = $("saved");
  ul.textContent = "";
  S.saved.forEach((item, k) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = item.name;
    li.appendChild(name);
    for (const [op, sym, title] of [["union", "∪", "union"], ["intersect", "∩", "intersection"], ["subtract", "−", "subtract"]]) {
      const b = document.createElement("button");
      b.textContent = sym; b.title = `${title} with the current mask`; b.dataset.op = op; b.dataset.index = k;
      b.className = "combine";
      b.addEventListener("click", () => combineWith(item, op));
      li.appendChild(b);
    }
    ul.appendChild(li);
  });
}

// ---------------------------------------------------------------------------------- history

function snapshot() {
  return {
    points: S.points, classes: S.classes, classMask: S.classMask, strokes: S.strokes, combine: S.combine,
    saved: S.saved, lam: S.lam, tau: S.tau, feather: S.feather, space: S.space, adj: Object.assign({}, S.adj),
  };
}
function restore(s) {
  const spaceChanged = s.space !== S.space;
  Object.assign(S, { points: s.points, classes: s.classes, classMask: s.classMask, strokes: s.strokes,
    combine: s.combine, saved: s.saved, lam: s.lam, tau: s.tau, feather: s.feather, space: s.space });
  S.adj = Object.assign({}, s.adj);
  for (const [id, d] of [["lam", 2], ["tau", 3], ["feather", 3]]) { $(id).value = S[id]; $(`${id}-out`).textContent = S[id].toFixed(d); }
  $("space").value = S.space;
  for (const el of document.querySelectorAll(".adj")) { el.value = S.adj[el.id]; el.nextElementSibling.textContent = String(S.adj[el.id]); }
  syncClassBoxes(); renderSaved();
  strokeCache = null; S.maskDirty = true; S.distDirty = true;
  if (spaceChanged) refetchSpace(); else schedule();
  updateButtons();
}
// a snapshot of the whole mask state; nothing is copied (arrays are replaced, never mutated)
const tracker = (() => {
  let last = null;
  return {
    commit(label) {
      const now = snapshot(), prev = last;
      last = now;
      if (!prev) return;
      app.history.push({ label, undo: () => { last = prev; restore(prev); }, redo: () => { last = now; restore(now); } });
    },
    reset() { last = snapshot(); },
  };
})();
window.__maskTracker = tracker;

async function refetchSpace() {
  await Promise.all(S.points.map((p) => { p.space = S.space; return fetchDistances(p); }));
  S.maskDirty = true; S.distDirty = true; schedule();
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
  if (!S.nPts) {
    m.fill(0);
  } else if (F <= 0) {
    for (let i = 0; i < n; i++) m[i] = d[i] < tau ? 255 : 0;
  } else {
    const hi = tau + F, inv = 1 / (2 * F);
    for (let i = 0; i < n; i++) {
      let t = (hi - d[i]) * inv;
      t = t < 0 ? 0 : (t > 1 ? 1 : t);
      m[i] = (t * t * (3 - 2 * t) * 255 + 0.5) | 0;
    }
  }
  layerMask(m, n);
  S.stats.maskMs = performance.now() - t0;
  return true;
}

// Same order as sempix/web/routes/mask.py evaluate(): max(range, classes) -> saved-mask
// combinations (union max, intersect min, subtract min(m, 1 - o)) -> brush strokes composited over.
function layerMask(m, n) {
  if (S.classMask && S.classes.length) {
    const c = S.classMask;
    for (let i = 0; i < n; i++) if (c[i] > m[i]) m[i] = c[i];
  }
  for (const cb of S.combine) {
    const o = cb.mask;
    if (cb.op === "union") for (let i = 0; i < n; i++) { if (o[i] > m[i]) m[i] = o[i]; }
    else if (cb.op === "intersect") for (let i = 0; i < n; i++) { if (o[i] < m[i]) m[i] = o[i]; }
    else for (let i = 0; i < n; i++) { const v = 255 - o[i]; if (v < m[i]) m[i] = v; }
  }
  if (S.strokes.length) {
    const sd = strokeData();
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const a = sd[j + 3];
      if (a) m[i] = ((m[i] * (255 - a) + sd[j] * a) / 255 + 0.5) | 0;
    }
  }
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
    } else if (!hasMask()) {
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
  return Object.assign(recipe(), { adjustments: S.adj }, extra);
}

async function download(url, body, filename) {
  setStatus("rendering full resolution…");
  try {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) {
      let m = `HTTP ${r.status}`, code = null;
      try { const b = await r.json(); m = b.error; code = b.code; } catch (e) { /* */ }
      if (code === "session_gone") app.sessionGone(m);
      throw new Error(m);
    }
    const blob = await r.blob();
    app.saveBlob(blob, filename);
    setStatus(`downloaded ${filename}`);
  } catch (e) { setStatus(`download failed: ${e.message}`, true); }
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
  el.addEventListener("change", () => tracker.commit(`${id} ${el.value}`));
  upd();
}

function init() {
  bindSlider("lam", "lam", 2);
  bindSlider("tau", "tau", 3);
  bindSlider("feather", "feather", 3);
  $("brush").addEventListener("input", () => { S.brush = parseFloat($("brush").value); $("brush-out").textContent = $("brush").value; });
  for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", () => { S.mode = r.value; });
  $("space").addEventListener("change", async () => {
    S.space = $("space").value;
    await refetchSpace();
    tracker.commit(`colour space ${S.space}`);
  });
  $("connected").addEventListener("change", () => {
    S.connected = $("connected").checked;
    S.maskDirty = true; S.distDirty = true; schedule();
  });
  for (const el of document.querySelectorAll(".adj")) {
    const out = el.nextElementSibling;
    el.addEventListener("input", () => {
      S.adj = Object.assign({}, S.adj, { [el.id]: parseFloat(el.value) });
      out.textContent = el.value;
      if (S.view !== "adjusted") {
        S.view = "adjusted";
        document.querySelector("input[name=view][value=adjusted]").checked = true;
      }
      schedule();
    });
    el.addEventListener("change", () => tracker.commit(`${el.id} ${el.value}`));
  }
  $("reset-adj").addEventListener("click", () => {
    for (const el of document.querySelectorAll(".adj")) { el.value = 0; el.nextElementSibling.textContent = "0"; }
    S.adj = { exposure: 0, contrast: 0, saturation: 0, temperature: 0, tint: 0, hue: 0 };
    schedule();
    tracker.commit("reset adjustments");
  });
  for (const r of document.querySelectorAll("input[name=view]")) {
    r.addEventListener("change", () => {
      S.view = r.value;
      $("legend").hidden = S.view !== "labels";
      schedule();
    });
  }
  $("undo").addEventListener("click", () => {
    S.points = S.points.slice(0, -1); S.maskDirty = true; S.distDirty = true; updateButtons(); schedule();
    tracker.commit("remove point");
  });
  $("clear").addEventListener("click", () => {
    Object.assign(S, { points: [], classes: [], classMask: null, strokes: [], combine: [] });
    syncClassBoxes(); strokeCache = null;
    S.maskDirty = true; S.distDirty = true; updateButtons(); schedule();
    tracker.commit("clear mask");
  });
  const cv = $("canvas");
  cv.addEventListener("pointerdown", (ev) => { if (brushDown(ev)) ev.preventDefault(); });
  cv.addEventListener("pointermove", brushMove);
  cv.addEventListener("pointerup", brushUp);
  cv.addEventListener("pointercancel", brushUp);
  cv.addEventListener("click", (ev) => {
    if (S.mode !== "points") return;
    const [x, y] = imageXY(ev);
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
  $("save-mask").addEventListener("click", saveMask);
  app.configReady.then((cfg) => { S.config = cfg; });
  tracker.reset();
}

init();
