// Resize panel: semantic seam carving / DNR / scaling as a background job with progress and cancel.
"use strict";
(() => {
  const app = window.sempix, $ = app.$;
  let last = null;
  const sizes = app.tracked("resize target", () => [$("rw").value, $("rh").value, $("rmethod").value],
    ([w, h, m]) => { $("rw").value = w; $("rh").value = h; $("rmethod").value = m; });

  app.onSession((s) => {
    if (!s) return;
    if (!s.ready) {
      $("rw").value = s.W; $("rh").value = s.H; sizes.reset();
      $("resize-before").src = `/api/sessions/${s.sid}/image?preview=1`;
      $("resize-result").removeAttribute("src");
      $("resize-dl").hidden = true;
      app.note($("resize-status"), "");
    }
    $("do-resize").disabled = !s.ready;
  });
  // before and after at the same scale (a narrower result must look narrower)
  function fit() {
    const s = app.session;
    if (!s) return;
    const r = $("resize-result");
    const widest = Math.max(s.W, r.naturalWidth || 0);
    const avail = Math.max(100, ($("stage").clientWidth - 60) / 2);
    const k = Math.min(4, avail / widest, (window.innerHeight - 140) / Math.max(s.H, r.naturalHeight || 0));
    $("resize-before").style.width = `${Math.round(s.W * k)}px`;
    if (r.naturalWidth) r.style.width = `${Math.round(r.naturalWidth * k)}px`;
  }
  window.addEventListener("resize", fit);
  $("resize-before").addEventListener("load", fit);
  $("resize-result").addEventListener("load", fit);
  for (const id of ["rw", "rh", "rmethod"]) $(id).addEventListener("change", () => sizes.commit());

  $("do-resize").addEventListener("click", async () => {
    const s = app.session;
    if (!s) return;
    const w = parseInt($("rw").value, 10), h = parseInt($("rh").value, 10);
    const method = $("rmethod").value;
    $("do-resize").disabled = true;
    $("resize-dl").hidden = true;
    app.note($("resize-status"), `${method}: ${s.W}×${s.H} → ${w}×${h}…`);
    try {
      const { job } = await app.post(`/api/sessions/${s.sid}/resize`, {
        width: w, height: h, method, lam: parseFloat($("rlam").value) || 0.2,
        iterations: parseInt($("riter").value, 10) || 30,
      });
      last = job;
      const st = await app.runJob(job, $("resize-job"));
      if (!app.session || app.session.sid !== s.sid) return;  // another image was opened meanwhile
      if (st.state === "cancelled") { app.note($("resize-status"), "resize cancelled", "warn"); return; }
      if (st.state !== "done") throw new Error(st.error || "failed");
      const info = await app.api(`/api/jobs/${job}/info`);
      $("resize-result").src = `/api/jobs/${job}/files/resized.png`;
      $("resize-caption").textContent = `${info.info.method}: ${info.info.width}×${info.info.height} in ${info.info.seconds} s`;
      const a = $("resize-dl");
      a.href = `/api/jobs/${job}/result`;
      a.download = info.info.download_name;
      a.hidden = false;
      app.note($("resize-status"), `done: ${info.info.width}×${info.info.height}`);
    } catch (e) {
      app.note($("resize-status"), `resize failed: ${e.message}`, "error");
    } finally {
      $("do-resize").disabled = !(app.session && app.session.ready);
    }
  });
  window.sempixResize = { get job() { return last; } };
})();
