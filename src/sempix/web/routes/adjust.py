"""Style panel: apply a trained SA-AdjustNet style (``sempix adjust train``) to the session photo,
show its adjustment maps, re-assign regions to presets by clicking, render at full resolution.

=============================================  =====================================================
``GET  /api/adjust/styles``                    style files offered by the server (``*.pt`` in
                                               ``Settings.adjust_styles_dir``; empty when unset)
``POST /api/sessions/{sid}/adjust/style``      JSON ``{name}``: load one of those files
``POST /api/sessions/{sid}/adjust/upload``     multipart ``file``: load an uploaded style file
``GET  /api/sessions/{sid}/adjust/style``      the loaded style's summary (404 when none)
``POST /api/sessions/{sid}/adjust/preview``    ``{edits}`` -> PNG: the style at full strength on the
                                               working copy (the page blends it with the photo by
                                               the strength slider: the mapping is linear in it)
``POST /api/sessions/{sid}/adjust/maps``       ``{edits}`` -> PNG: the adjustment maps coloured by
                                               preset (``X-Shares``: area of each preset, JSON)
``POST /api/sessions/{sid}/adjust/render``     ``{edits, strength, format}`` -> 202 ``{job}``: the
                                               full-resolution result (``/api/jobs/{job}/result``)
=============================================  =====================================================

A style file is a ``sempix.train`` checkpoint whose ``config.model.kind`` is ``"sempix-adjust/1"``
(read with ``weights_only=True``: it cannot run code); anything else is a 400. The style lives
with the image session (its bytes count in the session's memory budget).

Edits (personalisation, the ``--map N=mask`` of the CLI): ``[{x, y, preset, lam, tau}]`` in image
pixels; each click builds the connected range mask of :func:`sempix.mask.range_mask` at the
session's preview resolution, and that region's adjustment map is set to ``preset`` (1..K); later
edits paint over earlier ones. Only styles trained with adjustment maps (``huber-mt-s``) take edits.
Interactive requests work on a copy of at most :data:`WORK_PIXELS` pixels.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sempix.errors import ConflictError, InputError, NotFoundError
from sempix.web.common import encode_image, get_state, read_upload
from sempix.web.routes.core import image_session
from sempix.web.session import ImageSession, JobOutput, downscale, fit_shape

router = APIRouter()

#: interactive previews (style, maps) are computed at most this large
WORK_PIXELS = 300_000
MAX_EDITS = 32
#: preset colours of the map overlay (K <= 8 in practice; cycled beyond)
PRESET_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#ffe119", "#f58231", "#911eb4", "#42d4f4",
                 "#f032e6")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,120}\.pt$")


class Edit(BaseModel):
    x: float
    y: float
    preset: int = Field(..., ge=1, le=64)
    lam: float = Field(0.8, ge=0.0, le=1.0)
    tau: float = Field(0.3, ge=0.0, le=10.0)


class AdjustParams(BaseModel):
    edits: list[Edit] = Field(default_factory=list, max_length=MAX_EDITS)
    strength: float = Field(1.0, ge=0.0, le=2.0)
    format: str = Field("jpeg", pattern="^(png|jpeg|jpg)$")


class StyleName(BaseModel):
    name: str = Field(..., min_length=1, max_length=200)


class _Style:
    """A loaded style attached to an image session (plus the per-click region cache)."""

    def __init__(self, model: Any, cfg: Any, ck: dict, name: str, nbytes: int) -> None:
        self.model, self.cfg, self.ck, self.name, self.nbytes = model, cfg, ck, name, nbytes
        self.lock = threading.Lock()
        self.regions: dict[tuple, np.ndarray] = {}

    def info(self) -> dict:
        mc = self.ck["config"]["model"]
        data = mc.get("data") or {}
        k = int(self.cfg.k) if self.cfg.adjustment_map else 0
        return {
            "name": self.name,
            "variant": self.cfg.variant,
            "adjustment_maps": bool(self.cfg.adjustment_map),
            "k": k,
            "colors": [PRESET_COLORS[i % len(PRESET_COLORS)] for i in range(k)],
            "effect": data.get("effect"),
            "trained_pairs": len(data.get("train") or []),
            "steps": int(self.ck.get("step", 0)),
            "size": int(mc["settings"]["size"]),
        }


def _styles_dir(request: Request) -> Path | None:
    d = get_state(request).settings.adjust_styles_dir
    return Path(d).expanduser() if d else None


def _style(sess: ImageSession) -> _Style:
    st = sess.cache.get("adjust")
    if st is None:
        raise NotFoundError("no style loaded: load a style file first", code="no_style")
    return st


def _attach(request: Request, sid: str, sess: ImageSession, data: bytes, name: str) -> dict:
    from sempix.adjust import load_style

    model, cfg, ck = load_style(data, name=name)
    st = _Style(model, cfg, ck, name, len(data))
    sess.cache["adjust"] = st
    get_state(request).sessions.charge(sid, "adjust:style", len(data) * 2)
    return st.info()


@router.get("/api/adjust/styles")
def list_styles(request: Request):
    d = _styles_dir(request)
    names = []
    if d is not None and d.is_dir():
        names = sorted(p.name for p in d.glob("*.pt") if p.is_file() and _NAME.match(p.name))
    return {"styles": names, "dir_configured": d is not None}


@router.post("/api/sessions/{sid}/adjust/style")
def load_named(request: Request, sid: str, p: StyleName):
    sess = image_session(request, sid)
    d = _styles_dir(request)
    if d is None:
        raise InputError("this server offers no style files (start it with --styles-dir)")
    if not _NAME.match(p.name):
        raise InputError(f"{p.name!r}: not a style file name (NAME.pt, no folders)")
    path = d / p.name
    if not path.is_file():
        raise NotFoundError(f"no style file {p.name!r} on this server")
    cap = get_state(request).settings.max_upload_bytes
    if path.stat().st_size > cap:
        raise InputError(f"{p.name}: larger than the upload limit ({cap} bytes)")
    return _attach(request, sid, sess, path.read_bytes(), p.name)


@router.post("/api/sessions/{sid}/adjust/upload")
async def upload_style(request: Request, sid: str, file: UploadFile | None = File(None)):  # noqa: B008
    sess = image_session(request, sid)
    if file is None:
        raise InputError("no file uploaded (send multipart/form-data with a 'file' field)")
    data = await read_upload(file, get_state(request).settings.max_upload_bytes)
    name = Path(file.filename or "style.pt").name[:120] or "style.pt"
    return await run_in_threadpool(_attach, request, sid, sess, data, name)


@router.get("/api/sessions/{sid}/adjust/style")
def style_info(request: Request, sid: str):
    return _style(image_session(request, sid)).info()


# --------------------------------------------------------------------------------- computation


def _work(sess: ImageSession) -> np.ndarray:
    """The session's interactive working copy (cached)."""
    key = "adjust:work"
    if key not in sess.cache:
        sess.cache[key] = downscale(sess.preview, fit_shape(sess.preview_shape, WORK_PIXELS))
    return sess.cache[key]


