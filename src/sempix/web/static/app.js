// sempix app shell (plain JS, no build step): tabs, shared session, jobs with server-sent
// progress and cancel, undo/redo history across every panel (Ctrl+Z / Ctrl+Shift+Z).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const listeners = [];

  const app = {
    $,
    session: null, // {sid, W, H, PW, PH, name, file, ready, semantic, hasLabels}
    config: null,
    tool: "mask",
    log: [],
  };
  window.sempix = app;

  app.setStatus = (msg, isError = false) => {
    const el = $("status");
    el.textContent = msg;
    el.classList.toggle("error", !!isError);
  };

  app.note = (el, msg, cls = "") => {
    el.textContent = msg;
    el.classList.remove("error", "warn");
    if (cls) el.classList.add(cls);
  };

  // fetch + JSON; errors carry .status and .code (410 session_gone re-opens the image)
  app.api = async (url, opts) => {
    const r = await fetch(url, opts);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const err = new Error((body && body.error) || `HTTP ${r.status}`);
      err.status = r.status; err.code = body && body.code;
      if (err.code === "session_gone") app.sessionGone(err.message);
      throw err;
    }
    return body;
  };
  app.post = (url, body) => app.api(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });

  // ------------------------------------------------------------------------- shared session
  app.onSession = (fn) => listeners.push(fn);
  app.setSession = (s) => {
    app.session = s;
    for (const fn of listeners) { try { fn(s); } catch (e) { console.warn(e); } }
  };
  app.sessionGone = (msg) => {
    const s = app.session;
    if (!s || app.reopening) return;
    app.setStatus(`${msg} — re-opening ${s.name}…`, true);
    if (s.file && app.reopen) { app.reopening = true; app.reopen(s.file).finally(() => { app.reopening = false; }); }
  };

  // -------------------------------------------------------------------------------- jobs
  // Follow a job through its server-sent events (fallback: polling); drive a .job widget
  // (progress bar + Cancel button). Resolves with the final status.
  app.runJob = (job, widget, onProgress) => new Promise((resolve) => {
    const bar = widget ? widget.querySelector(".bar") : null;
    const txt = widget ? widget.querySelector(".ptext") : null;
    const cancel = widget ? widget.querySelector(".cancel") : null;
    let done = false, es = null, timer = null;
    const show = (st) => {
      if (bar) bar.style.width = `${Math.round(st.progress * 100)}%`;
      if (txt) txt.textContent = `${Math.round(st.progress * 100)}% ${st.message || st.state}`;
      if (onProgress) onProgress(st);
    };
    const finish = (st) => {
      if (done) return;
      done = true;
      if (es) es.close();
      if (timer) clearTimeout(timer);
      if (widget) widget.hidden = true;
      if (cancel) cancel.onclick = null;
      resolve(st);
    };
    if (widget) { widget.hidden = false; show({ progress: 0, state: "queued", message: "queued" }); }
    if (cancel) {
      cancel.disabled = false;
      cancel.onclick = () => { cancel.disabled = true; fetch(`/api/jobs/${job}/cancel`, { method: "POST" }); };
    }
    const poll = async () => {
      try {
        const st = await app.api(`/api/jobs/${job}`);
        show(st);
        if (["done", "error", "cancelled"].includes(st.state)) return finish(st);
      } catch (e) { return finish({ state: "error", error: e.message }); }
      timer = setTimeout(poll, 300);
    };
    if (window.EventSource) {
      es = new EventSource(`/api/jobs/${job}/events`);
      es.addEventListener("status", (ev) => {
        const st = JSON.parse(ev.data);
        show(st);
        if (["done", "error", "cancelled"].includes(st.state)) finish(st);
      });
      es.onerror = () => { if (!done) { es.close(); es = null; poll(); } };
    } else {
      poll();
    }
  });

  // ------------------------------------------------------------------------------ history
  // Commands {label, undo(), redo()} from every panel; one stack for the whole page.
  const H = { undo: [], redo: [], max: 200 };
  app.history = {
    push(cmd) {
      H.undo.push(cmd);
      if (H.undo.length > H.max) H.undo.shift();
      H.redo = [];
      app.history.update();
    },
    undo() {
      const c = H.undo.pop();
      if (!c) return;
      c.undo();
      H.redo.push(c);
      app.history.update();
      app.setStatus(`undone: ${c.label}`);
    },
    redo() {
      const c = H.redo.pop();
      if (!c) return;
      c.redo();
      H.undo.push(c);
      app.history.update();
      app.setStatus(`redone: ${c.label}`);
    },
    clear() { H.undo = []; H.redo = []; app.history.update(); },
    update() {
      $("undo-btn").disabled = !H.undo.length;
      $("redo-btn").disabled = !H.redo.length;
      $("undo-btn").title = H.undo.length ? `Undo ${H.undo[H.undo.length - 1].label} (Ctrl+Z)` : "Undo (Ctrl+Z)";
      $("redo-btn").title = H.redo.length ? `Redo ${H.redo[H.redo.length - 1].label} (Ctrl+Shift+Z)` : "Redo (Ctrl+Shift+Z)";
    },
    get sizes() { return [H.undo.length, H.redo.length]; },
  };
  // A value-snapshot command: the panel gives get()/set(); commit() records old -> new.
  app.tracked = (label, get, set) => {
    let last = get();
    return {
      commit(lbl) {
        const now = get(), prev = last;
        if (JSON.stringify(now) === JSON.stringify(prev)) return;
        last = now;
        app.history.push({ label: lbl || label, undo: () => { last = prev; set(prev); }, redo: () => { last = now; set(now); } });
      },
      reset() { last = get(); },
    };
  };

  document.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey)) return;
    const t = ev.target;
    if (t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && ["text", "number"].includes(t.type)))) return;
    const k = ev.key.toLowerCase();
    if (k === "z" && !ev.shiftKey) { ev.preventDefault(); app.history.undo(); }
    else if ((k === "z" && ev.shiftKey) || k === "y") { ev.preventDefault(); app.history.redo(); }
  });
  $("undo-btn").addEventListener("click", () => app.history.undo());
  $("redo-btn").addEventListener("click", () => app.history.redo());

  // -------------------------------------------------------------------------------- tabs
  app.showTool = (tool) => {
    app.tool = tool;
    document.body.dataset.tool = tool;
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tool === tool);
    for (const el of document.querySelectorAll(".tool, .view")) el.hidden = el.dataset.tool !== tool;
    if (location.hash !== `#${tool}`) history.replaceState(null, "", tool === "mask" ? location.pathname : `#${tool}`);
    window.dispatchEvent(new Event("resize"));
  };
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => app.showTool(b.dataset.tool));
  const initial = location.pathname === "/recolor" ? "recolor" : (location.hash || "#mask").slice(1);
  if (["mask", "resize", "softseg", "palette", "recolor", "adjust"].includes(initial)) app.showTool(initial);

  app.saveBlob = (blob, filename) => {
    const a = $("dl-link");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 30000);
  };

  app.configReady = app.api("/api/config").then((cfg) => {
    app.config = cfg;
    const tools = cfg.tools || {};
    for (const b of document.querySelectorAll(".tab")) {
      const t = b.dataset.tool;
      if (t !== "mask" && tools[t === "resize" ? "resize" : t] === false) b.disabled = true;
    }
    return cfg;
  }).catch(() => null);
})();
