"""Palette & harmonize panel: palette swatches, the best hue template, harmonization jobs.

=======================================  ===========================================================
``GET  /api/sessions/{sid}/palette``     ``?k=`` -> palette (hex, weight, basic name, hue,
                                         saturation), the image's best Cohen-Or hue template (name,
                                         rotation, sectors, F per pixel, PIT) - computed on a copy
                                         of at most :data:`PALETTE_PIXELS` pixels
``POST /api/sessions/{sid}/harmonize``   ``{strength 0..1, method: names|cohen-or, k, full}`` -> 202
                                         ``{job}``; files ``harmonized.png``; info: F before/after,
                                         target colours, ``worse`` (the result is less harmonious
                                         than the input by its own measure: the page says so)
=======================================  ===========================================================

Preview jobs (``full: false``, what the strength slider starts) work at :data:`PALETTE_PIXELS`;
``full: true`` harmonizes the full-resolution image for the download (inside a memory reservation).
"""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sempix.errors import InputError, ModelUnavailableError
from sempix.web.common import encode_image, get_state
from sempix.web.routes.core import image_session
from sempix.web.session import JobOutput, downscale, fit_shape

router = APIRouter()

PALETTE_PIXELS = 250_000


def names_available() -> bool:
    try:
        from sempix.models import is_available

        return is_available("w2c")
    except Exception:  # noqa: BLE001
        return False


class HarmonizeParams(BaseModel):
    strength: float = Field(1.0, ge=0.0, le=1.0)
    method: str = Field("names", pattern="^(names|cohen-or)$")
    k: int | None = Field(None, ge=1, le=16)
    full: bool = False


def _small(sess) -> np.ndarray:
    key = "palette_image"
    if key not in sess.cache:
        sess.cache[key] = downscale(sess.preview, fit_shape(sess.preview_shape, PALETTE_PIXELS))
    return sess.cache[key]


def _hex(c: np.ndarray) -> str:
    r, g, b = (int(v) for v in np.rint(np.clip(np.asarray(c, np.float64), 0.0, 1.0) * 255))
    return f"#{r:02x}{g:02x}{b:02x}"


def _swatches(rgb: np.ndarray, weights: np.ndarray | None, names: list[str] | None) -> list[dict]:
    from sempix.palette import srgb_to_hsv

    hsv = srgb_to_hsv(np.asarray(rgb, np.float32).reshape(-1, 3))
    out = []
    for i, c in enumerate(np.asarray(rgb, np.float32).reshape(-1, 3)):
        out.append(
            {
                "hex": _hex(c),
                "weight": None if weights is None else round(float(weights[i]), 4),
                "name": names[i] if names else None,
                "hue": round(float(hsv[i, 0]), 2),
                "saturation": round(float(hsv[i, 1]), 4),
                "value": round(float(hsv[i, 2]), 4),
            }
        )
    return out


def _harmony(img: np.ndarray) -> dict:
    from sempix.palette import harmony_metrics

    s = harmony_metrics(img)
    return {
        "template": s.template,
        "alpha": round(float(s.alpha), 2),
        "f_score": round(float(s.f_score), 4),
        "pit": round(float(s.pit), 2),
        "mits": round(float(s.mits), 4),
        "sectors": [
            {"center": round(float(c), 2), "width": float(w)} for c, w in s.absolute_sectors()
        ],
    }


@router.get("/api/sessions/{sid}/palette")
def palette(request: Request, sid: str, k: int | None = None):
    from sempix.palette import extract_palette

    sess = image_session(request, sid)
    if k is not None and not 1 <= k <= 16:
        raise InputError("k must be between 1 and 16")
    img = _small(sess)
    key = f"palette:{k}"
    if key not in sess.cache:
        pal = extract_palette(img, k=k)
        names = None
        if names_available():
            from sempix.palette import color_names

            names = list(color_names(pal.rgb))
        sess.cache[key] = {
            "colors": _swatches(pal.rgb, pal.weights, names),
            "harmony": _harmony(img),
            "names": names is not None,
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
        }
    return sess.cache[key]


def _run(state, sid: str, sess, p: HarmonizeParams, progress) -> JobOutput:
    from sempix.palette import harmonize_image

    t0 = time.perf_counter()
    img = sess.image if p.full else _small(sess)
    H, W = img.shape[:2]
    with state.sessions.reserve(H * W * 80 + 50_000_000, sid, "harmonization"):
        res = harmonize_image(img, method=p.method, k=p.k, strength=p.strength, progress=progress)
        out = np.clip(res.image, 0.0, 1.0)
        before, after = _harmony(img), _harmony(out)
        png = encode_image(out, "png")
    worse = after["f_score"] > before["f_score"] + 1e-6
    info = {
        "main": "harmonized.png",
        "download_name": f"{sess.name}-harmonized.png",
        "width": W,
        "height": H,
        "full": p.full,
        "strength": p.strength,
        "method": p.method,
        "before": before,
        "after": after,
        "worse": worse,
        "source": _swatches(res.source.rgb, res.source.weights, res.source_names),
        "target": _swatches(res.target_rgb, None, res.target_names),
        "names_kept": round(res.names_kept, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return JobOutput({"harmonized.png": (png, "image/png")}, info)


@router.post("/api/sessions/{sid}/harmonize")
def harmonize(request: Request, sid: str, p: HarmonizeParams):
    state = get_state(request)
    sess = image_session(request, sid)
    if not names_available():
        raise ModelUnavailableError(
            "harmonize needs the colour-name model (w2c) on the server: run "
            "'sempix models fetch w2c'",
        )
    job = state.jobs.submit(_run, state, sid, sess, p, kind="harmonize", owner=sid)
    return JSONResponse({"job": job}, status_code=202)