def _region(sess: ImageSession, st: _Style, e: Edit) -> np.ndarray:
    """The connected range mask of one click, at preview resolution (cached per click)."""
    from sempix.mask import range_mask

    H, W = sess.shape
    if not (np.isfinite(e.x) and np.isfinite(e.y) and 0 <= e.x < W and 0 <= e.y < H):
        raise InputError(f"point ({e.x}, {e.y}) is outside the {W}x{H} image")
    ph, pw = sess.preview_shape
    px = min(pw - 1, int((int(e.x) + 0.5) * pw / W))
    py = min(ph - 1, int((int(e.y) + 0.5) * ph / H))
    key = (px, py, round(e.lam, 4), round(e.tau, 4))
    m = st.regions.get(key)
    if m is None:
        with sess.lock:
            res = range_mask(sess.preview, [(px, py)], lam=e.lam, tau=e.tau,
                             source=sess.source, connected=True)
        m = np.asarray(getattr(res, "mask", res), np.float32)
        if len(st.regions) >= 4 * MAX_EDITS:
            st.regions.pop(next(iter(st.regions)))
        st.regions[key] = m
    return m


def _maps(sess: ImageSession, st: _Style, edits: list[Edit]) -> list[tuple[int, np.ndarray]]:
    if not edits:
        return []
    if not st.cfg.adjustment_map:
        raise InputError("this style has no adjustment maps to edit (train it with "
                         "--variant huber-mt-s)")
    sess.require_ready()  # the range masks use the session's semantic features
    for e in edits:
        if e.preset > st.cfg.k:
            raise InputError(f"preset {e.preset}: this style has presets 1..{st.cfg.k}")
    return [(e.preset, _region(sess, st, e)) for e in edits]


