// Soft layers panel: compute (job with progress/cancel), view the layers composited, toggle/solo,
// download PSD (when the server has the writer) / ORA / PNGs.
"use strict";
(() => {
  const app = window.sempix, $ = app.$;
  const T = { job: null, layers: [], imgs: [], visible: [], solo: -1 };
  window.sempixSoftseg = T;
  const vis = app.tracked("layer visibility", () => ({ v: T.visible.slice(), s: T.solo }),
    (st) => { T.visible = st.v.slice(); T.solo = st.s; syncList(); draw(); });

  app.onSession((s) => {
    $("ss-run").disabled = !(s && s.ready);
    if (s && !s.ready) reset();
  });

  function reset() {
    T.job = null; T.layers = []; T.imgs = []; T.visible = []; T.solo = -1;
    $("ss-layer-section").hidden = true;
    $("ss-list").textContent = "";
    const c = $("ss-canvas"); c.width = 1; c.height = 1;
    $("ss-vis").removeAttribute("src");
    app.note($("ss-status"), "");
  }

  function draw() {
    const c = $("ss-canvas");
    if (!T.imgs.length) return;
    const cx = c.getContext("2d");
    cx.globalCompositeOperation = "source-over";
    cx.clearRect(0, 0, c.width, c.height);
    // soft layers sum to one: adding alpha * colour of the visible layers recomposes the image
    cx.globalCompositeOperation = "lighter";
    T.imgs.forEach((img, k) => {
      const on = T.solo >= 0 ? k === T.solo : T.visible[k];
      if (on) cx.drawImage(img, 0, 0);
    });
    cx.globalCompositeOperation = "source-over";
    c.dataset.version = String((parseInt(c.dataset.version || "0", 10) + 1));
  }

  function syncList() {
    for (const li of document.querySelectorAll("#ss-list li")) {
      const k = parseInt(li.dataset.index, 10);
      li.querySelector("input").checked = T.visible[k];
      li.querySelector(".solo").classList.toggle("active", T.solo === k);
      li.querySelector(".solo").textContent = T.solo === k ? "unsolo" : "solo";
    }
  }

  function buildList() {
    const ul = $("ss-list");
    ul.textContent = "";
    T.layers.forEach((L, k) => {
      const li = document.createElement("li");
      li.dataset.index = k;
      const cb = document.createElement("input");
      cb.type = "checkbox"; cb.checked = true; cb.className = "ss-toggle"; cb.title = "show this layer";
      cb.addEventListener("change", () => { T.visible = T.visible.slice(); T.visible[k] = cb.checked; draw(); vis.commit(cb.checked ? `show layer ${k}` : `hide layer ${k}`); });
      const sw = document.createElement("i");
      sw.className = "sw"; sw.style.background = L.color;
      const name = document.createElement("span");
      name.textContent = `${L.name} (${(L.area * 100).toFixed(1)}%)`;
      const solo = document.createElement("button");
      solo.className = "solo"; solo.textContent = "solo";
      solo.addEventListener("click", () => { T.solo = T.solo === k ? -1 : k; syncList(); draw(); vis.commit(T.solo >= 0 ? `solo layer ${k}` : "unsolo"); });
      const dl = document.createElement("a");
      dl.href = `/api/jobs/${T.job}/files/${L.url}?download=1`; dl.textContent = "png"; dl.download = L.url;
      li.append(cb, sw, name, solo, dl);
      ul.appendChild(li);
    });
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("layer image failed to load"));
      img.src = url;
    });
  }

  $("ss-run").addEventListener("click", async () => {
    const s = app.session;
    if (!s) return;
    $("ss-run").disabled = true;
    app.note($("ss-status"), "computing soft layers…");
    try {
      const { job } = await app.post(`/api/sessions/${s.sid}/softseg`, { layers: parseInt($("ss-layers").value, 10) || 5 });
      T.job = job;
      const st = await app.runJob(job, $("ss-job"));
      if (!app.session || app.session.sid !== s.sid) return;  // another image was opened meanwhile
      if (st.state === "cancelled") { app.note($("ss-status"), "soft segmentation cancelled", "warn"); return; }
      if (st.state !== "done") throw new Error(st.error || "failed");
      const { info } = await app.api(`/api/jobs/${job}/info`);
      T.layers = info.layers;
      T.imgs = await Promise.all(info.layers.map((L) => loadImage(`/api/jobs/${job}/files/${L.url}`)));
      T.visible = T.layers.map(() => true); T.solo = -1;
      const c = $("ss-canvas"); c.width = info.width; c.height = info.height;
      $("ss-vis").src = `/api/jobs/${job}/files/layers_vis.png`;
      buildList(); draw(); vis.reset();
      const box = $("ss-downloads");
      box.textContent = "";
      const links = [["psd", "layers.psd", "PSD"], ["ora", "layers.ora", "ORA"], ["zip", "layers.zip", "PNGs (zip)"]];
      for (const [fmt, file, label] of links) {
        if (!info.formats.includes(fmt)) continue;
        const a = document.createElement("a");
        a.className = "button"; a.href = `/api/jobs/${job}/files/${file}?download=1`; a.download = `${info.download_name}.${fmt}`;
        a.textContent = label; a.dataset.format = fmt;
        box.appendChild(a);
      }
      $("ss-layer-section").hidden = false;
      app.note($("ss-status"), `${info.layers.length} layers at ${info.width}×${info.height} in ${info.seconds} s` +
        (info.recompose_error !== null ? ` (recomposition error ${info.recompose_error})` : "") +
        (info.formats.includes("psd") ? "" : " — PSD export not available on this server"));
    } catch (e) {
      app.note($("ss-status"), `soft layers failed: ${e.message}`, "error");
    } finally {
      $("ss-run").disabled = !(app.session && app.session.ready);
    }
  });
  $("ss-all").addEventListener("click", () => { T.visible = T.visible.map(() => true); T.solo = -1; syncList(); draw(); vis.commit("show all layers"); });
})();
