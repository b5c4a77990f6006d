// Palette & harmony panel: palette swatches, the best hue template on a wheel, harmonization
// (strength slider -> preview job, previous one cancelled), before/after, full-resolution download.
"use strict";
(() => {
  const app = window.sempix, $ = app.$;
  const P = { palette: null, job: null, fullJob: null, running: null };
  window.sempixPalette = P;
  const opts = app.tracked("harmonize settings", () => ({ s: $("har-strength").value, m: $("har-method").value }),
    (v) => { $("har-strength").value = v.s; $("har-method").value = v.m; showStrength(); preview(); });

  function showStrength() { $("har-strength-out").textContent = parseFloat($("har-strength").value).toFixed(2); }

  app.onSession((s) => {
    const ok = !!(s && s.ready);
    $("pal-run").disabled = !ok; $("har-run").disabled = !ok; $("har-full").disabled = !ok;
    if (s && !s.ready) {
      P.palette = null;
      $("pal-swatches").textContent = ""; $("har-target").textContent = "";
      $("har-before").src = `/api/sessions/${s.sid}/image?preview=1`;
      $("har-after").removeAttribute("src");
      $("har-dl").hidden = true;
      app.note($("pal-harmony"), ""); app.note($("har-status"), "");
      drawWheel();
    }
  });

  function swatches(box, colors) {
    box.textContent = "";
    for (const c of colors) {
      const d = document.createElement("div");
      d.className = "swatch"; d.style.background = c.hex;
      d.title = `${c.hex}${c.name ? " " + c.name : ""}${c.weight !== null && c.weight !== undefined ? ` ${(c.weight * 100).toFixed(0)}%` : ""}`;
      d.textContent = c.name || c.hex;
      box.appendChild(d);
    }
  }

  function drawWheel(target) {
    const c = $("pal-wheel"), cx = c.getContext("2d");
    const W = c.width, R = W / 2 - 6, C = W / 2;
    cx.clearRect(0, 0, W, W);
    for (let a = 0; a < 360; a += 2) { // hue ring (HSV hue, 0 = red at the top, clockwise)
      cx.beginPath();
      cx.strokeStyle = `hsl(${a}, 90%, 55%)`; cx.lineWidth = 10;
      cx.arc(C, C, R, (a - 90 - 1.2) * Math.PI / 180, (a - 90 + 1.2) * Math.PI / 180);
      cx.stroke();
    }
    if (!P.palette) return;
    const h = P.palette.harmony;
    cx.fillStyle = "rgba(255,255,255,0.16)"; cx.strokeStyle = "rgba(255,255,255,0.7)"; cx.lineWidth = 1;
    for (const s of h.sectors) { // template sectors
      const a0 = (s.center - s.width / 2 - 90) * Math.PI / 180, a1 = (s.center + s.width / 2 - 90) * Math.PI / 180;
      cx.beginPath(); cx.moveTo(C, C); cx.arc(C, C, R - 6, a0, a1); cx.closePath(); cx.fill(); cx.stroke();
    }
    const dot = (col, filled) => {
      const a = (col.hue - 90) * Math.PI / 180, r = (R - 8) * col.saturation;
      cx.beginPath(); cx.arc(C + r * Math.cos(a), C + r * Math.sin(a), 7, 0, 2 * Math.PI);
      cx.fillStyle = col.hex; cx.strokeStyle = filled ? "#000" : "#fff"; cx.lineWidth = 2;
      cx.fill(); cx.stroke();
    };
    for (const col of P.palette.colors) dot(col, true);
    if (target) for (const col of target) dot(col, false);
    cx.fillStyle = "#ddd"; cx.font = "12px system-ui"; cx.textAlign = "center";
    cx.fillText(`template ${h.template}`, C, C + 4);
  }

  async function extract() {
    const s = app.session;
    if (!s) return;
    app.note($("pal-harmony"), "extracting palette…");
    try {
      const k = $("pal-k").value;
      P.palette = await app.api(`/api/sessions/${s.sid}/palette${k ? `?k=${k}` : ""}`);
      swatches($("pal-swatches"), P.palette.colors);
      drawWheel();
      const h = P.palette.harmony;
      app.note($("pal-harmony"), `best template ${h.template} at ${h.alpha}°: F ${h.f_score} per pixel, ` +
        `${h.pit.toFixed(0)}% of pixels inside`);
    } catch (e) { app.note($("pal-harmony"), `palette failed: ${e.message}`, "error"); }
  }

  async function run(full) {
    const s = app.session;
    if (!s) return null;
    if (!full && P.running) fetch(`/api/jobs/${P.running}/cancel`, { method: "POST" });
    const body = { strength: parseFloat($("har-strength").value), method: $("har-method").value, full };
    const k = $("pal-k").value; if (k) body.k = parseInt(k, 10);
    const { job } = await app.post(`/api/sessions/${s.sid}/harmonize`, body);
    if (!full) P.running = job;
    const st = await app.runJob(job, $("har-job"));
    if (!full && P.running === job) P.running = null;
    if (!app.session || app.session.sid !== s.sid) return null;  // another image was opened
    if (st.state === "cancelled") return null;
    if (st.state !== "done") throw new Error(st.error || "failed");
    const { info } = await app.api(`/api/jobs/${job}/info`);
    return { job, info };
  }

  async function preview() {
    if (!app.session || !app.session.ready) return;
    app.note($("har-status"), "harmonizing (preview)…");
    try {
      if (!P.palette) await extract();
      const r = await run(false);
      if (!r) return;
      P.job = r.job;
      const { info } = r;
      $("har-after").src = `/api/jobs/${r.job}/files/harmonized.png`;
      $("har-before-cap").textContent = `before: template ${info.before.template}, F ${info.before.f_score}`;
      $("har-after-cap").textContent = `after (strength ${info.strength}): template ${info.after.template}, F ${info.after.f_score}`;
      swatches($("har-target"), info.target);
      drawWheel(info.target);
      if (info.worse) {
        app.note($("har-status"), `warning: less harmonious than the input by its own measure (F ${info.before.f_score} → ` +
          `${info.after.f_score}); lower the strength or keep the original`, "warn");
      } else {
        app.note($("har-status"), `F ${info.before.f_score} → ${info.after.f_score}; names kept ${(info.names_kept * 100).toFixed(0)}%`);
      }
    } catch (e) { app.note($("har-status"), `harmonize failed: ${e.message}`, "error"); }
  }

  $("pal-run").addEventListener("click", extract);
  $("har-run").addEventListener("click", preview);
  $("har-strength").addEventListener("input", showStrength);
  $("har-strength").addEventListener("change", () => { opts.commit(`strength ${$("har-strength").value}`); preview(); });
  $("har-method").addEventListener("change", () => { opts.commit(`method ${$("har-method").value}`); preview(); });
  $("har-full").addEventListener("click", async () => {
    $("har-full").disabled = true;
    app.note($("har-status"), "harmonizing at full resolution…");
    try {
      const r = await run(true);
      if (!r) { app.note($("har-status"), "cancelled", "warn"); return; }
      const a = $("har-dl");
      a.href = `/api/jobs/${r.job}/result`; a.download = r.info.download_name; a.hidden = false;
      P.fullJob = r.job;
      app.note($("har-status"), `full resolution ${r.info.width}×${r.info.height} ready (${r.info.seconds} s)` +
        (r.info.worse ? " — warning: less harmonious than the input by its own measure" : ""), r.info.worse ? "warn" : "");
    } catch (e) { app.note($("har-status"), `harmonize failed: ${e.message}`, "error"); }
    finally { $("har-full").disabled = !(app.session && app.session.ready); }
  });
  showStrength();
  drawWheel();
})();
