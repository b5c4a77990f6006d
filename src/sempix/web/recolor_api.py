"""HTTP API of the recolor page (``/recolor``): multi-image colour consistency.

Endpoints (all JSON unless noted; errors are ``{"error": message}`` with a 4xx/5xx status)::

    POST /api/recolor/sessions              multipart ``files`` (2..12 images) -> {session, images, job}
    POST /api/recolor/{sid}/solve           options -> {job}   (analyse + solve + render, with progress)
    GET  /api/recolor/{sid}                 state: palettes, group palette, associations, stats, version
    POST /api/recolor/{sid}/group           {"colors": ["#rrggbb", ...]} -> state (re-render, synchronous)
    GET  /api/recolor/{sid}/input/{i}       input image (PNG, working resolution)
    GET  /api/recolor/{sid}/output/{i}      recoloured image (PNG); ``?download=1`` adds a file name
    DELETE /api/recolor/{sid}

Solve options (JSON body of ``/solve``): ``wb``, ``saliency`` (both|background|off), ``saliency_model``
(``rbd`` built-in, ``u2netp`` learned, ``auto`` = u2netp when its file is on the server, else rbd;
default rbd), ``semantic``, ``names``, ``harmonize``, ``group_size``, ``palette``. The server never
downloads a model for a request: ``u2netp`` without its file (or without onnxruntime) is a 400 with
one line saying where to put it (``sempix models fetch u2netp``). Saliency maps are cached per image
and per backend/model file, so switching the model never reuses another backend's map.

Job progress is polled with the app's ``GET /api/jobs/{job}``. Images are kept at a working
resolution of at most :data:`WORK_PIXELS` pixels each, so edits re-render in well under a second.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from fastapi import APIRouter, File, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sempix.web.common import ApiError, decode_image, get_state, image_response, read_upload

router = APIRouter()

WORK_PIXELS = 600_000
MAX_IMAGES = 12


class RecolorSession:
    """Images of one collection, their analysis caches, the current solution and outputs."""

    def __init__(self, images: list[np.ndarray], names: list[str]):
        self.images = images
        self.names = names
        self.caches: list[dict] = [{} for _ in images]
        self.solution = None
        self.group_lab: np.ndarray | None = None
        self.outputs: list[np.ndarray] | None = None
        self.version = 0
        self.saliency_request = "rbd"  # saliency_model of the current solution, as asked for
        self.lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return int(sum(im.nbytes for im in self.images) * 3)


class SolveParams(BaseModel):
    wb: list[str] | str = "auto"
    saliency: str = "both"
    saliency_model: str = "rbd"
    semantic: bool = False
    names: float | None = 0.8
    harmonize: bool = False
    group_size: int | None = Field(None, ge=1, le=16)
    palette: list[str] | None = None


class GroupParams(BaseModel):
    colors: list[str]


def _work_copy(rgb: np.ndarray) -> np.ndarray:
    from sempix.recolor.core import downsize

    h, w = rgb.shape[:2]
    if h * w <= WORK_PIXELS:
        return np.ascontiguousarray(rgb, np.float32)
    side = int(max(h, w) * (WORK_PIXELS / (h * w)) ** 0.5)
    return downsize(rgb, side)


def _state_json(sid: str, sess: RecolorSession) -> dict:
    from sempix.color import lab_to_srgb, to_hex

    sol = sess.solution
    images = []
    for i, name in enumerate(sess.names):
        h, w = sess.images[i].shape[:2]
        entry = {"name": name, "width": w, "height": h, "input": f"/api/recolor/{sid}/input/{i}",
                 "output": f"/api/recolor/{sid}/output/{i}?v={sess.version}" if sess.outputs else None}
        if sol is not None:
            an = sol.analyses[i]
            entry.update({
                "wb_applied": an.wb_applied, "wb_delta_e": round(an.wb_delta_e, 2),
                "wb_dominance": round(an.wb_dominance, 2), "wb_strength": round(an.wb_strength, 2),
                "wb_mode": sol.options["wb"][i],
                "colors": [{"hex": to_hex(c), "weight": round(float(wt), 4), "group": g,
                            "mapped_to": int(a), "broken_by_names": bool(b)}
                           for c, wt, g, a, b in zip(an.src_rgb, an.weights, an.groups,
                                                     sol.assignments[i], sol.broken[i])],
            })
        images.append(entry)
    group = []
    if sol is not None:
        glab = sess.group_lab if sess.group_lab is not None else sol.group_lab
        grgb = lab_to_srgb(glab, gamut="clip") if len(glab) else np.zeros((0, 3))
        group = [{"hex": to_hex(c), "group": g, "solved_hex": to_hex(s)}
                 for c, g, s in zip(grgb, sol.group_names, sol.group_rgb)]
    opts = None
    if sol is not None:
        # the model file's server path is not sent to the client
        opts = {**{k: v for k, v in sol.options.items() if k != "saliency_model_file"},
                "saliency_model": sess.saliency_request}
    return {"session": sid, "version": sess.version, "images": images, "group": group,
            "options": opts,
            "stats": None if sol is None else sol.stats}


SALIENCY_MODELS = ("rbd", "u2netp", "auto")


def resolve_saliency(p: SolveParams) -> tuple[str | None, Path | None]:
    """Concrete ``(saliency backend, u2netp file)`` for a request, without downloading anything.

    ``(None, None)`` when saliency is not used (off, or semantic grouping). Raises :class:`ApiError`
    400 (one line) for an unknown name or a u2netp model that is not on the server.
    """
    from sempix.errors import ModelUnavailableError
    from sempix.recolor.saliency import resolve_backend, u2netp_path

    if p.saliency_model not in SALIENCY_MODELS:
        raise ApiError(400, f"saliency_model must be one of {', '.join(SALIENCY_MODELS)}, "
                            f"not {p.saliency_model!r}")
    if p.saliency == "off" or p.semantic:
        return None, None
    try:
        if p.saliency_model == "u2netp":
            return "u2netp", u2netp_path(download=False)
        return resolve_backend(p.saliency_model)  # rbd, or auto: local file only (never downloads)
    except ModelUnavailableError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "u2netp model unavailable"
        raise ApiError(400, f"saliency_model u2netp is not available on this server: {msg}") from None


def _solve(sess: RecolorSession, p: SolveParams, backend: str, saliency: tuple[str | None, Path | None],
           progress) -> dict:
    from sempix.errors import InputError
    from sempix.recolor.core import parse_palette, render, solve_collection

    wb = p.wb
    if isinstance(wb, list) and len(wb) != len(sess.images):
        raise InputError(f"wb needs one mode per image ({len(sess.images)})")
    palette = parse_palette(",".join(p.palette)) if p.palette else None
    sal_backend, sal_model = saliency
    with sess.lock:
        sol = solve_collection(sess.images, group_size=p.group_size, wb=wb, saliency=p.saliency,
                               semantic=p.semantic, names=p.names, harmonize=p.harmonize, palette=palette,
                               features=backend, caches=sess.caches, progress=progress,
                               saliency_backend=sal_backend or "rbd", saliency_model=sal_model)
        outs = render(sol, sess.images, progress=progress)
        sess.solution, sess.group_lab, sess.outputs = sol, None, outs
        sess.saliency_request = p.saliency_model
        sess.version += 1
    return {"version": sess.version}


@router.post("/api/recolor/sessions", status_code=201)
async def create_session(request: Request, files: list[UploadFile] | None = File(None)):  # noqa: B008
    state = get_state(request)
    cfg = state.settings
    if not files:
        raise ApiError(400, "no files uploaded (send multipart/form-data with several 'files' fields)")
    if len(files) > MAX_IMAGES:
        raise ApiError(400, f"too many images: at most {MAX_IMAGES}")
    images, names = [], []
    for f in files:
        data = await read_upload(f, cfg.max_upload_bytes)
        name = Path(f.filename or "image").stem[:80] or "image"
        loaded = await run_in_threadpool(decode_image, data, cfg.max_pixels, name)
        images.append(_work_copy(loaded.rgb))
        names.append(name)
    sess = RecolorSession(images, names)
    sid = state.sessions.add(sess, sess.nbytes)
    backend = cfg.backend if cfg.backend.startswith(("ade20k", "segformer")) else "none"
    job = state.jobs.submit(_solve, sess, SolveParams(), backend, ("rbd", None), kind="recolor", owner=sid)
    return {"session": sid, "job": job,
            "images": [{"name": n, "width": im.shape[1], "height": im.shape[0]} for n, im in zip(names, images)]}


@router.post("/api/recolor/{sid}/solve", status_code=202)
def solve(request: Request, sid: str, p: SolveParams):
    state = get_state(request)
    sess = state.sessions.get(sid)
    if p.saliency not in ("both", "background", "off"):
        raise ApiError(400, "saliency must be both, background or off")
    saliency = resolve_saliency(p)  # before the job: a missing model is an immediate one-line 400
    backend = state.settings.backend if state.settings.backend.startswith(("ade20k", "segformer")) else "none"
    job = state.jobs.submit(_solve, sess, p, backend, saliency, kind="recolor", owner=sid)
    return {"job": job}


@router.get("/api/recolor/{sid}")
def session_state(request: Request, sid: str):
    sess = get_state(request).sessions.get(sid)
    return _state_json(sid, sess)


@router.post("/api/recolor/{sid}/group")
def edit_group(request: Request, sid: str, p: GroupParams):
    from sempix.palette import srgb_to_lab
    from sempix.recolor.core import parse_palette, render

    sess = get_state(request).sessions.get(sid)
    if sess.solution is None:
        raise ApiError(409, "the collection is still being solved")
    if len(p.colors) != len(sess.solution.group_lab):
        raise ApiError(400, f"expected {len(sess.solution.group_lab)} group colours, got {len(p.colors)}")
    glab = srgb_to_lab(parse_palette(",".join(p.colors)))
    with sess.lock:
        sess.outputs = render(sess.solution, sess.images, group_lab=glab)
        sess.group_lab = glab
        sess.version += 1
    return _state_json(sid, sess)


def _index(sess: RecolorSession, i: int) -> int:
    if not 0 <= i < len(sess.images):
        raise ApiError(404, f"no image {i} in this collection")
    return i


@router.get("/api/recolor/{sid}/input/{i}")
def input_image(request: Request, sid: str, i: int):
    sess = get_state(request).sessions.get(sid)
    return image_response(sess.images[_index(sess, i)], "png")


@router.get("/api/recolor/{sid}/output/{i}")
def output_image(request: Request, sid: str, i: int, download: int = 0):
    sess = get_state(request).sessions.get(sid)
    i = _index(sess, i)
    if sess.outputs is None:
        raise ApiError(409, "no result yet")
    name = f"{sess.names[i]}-recolored.png" if download else None
    return image_response(sess.outputs[i], "png", filename=name)


@router.delete("/api/recolor/{sid}")
def delete_session(request: Request, sid: str):
    state = get_state(request)
    state.sessions.get(sid)
    state.sessions.remove(sid)
    return {"deleted": sid}
