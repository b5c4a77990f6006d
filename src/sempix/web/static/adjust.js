// Style panel: load a trained SA-AdjustNet style (server list or upload), preview it with a
// strength slider, show its adjustment maps, click regions to re-assign them to a preset
// (connected range masks made on the server), render + download at full resolution.
"use strict";
(() => {
  const app = window.sempix, $ = app.$;
  const A = {
    style: null, edits: [], preset: 1, strength: 1, showMaps: false,
    orig: null, adj: null, maps: null, shares: null, pending: 0, version: 0, seq: 0,
  };
  window.sempixAdjust = A;
  const hist = app.tracked("style edits", () => ({ e: A.edits.slice(), s: A.strength }),
    (st) => { A.edits = st.e.slice(); setStrength(st.s); syncEdits(); refresh(); });

  const bitmap = (blob) => new Promise((resolve, reject) => {
    const img = new Image();
    const url = URL.createObjectURL(blob);
    img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("image failed to load")); };
    img.src = url;
  });

  async function postImage(url, body) {
    const r = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) {
      let msg = `HTTP ${r.status}`;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      const err = new Error(msg); err.status = r.status;
      throw err;
    }
    return { img: await bitmap(await r.blob()), headers: r.headers };
  }

  function reset() {
    A.style = null; A.edits = []; A.orig = null; A.adj = null; A.maps = null; A.shares = null;
    $("adj-controls").hidden = true;
    $("adj-info").textContent = "";
    $("adj-presets").textContent = "";
    const c = $("adj-canvas"); c.width = 1; c.height = 1;
    $("adj-dl").hidden = true;
    syncEdits();
    hist.reset();
  }

  async function listStyles() {
    try {
      const { styles } = await app.api("/api/adjust/styles");
      const sel = $("adj-server");
      sel.textContent = "";
      for (const n of styles) {
        const o = document.createElement("option"); o.value = n; o.textContent = n; sel.appendChild(o);
      }
      $("adj-server-row").hidden = !styles.length;
    } catch (e) { $("adj-server-row").hidden = true; }
  }

  app.onSession((s) => {
    $("adj-file-label").classList.toggle("disabled", !s);
    $("adj-file").disabled = !s;
    $("adj-load").disabled = !s;
    if (s && !s.ready) { reset(); listStyles(); }
    if (s && s.ready && A.style) refresh();
  });

  function setStrength(v) {
    A.strength = v;
    $("adj-strength").value = String(v);
    $("adj-strength-out").textContent = v.toFixed(2);
  }

  function syncEdits() {
    const n = A.edits.length;
    $("adj-edits").textContent = n ? `${n} region${n > 1 ? "s" : ""} re-assigned` : "no regions re-assigned";
    $("adj-undo").disabled = !n;
    $("adj-clear").disabled = !n;
    if (A.shares) {
      $("adj-shares").textContent = A.shares.map((v, k) => `preset ${k + 1}: ${(v * 100).toFixed(0)}%`).join(" · ");
    } else {
      $("adj-shares").textContent = "";
    }
  }

  function showStyle(info) {
    A.style = info; A.edits = []; A.preset = 1; A.shares = null;
    const bits = [`${info.name}: ${info.variant}`];
    if (info.effect) bits.push(`effect ${info.effect}`);
    bits.push(`${info.trained_pairs} training pairs, ${info.steps} steps`);
    $("adj-info").textContent = bits.join(", ");
    const box = $("adj-presets");
    box.textContent = "";
    info.colors.forEach((col, k) => {
      const lab = document.createElement("label");
      const r = document.createElement("input");
      r.type = "radio"; r.name = "adj-preset"; r.value = String(k + 1); r.checked = k === 0;
      r.addEventListener("change", () => { A.preset = k + 1; });
      const sw = document.createElement("i"); sw.className = "sw"; sw.style.background = col;
      lab.append(r, sw, document.createTextNode(` preset ${k + 1}`));
      box.appendChild(lab);
    });
    $("adj-map-section").hidden = !info.adjustment_maps;
    $("adj-controls").hidden = false;
    $("adj-dl").hidden = true;
    syncEdits(); hist.reset();
    refresh();
  }

  async function loadStyle(promise) {
    app.note($("adj-status"), "loading style…");
    try {
      showStyle(await promise);
      app.note($("adj-status"), "style loaded");
    } catch (e) {
      app.note($("adj-status"), `style not loaded: ${e.message}`, "error");
    }
  }

  $("adj-file").addEventListener("change", () => {
    const f = $("adj-file").files[0], s = app.session;
    if (!f || !s) return;
    const fd = new FormData(); fd.append("file", f);
    loadStyle(app.api(`/api/sessions/${s.sid}/adjust/upload`, { method: "POST", body: fd }));
    $("adj-file").value = "";
  });
  $("adj-load").addEventListener("click", () => {
    const s = app.session, name = $("adj-server").value;
    if (s && name) loadStyle(app.post(`/api/sessions/${s.sid}/adjust/style`, { name }));
  });

  function draw() {
    const c = $("adj-canvas");
    if (!A.adj) return;
    if (c.width !== A.adj.width || c.height !== A.adj.height) {
      c.width = A.adj.width; c.height = A.adj.height; fit();
    }
    const cx = c.getContext("2d");
    cx.globalAlpha = 1;
    cx.drawImage(A.orig || A.adj, 0, 0, c.width, c.height);
    // the mapping is linear in the strength: blending the photo with the full-strength style
    // is the strength slider (the download applies it at full resolution on the server)
    cx.globalAlpha = A.orig ? A.strength : 1;
    cx.drawImage(A.adj, 0, 0, c.width, c.height);
    if (A.showMaps && A.maps) { cx.globalAlpha = 0.55; cx.drawImage(A.maps, 0, 0, c.width, c.height); }
    cx.globalAlpha = 1;
    const s = app.session;
    if (s && A.style) {
      for (const e of A.edits) {
        const x = (e.x + 0.5) * c.width / s.W, y = (e.y + 0.5) * c.height / s.H;
        cx.beginPath(); cx.arc(x, y, 4, 0, 2 * Math.PI);
        cx.fillStyle = A.style.colors[e.preset - 1] || "#fff"; cx.fill();
        cx.lineWidth = 1.5; cx.strokeStyle = "#000"; cx.stroke();
      }
    }
    A.version += 1;
    c.dataset.version = String(A.version);
  }

  // show the working copy as large as the stage allows (up to 4x its pixels)
  function fit() {
    const c = $("adj-canvas");
    if (c.width < 2) return;
    const availW = Math.max(100, $("stage").clientWidth - 40);
    const availH = Math.max(100, window.innerHeight - 140);
    const k = Math.min(4, availW / c.width, availH / c.height);
    c.style.width = `${Math.round(c.width * k)}px`;
  }
  window.addEventListener("resize", fit);

  async function refresh() {
    const s = app.session;
    if (!s || !A.style) return;
    const seq = ++A.seq;
    A.pending += 1;
    app.note($("adj-status"), "computing preview…");
    const body = { edits: A.edits };
    try {
      const jobs = [postImage(`/api/sessions/${s.sid}/adjust/preview`, body)];
      if (A.style.adjustment_maps) jobs.push(postImage(`/api/sessions/${s.sid}/adjust/maps`, body));
      if (!A.orig) jobs.push(fetch(`/api/sessions/${s.sid}/image?preview=1`).then((r) => r.blob()).then(bitmap));
      const res = await Promise.all(jobs);
      if (seq !== A.seq || !app.session || app.session.sid !== s.sid) return;  // superseded
      A.adj = res[0].img;
      if (A.style.adjustment_maps) {
        A.maps = res[1].img;
        A.shares = JSON.parse(res[1].headers.get("X-Shares") || "null");
      }
      if (!A.orig) A.orig = res[res.length - 1];
      draw(); syncEdits();
      app.note($("adj-status"), `preview in ${res[0].headers.get("X-Milliseconds")} ms`);
    } catch (e) {
      if (seq === A.seq) app.note($("adj-status"), `preview failed: ${e.message}`, "error");
    } finally {
      A.pending -= 1;
    }
  }

  $("adj-strength").addEventListener("input", () => { setStrength(parseFloat($("adj-strength").value)); draw(); });
  $("adj-strength").addEventListener("change", () => hist.commit("style strength"));
  $("adj-show-maps").addEventListener("change", () => { A.showMaps = $("adj-show-maps").checked; draw(); });
  $("adj-undo").addEventListener("click", () => { A.edits = A.edits.slice(0, -1); hist.commit("undo region"); syncEdits(); refresh(); });
  $("adj-clear").addEventListener("click", () => { A.edits = []; hist.commit("clear regions"); syncEdits(); refresh(); });

  $("adj-canvas").addEventListener("click", (ev) => {
    const s = app.session, c = $("adj-canvas");
    if (!s || !A.style || !A.adj) return;
    if (!A.style.adjustment_maps) { app.note($("adj-status"), "this style has no adjustment maps to re-assign", "warn"); return; }
    if (!s.ready) { app.note($("adj-status"), "features are still being computed; click again when ready", "warn"); return; }
    const r = c.getBoundingClientRect();
    const x = Math.min(s.W - 1, Math.max(0, Math.floor((ev.clientX - r.left) / r.width * s.W)));
    const y = Math.min(s.H - 1, Math.max(0, Math.floor((ev.clientY - r.top) / r.height * s.H)));
    A.edits = A.edits.concat([{ x, y, preset: A.preset }]);
    hist.commit(`region → preset ${A.preset}`);
    syncEdits(); refresh();
  });

  $("adj-render").addEventListener("click", async () => {
    const s = app.session;
    if (!s || !A.style) return;
    $("adj-render").disabled = true;
    $("adj-dl").hidden = true;
    app.note($("adj-render-status"), `rendering ${s.W}×${s.H}…`);
    try {
      const { job } = await app.post(`/api/sessions/${s.sid}/adjust/render`, {
        edits: A.edits, strength: A.strength, format: $("adj-format").value,
      });
      const st = await app.runJob(job, $("adj-job"));
      if (!app.session || app.session.sid !== s.sid) return;
      if (st.state === "cancelled") { app.note($("adj-render-status"), "render cancelled", "warn"); return; }
      if (st.state !== "done") throw new Error(st.error || "failed");
      const { info } = await app.api(`/api/jobs/${job}/info`);
      const a = $("adj-dl");
      a.href = `/api/jobs/${job}/result`; a.download = info.download_name; a.hidden = false;
      app.note($("adj-render-status"), `done: ${info.width}×${info.height} in ${info.seconds} s`);
    } catch (e) {
      app.note($("adj-render-status"), `render failed: ${e.message}`, "error");
    } finally {
      $("adj-render").disabled = false;
    }
  });
})();