def _png(img: np.ndarray, headers: dict | None = None) -> Response:
    h = {"Cache-Control": "no-store", **(headers or {})}
    return Response(encode_image(img, "png"), media_type="image/png", headers=h)


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255.0


def maps_overlay(probs: np.ndarray) -> np.ndarray:
    """(H, W, K) preset probabilities -> (H, W, 3) colours ``sum_k p_k colour_k``."""
    k = probs.shape[2]
    cols = np.stack([_hex(PRESET_COLORS[i % len(PRESET_COLORS)]) for i in range(k)])
    return np.clip(probs @ cols, 0, 1).astype(np.float32)


@router.post("/api/sessions/{sid}/adjust/preview")
def preview(request: Request, sid: str, p: AdjustParams):
    from sempix.adjust import adjust_image

    sess = image_session(request, sid)
    st = _style(sess)
    maps = _maps(sess, st, p.edits)
    work = _work(sess)
    t0 = time.perf_counter()
    with st.lock:
        out = adjust_image(st.model, st.ck, work, maps=maps or None)
    ms = f"{(time.perf_counter() - t0) * 1000:.0f}"
    return _png(out, {"X-Width": str(work.shape[1]), "X-Height": str(work.shape[0]),
                      "X-Milliseconds": ms})


@router.post("/api/sessions/{sid}/adjust/maps")
def maps_png(request: Request, sid: str, p: AdjustParams):
    from sempix.adjust import preset_maps

    sess = image_session(request, sid)
    st = _style(sess)
    if not st.cfg.adjustment_map:
        raise ConflictError(
            "this style has no adjustment maps (trained without --variant huber-mt-s)",
            code="no_maps",
        )
    maps = _maps(sess, st, p.edits)
    work = _work(sess)
    with st.lock:
        probs = preset_maps(st.model, st.ck, work, maps=maps or None)
    shares = [round(float(v), 4) for v in probs.reshape(-1, probs.shape[2]).mean(0)]
    return _png(maps_overlay(probs), {"X-Shares": json.dumps(shares)})


def _render(state, sid: str, sess: ImageSession, st: _Style, maps, p: AdjustParams,
            progress) -> JobOutput:
    from sempix.adjust import adjust_image

    t0 = time.perf_counter()
    H, W = sess.shape
    fmt = "jpeg" if p.format in ("jpg", "jpeg") else "png"
    with state.sessions.reserve(H * W * 48 + 50_000_000, sid, "this render"):
        with st.lock:
            out = adjust_image(st.model, st.ck, sess.image, strength=p.strength,
                               maps=maps or None, progress=progress)
        body = encode_image(out, fmt, quality=95)
    ext = "jpg" if fmt == "jpeg" else "png"
    name = f"adjusted.{ext}"
    return JobOutput({name: (body, f"image/{fmt}")},
                     {"main": name, "width": W, "height": H, "style": st.name,
                      "strength": p.strength, "seconds": round(time.perf_counter() - t0, 3),
                      "download_name": f"{sess.name}-{Path(st.name).stem}.{ext}"})


@router.post("/api/sessions/{sid}/adjust/render")
def render(request: Request, sid: str, p: AdjustParams):
    state = get_state(request)
    sess = image_session(request, sid)
    st = _style(sess)
    maps = _maps(sess, st, p.edits)  # bad edits fail here, not inside the job
    job = state.jobs.submit(_render, state, sid, sess, st, maps, p, kind="adjust", owner=sid)
    return JSONResponse({"job": job}, status_code=202)


__all__ = ["PRESET_COLORS", "WORK_PIXELS", "AdjustParams", "Edit", "maps_overlay", "router"]
