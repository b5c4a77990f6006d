"""HTTP API of the recolor page (``/recolor``): multi-image colour consistency.

Endpoints (all JSON unless noted; errors are ``{"error": message}`` with a 4xx/5xx status)::

    POST /api/recolor/sessions          multipart ``files`` (2..12 images)
                                        -> {session, images, job}
    POST /api/recolor/{sid}/solve       options -> {job} (analyse + solve + render, progress)
    GET  /api/recolor/{sid}             state: palettes, group palette, associations, stats,
                                        version
    POST /api/recolor/{sid}/group       {"colors": ["#rrggbb", ...]} -> state (re-render,
                                        synchronous)
    GET  /api/recolor/{sid}/input/{i}   input image (PNG, working resolution)
    GET  /api/recolor/{sid}/output/{i}  recoloured preview (PNG, working resolution)
    POST /api/recolor/{sid}/render      -> {job}: every image recoloured at FULL resolution in a
                                        background job (files NAME-recolored.png, recolored.zip)
    DELETE /api/recolor/{sid}

Solve options (JSON body of ``/solve``): ``wb``, ``saliency`` (both|background|off),
``saliency_model`` (``rbd`` built-in, ``u2netp`` learned, ``auto`` = u2netp when its file is on the
server, else rbd; default rbd), ``semantic``, ``names``, ``harmonize``, ``group_size``, ``palette``.
The server never downloads a model for a request: ``u2netp`` without its file (or without
onnxruntime) is a 400 with one line saying where to put it (``sempix models fetch u2netp``).
Saliency maps are cached per image and per backend/model file, so switching the model never reuses
another backend's map.

Job progress: ``GET /api/jobs/{job}`` or the server-sent events of ``/api/jobs/{job}/events``. The
collection is analysed, solved and previewed at a working resolution of at most
``Settings.recolor_work_pixels`` pixels per image (edits re-render in well under a second); the
originals are kept (counted in the memory budget) and ``/render`` recolours them at full resolution
with the same solution (the transforms are per-image colour LUTs, independent of the size).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from fastapi import APIRouter, File, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sempix.errors import InputError, NotFoundError, NotReadyError
from sempix.web.common import (
    decode_image,
    encode_image,
    get_state,
    image_response,
    read_upload,
)
from sempix.web.session import JobOutput

router = APIRouter()

WORK_PIXELS = 600_000
MAX_IMAGES = 12


class RecolorSession:
    """Images of one collection, their analysis caches, the current solution and outputs."""

    KIND = "recolor collection"

    def __init__(
        self, images: list[np.ndarray], names: list[str], originals: list[np.ndarray] | None = None
    ):
        self.images = images
        self.originals = originals if originals is not None else images
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
        n = int(sum(im.nbytes for im in self.images) * 3)
        n += sum(o.nbytes for o, w in zip(self.originals, self.images) if o is not w)
        return n


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


def _work_copy(rgb: np.ndarray, work_pixels: int = WORK_PIXELS) -> np.ndarray:
    from sempix.recolor.core import downsize

    h, w = rgb.shape[:2]
    if h * w <= work_pixels:
        return np.ascontiguousarray(rgb, np.float32)
    side = int(max(h, w) * (work_pixels / (h * w)) ** 0.5)
    return downsize(rgb, side)


def _collection(request: Request, sid: str) -> RecolorSession:
    """The recolor collection ``sid`` (404/410, or 409 for an image-session id)."""
    return get_state(request).sessions.get(sid, kind=RecolorSession)


def _state_json(sid: str, sess: RecolorSession) -> dict:
    from sempix.color import lab_to_srgb, to_hex

    sol = sess.solution
    images = []
    for i, name in enumerate(sess.names):
        h, w = sess.images[i].shape[:2]
        oh, ow = sess.originals[i].shape[:2]
        entry = {
            "name": name,
            "width": w,
            "height": h,
            "full_width": ow,
            "full_height": oh,
            "input": f"/api/recolor/{sid}/input/{i}",
            "output": f"/api/recolor/{sid}/output/{i}?v={sess.version}" if sess.outputs else None,
        }
        if sol is not None:
            an = sol.analyses[i]
            entry.update(
                {
                    "wb_applied": an.wb_applied,
                    "wb_delta_e": round(an.wb_delta_e, 2),
                    "wb_dominance": round(an.wb_dominance, 2),
                    "wb_strength": round(an.wb_strength, 2),
                    "wb_mode": sol.options["wb"][i],
                    "colors": [
                        {
                            "hex": to_hex(c),
                            "weight": round(float(wt), 4),
                            "group": g,
                            "mapped_to": int(a),
                            "broken_by_names": bool(b),
                        }
                        for c, wt, g, a, b in zip(
                            an.src_rgb, an.weights, an.groups, sol.assignments[i], sol.broken[i]
                        )
                    ],
                }
            )
        images.append(entry)
    group = []
    if sol is not None:
        glab = sess.group_lab if sess.group_lab is not None else sol.group_lab
        grgb = lab_to_srgb(glab, gamut="clip") if len(glab) else np.zeros((0, 3))
        group = [
            {"hex": to_hex(c), "group": g, "solved_hex": to_hex(s)}
            for c, g, s in zip(grgb, sol.group_names, sol.group_rgb)
        ]
    opts = None
    if sol is not None:
        # the model file's server path is not sent to the client
        opts = {
            **{k: v for k, v in sol.options.items() if k != "saliency_model_file"},
            "saliency_model": sess.saliency_request,
        }
    return {
        "session": sid,
        "version": sess.version,
        "images": images,
        "group": group,
        "options": opts,
        "stats": None if sol is None else sol.stats,
    }


SALIENCY_MODELS = ("rbd", "u2netp", "auto")


def resolve_saliency(p: SolveParams) -> tuple[str | None, Path | None]:
    """Concrete ``(saliency backend, u2netp file)`` for a request, without downloading anything.

    ``(None, None)`` when saliency is not used (off, or semantic grouping). Raises ``InputError``
    (400) (one line) for an unknown name or a u2netp model that is not on the server.
    """
    from sempix.errors import ModelUnavailableError
    from sempix.recolor.saliency import resolve_backend, u2netp_path

    if p.saliency_model not in SALIENCY_MODELS:
        raise InputError(
            f"saliency_model must be one of {', '.join(SALIENCY_MODELS)}, not {p.saliency_model!r}",
        )
    if p.saliency == "off" or p.semantic:
        return None, None
    try:
        if p.saliency_model == "u2netp":
            return "u2netp", u2netp_path(download=False)
        return resolve_backend(p.saliency_model)  # rbd, or auto: local file only (never downloads)
    except ModelUnavailableError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "u2netp model unavailable"
        raise InputError(
            f"saliency_model u2netp is not available on this server: {msg}"
        ) from None


def _solve(
    sess: RecolorSession,
    p: SolveParams,
    backend: str,
    saliency: tuple[str | None, Path | None],
    progress,
) -> dict:
    from sempix.errors import InputError
    from sempix.recolor.core import parse_palette, render, solve_collection

    wb = p.wb
    if isinstance(wb, list) and len(wb) != len(sess.images):
        raise InputError(f"wb needs one mode per image ({len(sess.images)})")
    palette = parse_palette(",".join(p.palette)) if p.palette else None
    sal_backend, sal_model = saliency
    with sess.lock:
        sol = solve_collection(
            sess.images,
            group_size=p.group_size,
            wb=wb,
            saliency=p.saliency,
            semantic=p.semantic,
            names=p.names,
            harmonize=p.harmonize,
            palette=palette,
            features=backend,
            caches=sess.caches,
            progress=progress,
            saliency_backend=sal_backend or "rbd",
            saliency_model=sal_model,
        )
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
        raise InputError(
            "no files uploaded (send multipart/form-data with several 'files' fields)"
        )
    if len(files) > MAX_IMAGES:
        raise InputError(f"too many images: at most {MAX_IMAGES}")
    images, names, originals = [], [], []
    for f in files:
        data = await read_upload(f, cfg.max_upload_bytes)
        name = Path(f.filename or "image").stem[:80] or "image"
        loaded = await run_in_threadpool(decode_image, data, cfg.max_pixels, name)
        originals.append(loaded.rgb)
        images.append(await run_in_threadpool(_work_copy, loaded.rgb, cfg.recolor_work_pixels))
        names.append(name)
        del data, loaded
    sess = RecolorSession(images, names, originals)
    sid = state.sessions.add(sess, sess.nbytes)
    backend = cfg.backend if cfg.backend.startswith(("ade20k", "segformer")) else "none"
    job = state.jobs.submit(
        _solve, sess, SolveParams(), backend, ("rbd", None), kind="recolor", owner=sid
    )
    return {
        "session": sid,
        "job": job,
        "images": [
            {"name": n, "width": im.shape[1], "height": im.shape[0]} for n, im in zip(names, images)
        ],
    }


@router.post("/api/recolor/{sid}/solve", status_code=202)
def solve(request: Request, sid: str, p: SolveParams):
    state = get_state(request)
    sess = _collection(request, sid)
    if p.saliency not in ("both", "background", "off"):
        raise InputError("saliency must be both, background or off")
    saliency = resolve_saliency(p)  # before the job: a missing model is an immediate one-line 400
    backend = (
        state.settings.backend
        if state.settings.backend.startswith(("ade20k", "segformer"))
        else "none"
    )
    job = state.jobs.submit(_solve, sess, p, backend, saliency, kind="recolor", owner=sid)
    return {"job": job}


@router.get("/api/recolor/{sid}")
def session_state(request: Request, sid: str):
    sess = _collection(request, sid)
    return _state_json(sid, sess)


@router.post("/api/recolor/{sid}/group")
def edit_group(request: Request, sid: str, p: GroupParams):
    from sempix.palette import srgb_to_lab
    from sempix.recolor.core import parse_palette, render

    sess = _collection(request, sid)
    if sess.solution is None:
        raise NotReadyError("the collection is still being solved")
    if len(p.colors) != len(sess.solution.group_lab):
        raise InputError(
            f"expected {len(sess.solution.group_lab)} group colours, got {len(p.colors)}"
        )
    glab = srgb_to_lab(parse_palette(",".join(p.colors)))
    with sess.lock:
        sess.outputs = render(sess.solution, sess.images, group_lab=glab)
        sess.group_lab = glab
        sess.version += 1
    return _state_json(sid, sess)


def _index(sess: RecolorSession, i: int) -> int:
    if not 0 <= i < len(sess.images):
        raise NotFoundError(f"no image {i} in this collection")
    return i


@router.get("/api/recolor/{sid}/input/{i}")
def input_image(request: Request, sid: str, i: int):
    sess = _collection(request, sid)
    return image_response(sess.images[_index(sess, i)], "png")


@router.get("/api/recolor/{sid}/output/{i}")
def output_image(request: Request, sid: str, i: int, download: int = 0):
    sess = _collection(request, sid)
    i = _index(sess, i)
    if sess.outputs is None:
        raise NotReadyError("no result yet")
    name = f"{sess.names[i]}-recolored.png" if download else None
    return image_response(sess.outputs[i], "png", filename=name)


@router.delete("/api/recolor/{sid}")
def delete_session(request: Request, sid: str):
    state = get_state(request)
    _collection(request, sid)
    state.sessions.remove(sid)
    return {"deleted": sid}


def _render_one(sol, image: np.ndarray, i: int, group_lab) -> np.ndarray:
    """Image ``i`` of the collection recoloured at its own (full) resolution: same LUT as the
    preview."""
    from sempix.recolor.core import color_transforms, pixel_guard_on, render_image

    fn = color_transforms(sol, group_lab=group_lab)[i]
    return render_image(image, sol.analyses[i], fn, guard=pixel_guard_on(sol, group_lab))


def _render_full(state, sid: str, sess: RecolorSession, progress) -> JobOutput:
    """Job body: every original recoloured at full resolution with the current solution."""
    import io
    import zipfile

    with sess.lock:
        sol, glab = sess.solution, sess.group_lab
    if sol is None:
        raise NotReadyError("the collection is still being solved")
    files: dict[str, tuple[bytes, str]] = {}
    zbuf = io.BytesIO()
    n = len(sess.originals)
    used: set[str] = set()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_STORED) as z:
        for i, orig in enumerate(sess.originals):
            H, W = orig.shape[:2]
            with state.sessions.reserve(H * W * 60 + 50_000_000, sid, "this render"):
                progress(i / n, f"image {i + 1}/{n} at {W}x{H}")
                out = _render_one(sol, orig, i, glab)
                png = encode_image(np.clip(out, 0.0, 1.0), "png")
                del out
            name = f"{sess.names[i]}-recolored.png"
            while name in used:
                name = f"{i}-{name}"
            used.add(name)
            files[name] = (png, "image/png")
            z.writestr(name, png)
    files["recolored.zip"] = (zbuf.getvalue(), "application/zip")
    progress(1.0, "done")
    return JobOutput(
        files,
        {
            "main": "recolored.zip",
            "download_name": "recolored.zip",
            "images": [{"name": k, "url": k} for k in files if k.endswith(".png")],
            "version": sess.version,
        },
    )


@router.post("/api/recolor/{sid}/render", status_code=202)
def render_full(request: Request, sid: str):
    state = get_state(request)
    sess = _collection(request, sid)
    if sess.solution is None:
        raise NotReadyError("the collection is still being solved")
    job = state.jobs.submit(_render_full, state, sid, sess, kind="recolor-render", owner=sid)
    return {"job": job}
