"""Resize panel: semantic seam carving and Deep Network Resizing (DNR) as background jobs.

``POST /api/sessions/{sid}/resize``  ``{width, height, method: carve|dnr|scale, lam, iterations}``
-> 202 ``{job}``. The job's result (``GET /api/jobs/{job}/result`` or ``/files/resized.png``) is the
resized PNG; ``/api/jobs/{job}/info`` has the size, method and seconds. ``dnr`` needs the VGG
weights on the server (never downloaded for a request: 503 with the fetch command otherwise).
"""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sempix.errors import InputError, MissingDependencyError, ModelUnavailableError, TooLargeError
from sempix.web.common import encode_image, get_state
from sempix.web.routes.core import image_session
from sempix.web.session import JobOutput, resize_float

router = APIRouter()

METHODS = ("carve", "dnr", "scale")


class ResizeParams(BaseModel):
    """Body of /resize."""

    width: int = Field(..., ge=8, le=20000)
    height: int = Field(..., ge=8, le=20000)
    lam: float = Field(0.2, ge=0.0, le=1.0)
    method: str = Field("carve", pattern="^(carve|dnr|scale)$")
    iterations: int = Field(30, ge=1, le=200)


def carve_available() -> bool:
    try:
        from sempix.carve import carve  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def vgg_available() -> bool:
    try:
        from sempix.models import is_available

        return is_available("vgg19") or is_available("vgg19-normalised-relu3_1")
    except Exception:  # noqa: BLE001
        return False


def resize_bytes(shape: tuple[int, int], target: tuple[int, int], method: str) -> int:
    H, W = shape
    per_px = {"carve": 120, "dnr": 600, "scale": 30}[method]
    return int(max(H * W, target[0] * target[1]) * per_px + 100_000_000)


def _run(state, sid: str, sess, p: ResizeParams, progress) -> JobOutput:
    H, W = sess.shape
    t0 = time.perf_counter()
    with state.sessions.reserve(
        resize_bytes((H, W), (p.height, p.width), p.method), sid, "this resize"
    ):
        if p.method == "carve":
            from sempix.carve import FEATURE_DIM, CarveOptions, carve, reduce_features

            feats = sess.fm.features if sess.fm is not None else None
            if feats is not None:  # working resolution: reduce there, then upsample
                feats = reduce_features(feats, FEATURE_DIM)
                if feats.shape[:2] != (H, W):
                    feats = resize_float(feats, (H, W))
            out = carve(
                sess.image,
                width=p.width,
                height=p.height,
                features=feats,
                options=CarveOptions(lam=p.lam),
                progress=progress,
            ).image
        else:
            from sempix.retarget import retarget

            semantic = sess.fm is not None and bool(getattr(sess.fm, "semantic", False))
            kw = {"iterations": p.iterations} if p.method == "dnr" else {}
            res = retarget(
                sess.image,
                p.width,
                p.height,
                method=p.method,
                features=sess.fm.backend if semantic else None,
                protect="auto" if semantic else None,
                progress=progress,
                **kw,
            )
            out = res.image
        png = encode_image(np.clip(out, 0.0, 1.0), "png")
    name = f"{sess.name}-{p.width}x{p.height}.png"
    return JobOutput(
        {"resized.png": (png, "image/png")},
        {
            "main": "resized.png",
            "download_name": name,
            "width": int(out.shape[1]),
            "height": int(out.shape[0]),
            "method": p.method,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )


@router.post("/api/sessions/{sid}/resize")
def resize(request: Request, sid: str, p: ResizeParams):
    state = get_state(request)
    sess = image_session(request, sid)
    if p.method == "carve" and not carve_available():
        raise MissingDependencyError("semantic carving (sempix.carve) is not installed")
    if p.method == "dnr" and not vgg_available():
        raise ModelUnavailableError(
            "DNR needs the VGG-19 weights on the server: run "
            "'sempix models fetch vgg19-normalised-relu3_1'",
        )
    sess.require_ready()
    H, W = sess.shape
    if p.width > 2 * W or p.height > 2 * H:
        raise InputError(f"target {p.width}x{p.height} is more than twice the {W}x{H} image")
    if p.width * p.height > state.settings.max_pixels:
        raise TooLargeError(f"target {p.width}x{p.height} is larger than this server accepts")
    job = state.jobs.submit(_run, state, sid, sess, p, kind="resize", owner=sid)
    return JSONResponse({"job": job}, status_code=202)
