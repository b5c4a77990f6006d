"""Soft layers panel: semantic soft segmentation as a background job, layers, PSD/ORA/PNG downloads.

``POST /api/sessions/{sid}/softseg`` ``{layers: 2..12}`` -> 202 ``{job}``. The job segments the
image at most ``Settings.softseg_pixels`` large (the relaxed sparsification runs at that size) and
returns files (``/api/jobs/{job}/files/NAME``): ``layer_K.png`` (RGBA: layer colours + soft alpha),
``layers_vis.png``, ``recomposed.png``, ``layers.ora`` (OpenRaster), ``layers.zip`` (the PNGs and
``alphas.npy``) and ``layers.psd`` when :func:`psd_writer` finds the PSD writer of
:mod:`sempix.softseg.export` (``psd_bytes``). ``/api/jobs/{job}/info`` lists the layers (mean
colour, area) and the available formats.
"""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sempix.web.common import encode_image, get_state
from sempix.web.routes.core import image_session
from sempix.web.session import JobOutput, downscale, fit_shape

router = APIRouter()


class SoftSegParams(BaseModel):
    layers: int = Field(5, ge=2, le=12)


def psd_writer():
    """The PSD hook: ``sempix.softseg.export.psd_bytes(layers_rgba, names, merged)`` or None."""
    try:
        from sempix.softseg import export
    except ImportError:  # pragma: no cover
        return None
    return getattr(export, "psd_bytes", None)


def _run(state, sid: str, sess, p: SoftSegParams, progress) -> JobOutput:
    from sempix.softseg import soft_segment
    from sempix.softseg.export import ora_bytes, stack_alphas, visualize_layers

    t0 = time.perf_counter()
    shape = fit_shape(sess.shape, state.settings.softseg_pixels)
    per_px = 4000  # eigenvectors (100 x 8 B), sparse Laplacians, K layers x colours, solver state
    with state.sessions.reserve(
        shape[0] * shape[1] * per_px + 100_000_000, sid, "soft segmentation"
    ):
        img = downscale(sess.image, shape)
        backend = sess.fm.backend if sess.fm is not None else sess.backend
        res = soft_segment(img, backend=backend, n_layers=p.layers, progress=progress)
        K = res.n_layers
        files: dict[str, tuple[bytes, str]] = {}
        layers = []
        rgba = [res.layer_rgba(k) for k in range(K)]
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_STORED) as z:
            for k in range(K):
                png = encode_image(rgba[k][..., :3], "png", alpha=rgba[k][..., 3])
                files[f"layer_{k}.png"] = (png, "image/png")
                z.writestr(f"layer_{k}.png", png)
                a = res.alphas[..., k]
                w = float(a.sum())
                mean = (rgba[k][..., :3] * a[..., None]).sum((0, 1)) / max(w, 1e-6)
                layers.append(
                    {
                        "index": k,
                        "name": f"layer {k}",
                        "url": f"layer_{k}.png",
                        "area": round(w / a.size, 4),
                        "color": "#{:02x}{:02x}{:02x}".format(
                            *(round(c * 255) for c in np.clip(mean, 0, 1))
                        ),
                    }
                )
            npy = io.BytesIO()
            np.save(npy, res.alphas.astype(np.float32))
            z.writestr("alphas.npy", npy.getvalue())
        merged = res.recompose() if res.colors is not None else visualize_layers(res.alphas)
        files["recomposed.png"] = (encode_image(np.clip(merged, 0, 1), "png"), "image/png")
        files["layers_vis.png"] = (encode_image(visualize_layers(res.alphas), "png"), "image/png")
        files["layers.zip"] = (zbuf.getvalue(), "application/zip")
        beta = stack_alphas(res.alphas)
        stack = [np.dstack([rgba[k][..., :3], beta[..., k]]) for k in range(K)]
        names = [f"layer {k}" for k in range(K)]
        files["layers.ora"] = (ora_bytes(stack, names, merged), "image/openraster")
        formats = ["zip", "ora"]
        writer = psd_writer()
        if writer is not None:
            files["layers.psd"] = (writer(stack, names, merged), "image/vnd.adobe.photoshop")
            formats.insert(0, "psd")
    err = float(np.abs(merged - img).mean()) if res.colors is not None else None
    return JobOutput(
        files,
        {
            "main": "recomposed.png",
            "layers": layers,
            "width": int(shape[1]),
            "height": int(shape[0]),
            "formats": formats,
            "recompose_error": None if err is None else round(err, 5),
            "seconds": round(time.perf_counter() - t0, 3),
            "download_name": f"{sess.name}-layers",
        },
    )


@router.post("/api/sessions/{sid}/softseg")
def softseg(request: Request, sid: str, p: SoftSegParams):
    state = get_state(request)
    sess = image_session(request, sid)
    sess.require_ready()
    job = state.jobs.submit(_run, state, sid, sess, p, kind="softseg", owner=sid)
    return JSONResponse({"job": job}, status_code=202)
