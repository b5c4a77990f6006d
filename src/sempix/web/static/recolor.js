// sempix recolor page: upload a collection, see palettes / group palette / results, toggle modules,
// edit group colours (every image re-renders).
// Full resolution: the collection is solved and previewed at a working size; "Render full
// resolution" recolours the originals in a background job (progress, cancel, downloads).
"use strict";
(() => {
  const app = window.sempix;
  const $ = (s) => document.querySelector(s);
  let sid = null;
  let state = null;
  let busy = false;
  const R = { renderJob: null };
  window.sempixRecolor = R;

  function setStatus(msg, isError = false) { app.note($("#rc-status"), msg, isError ? "error" : ""); }
  const api = (url, opts) => app.api(url, opts);

  async function waitJob(job) {
    const st = await app.runJob(job, $("#rc-job"), (s) => { if (s.message) setStatus(s.message); });
    if (st.state === "cancelled") throw new Error("cancelled");
    if (st.state !== "done") throw new Error(st.error || "job failed");
  }
  const groupHist = app.tracked("group colours", () => Array.from(document.querySelectorAll(".group-color")).map((x) => x.value),
    (cols) => { document.querySelectorAll(".group-color").forEach((x, k) => { if (cols[k]) x.value = cols[k]; }); onGroupEdit(false); });

  function options() {
    const wb = state ? state.images.map((im, i) => document.querySelectorAll(".wb-mode")[i].value) : "auto";
    const k = $("#opt-k").value;
    const pal = $("#opt-palette").value.trim();
    return {
      wb,
      saliency: $("#opt-saliency").value,
      saliency_model: $("#opt-salmodel").value,
      semantic: $("#opt-semantic").checked,
      names: $("#opt-names").checked ? parseFloat($("#opt-dname").value) || 0.8 : null,
      harmonize: $("#opt-harmonize").checked,
      group_size: k ? parseInt(k, 10) : null,
      palette: pal ? pal.split(/[,;\s]+/).filter(Boolean) : null,
    };
  }

  function render() {
    $("#rc-controls").hidden = false;
    const group = $("#group");
    group.innerHTML = "";
    state.group.forEach((g, k) => {
      const d = document.createElement("label");
      d.className = "gswatch";
      const inp = document.createElement("input");
      inp.type = "color";
      inp.value = g.hex;
      inp.className = "group-color";
      inp.dataset.index = k;
      inp.title = `group colour ${k} (${g.group})`;
      inp.addEventListener("change", onGroupEdit);
      d.appendChild(inp);
      d.appendChild(document.createTextNode(`${k} ${g.group}`));
      group.appendChild(d);
    });
    const box = $("#images");
    const tpl = $("#card-tpl");
    if (box.children.length !== state.images.length) {
      box.innerHTML = "";
      state.images.forEach(() => box.appendChild(tpl.content.cloneNode(true)));
    }
    state.images.forEach((im, i) => {
      const card = box.children[i];
      card.querySelector(".name").textContent = `${i}: ${im.name}`;
      const inImg = card.querySelector("img.input");
      if (inImg.getAttribute("src") !== im.input) inImg.src = im.input;
      if (im.output) {
        card.querySelector("img.output").src = im.output;
        const a = card.querySelector(".download");
        a.href = im.output + "&download=1";
      }
      const pal = card.querySelector(".palette");
      pal.innerHTML = "";
      (im.colors || []).forEach((c) => {
        const d = document.createElement("div");
        d.style.background = c.hex;
        d.style.flex = String(Math.max(c.weight, 0.03));
        d.title = `${c.hex} (${(c.weight * 100).toFixed(0)}%, ${c.group}) → ` +
          (c.mapped_to >= 0 ? `group ${c.mapped_to}` : (c.broken_by_names ? "not mapped (colour naming)" : "not mapped"));
        d.textContent = c.mapped_to >= 0 ? String(c.mapped_to) : "";
        if (c.broken_by_names) d.classList.add("broken");
        pal.appendChild(d);
      });
      card.querySelector(".wb-mode").value = im.wb_mode || "auto";
      card.querySelector(".wb-info").textContent =
        im.wb_delta_e !== undefined ? `ΔE ${im.wb_delta_e} → ${im.wb_applied ? "applied" : "not applied"}` : "";
    });
    const s = state.stats;
    if (s) {
      $("#stats").textContent = `${s.colours} source colours, ${s.associated} mapped, ` +
        `${s.broken_by_names} associations broken by colour naming, white balance on ` +
        `${s.wb_applied.filter(Boolean).length} image(s)` +
        (state.options && state.options.saliency_backend ? `, saliency: ${state.options.saliency_backend}.` : ".");
    }
    document.body.dataset.version = String(state.version);
  }

  async function refresh() {
    state = await api(`/api/recolor/${sid}`);
    render();
  }

  async function solve() {
    if (!sid || busy) return;
    busy = true;
    try {
      setStatus("solving…");
      const { job } = await api(`/api/recolor/${sid}/solve`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(options()),
      });
      await waitJob(job);
      await refresh();
      setStatus("done");
    } catch (e) {
      setStatus(e.message, true);
      // e.g. u2netp not on the server: show the model the current results were made with
      if (state && state.options && state.options.saliency_model) $("#opt-salmodel").value = state.options.saliency_model;
    } finally {
      busy = false;
    }
  }

  async function onGroupEdit(record = true) {
    if (record === true || (record && record.type)) groupHist.commit("group colour");
    const colors = Array.from(document.querySelectorAll(".group-color")).map((x) => x.value);
    try {
      setStatus("recolouring…");
      state = await api(`/api/recolor/${sid}/group`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ colors }),
      });
      render();
      setStatus("group colour changed: all images updated");
    } catch (e) {
      setStatus(e.message, true);
    }
  }

  $("#rc-render").addEventListener("click", async () => {
    if (!sid) return;
    $("#rc-render").disabled = true;
    const box = $("#rc-downloads");
    box.textContent = "";
    try {
      setStatus("rendering every image at full resolution…");
      const { job } = await api(`/api/recolor/${sid}/render`, { method: "POST" });
      R.renderJob = job;
      await waitJob(job);
      const { info, files } = await api(`/api/jobs/${job}/info`);
      for (const f of files) {
        const a = document.createElement("a");
        a.href = `${f.url}?download=1`; a.download = f.name; a.textContent = `${f.name} (${(f.bytes / 1e6).toFixed(1)} MB)`;
        box.appendChild(a);
      }
      setStatus(`full resolution: ${info.images.length} image(s) ready`);
    } catch (e) {
      setStatus(e.message === "cancelled" ? "full-resolution render cancelled" : e.message, e.message !== "cancelled");
    } finally {
      $("#rc-render").disabled = false;
    }
  });

  $("#rc-files").addEventListener("change", async (ev) => {
    const files = Array.from(ev.target.files || []);
    if (files.length === 0) return;
    const fd = new FormData();
    files.forEach((f) => fd.append("files", f, f.name));
    busy = true;
    try {
      setStatus(`uploading ${files.length} image(s)…`);
      $("#images").innerHTML = "";
      state = null;
      const r = await api("/api/recolor/sessions", { method: "POST", body: fd });
      sid = r.session;
      await waitJob(r.job);
      await refresh();
      groupHist.reset();
      setStatus("done");
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      busy = false;
    }
  });
  ["#opt-saliency", "#opt-salmodel", "#opt-semantic", "#opt-names", "#opt-harmonize"].forEach((s) =>
    $(s).addEventListener("change", solve));
  $("#solve").addEventListener("click", solve);
  $("#images").addEventListener("change", (ev) => { if (ev.target.classList.contains("wb-mode")) solve(); });
  $("#reset-group").addEventListener("click", async () => {
    if (!state) return;
    document.querySelectorAll(".group-color").forEach((x, k) => { x.value = state.group[k].solved_hex; });
    await onGroupEdit();
  });
})();
