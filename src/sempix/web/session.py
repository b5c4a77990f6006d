"""The shared image session of the web app and the job-output container.

One :class:`ImageSession` per opened image is shared by every tool panel (masks, resize, soft
layers, palette): the full-resolution pixels, the features (computed once by a job), and a *preview*
copy of at most ``Settings.preview_pixels`` pixels on which every interactive request works, so the
cost of a click or a slider move does not grow with the photo (issue 12 item 2). Full-resolution
work (downloads, resize/harmonize/recolor renders) runs inside ``SessionStore.reserve`` so that it
is counted in the memory budget.

:class:`JobOutput` is what tool jobs return: named files (bytes + media type) and a JSON-able
``info`` dict; its size is charged to the owner session (issue 12 item 7).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def preview_shape(shape: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """(h, w) of the preview: the image scaled by ``min(1, sqrt(max_pixels / (H W)))``, rounded."""
    H, W = shape
    sc = min(1.0, (max_pixels / float(H * W)) ** 0.5)
    return max(1, round(H * sc)), max(1, round(W * sc))


def fit_shape(shape: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """Like :func:`preview_shape` (kept separate for tool working sizes)."""
    return preview_shape(shape, max_pixels)


def resize_float(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Float resize of (H, W[, C]) to ``shape`` (antialiased when shrinking): the shared
    operation."""
    from sempix.ops import resize

    return resize(arr, tuple(shape))


def downscale(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Antialiased float resize (no-op when the shape already matches)."""
    if tuple(image.shape[:2]) == tuple(shape):
        return np.ascontiguousarray(image, dtype=np.float32)
    return np.clip(resize_float(np.asarray(image, np.float32), shape), 0.0, 1.0).astype(np.float32)


@dataclass
class JobOutput:
    """Files produced by a job (``name -> (bytes, media type)``) and a JSON-able summary."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(sum(len(b) for b, _ in self.files.values()))

    def listing(self, job_id: str) -> list[dict]:
        return [
            {"name": n, "url": f"/api/jobs/{job_id}/files/{n}", "media_type": m, "bytes": len(b)}
            for n, (b, m) in self.files.items()
        ]


class ImageSession:
    """One opened image, shared by all tool panels."""

    KIND = "image session"

    def __init__(self, image: np.ndarray, name: str, backend: str, preview_pixels: int = 1_000_000):
        from sempix.mask import MaskSource

        self.image = image
        self.name = name
        self.backend = backend
        ph, pw = preview_shape(image.shape[:2], preview_pixels)
        self.preview = downscale(image, (ph, pw))
        self.source = MaskSource(self.preview)  # interactive distances at preview resolution
        self.fm = None
        self.job: str | None = None
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.error: str | None = None
        self.png: bytes | None = None
        self.created = time.time()
        self.cache: dict[str, Any] = {}  # per-tool small caches (palette of the preview...)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    @property
    def preview_shape(self) -> tuple[int, int]:
        return self.preview.shape[:2]

    @property
    def nbytes(self) -> int:
        n = self.image.nbytes + self.source.nbytes
        if self.preview is not self.image:
            n += self.preview.nbytes
        if self.fm is not None:
            for a in (getattr(self.fm, "labels", None), getattr(self.fm, "probs_lowres", None)):
                if a is not None:
                    n += a.nbytes
        if self.png:
            n += len(self.png)
        return int(n)

    @staticmethod
    def estimate(shape: tuple[int, int], work_pixels: int, preview_pixels: int) -> int:
        """Bytes reserved at upload: image + preview + colour maps + features + labels."""
        H, W = shape
        p = min(H * W, preview_pixels)
        return int(H * W * 12 + p * (12 + 16) + min(H * W, work_pixels) * (64 * 4 + 4) + 2_000_000)

    def info(self) -> dict:
        H, W = self.shape
        ph, pw = self.preview_shape
        fm = self.fm
        return {
            "kind": "image",
            "width": W,
            "height": H,
            "preview_width": pw,
            "preview_height": ph,
            "name": self.name,
            "ready": self.ready.is_set(),
            "error": self.error,
            "job": self.job,
            "backend": getattr(fm, "backend", None) if fm is not None else None,
            "requested_backend": self.backend,
            "semantic": bool(getattr(fm, "semantic", False)) if fm is not None else False,
            "has_labels": fm is not None and getattr(fm, "labels", None) is not None,
            "fallback": (fm.meta.get("fallback") if fm is not None else None),
            "features_width": (fm.meta.get("width") if fm is not None else None),  # slimseg
        }

    def require_ready(self) -> None:
        from sempix.errors import ConflictError, NotReadyError

        if not self.ready.is_set():
            raise NotReadyError(
                "features are still being computed; try again when the job is done",
                code="not_ready",
            )
        if self.fm is None:
            raise ConflictError(
                f"this image has no features: {self.error or 'the feature job failed'}",
                code="no_features",
            )


#: kept for callers of the old name
EditorSession = ImageSession


#: job message of the slimseg quick preview (the editor becomes usable when it sees it)
QUICK_PREFIX = "quick preview ready"


def quick_width(backend: str) -> float | None:
    """The narrow width of the first features pass: the smallest width of the slimmable
    checkpoint when ``backend`` is ``slimseg`` and it has more than one width (else None, one
    pass). The full pass uses the default width (``$SEMPIX_SLIMSEG_WIDTH`` or the widest)."""
    if backend != "slimseg":
        return None
    try:
        from sempix.features.slimseg import checkpoint_path, load_export, resolve_width

        p = checkpoint_path()
        widths = sorted(float(w) for w in load_export(p)["widths"])
        full = resolve_width(None, p)
    except Exception:  # noqa: BLE001 - the full pass reports the problem
        return None
    return widths[0] if widths[0] < full else None


def _install(sess: ImageSession, fm) -> None:
    with sess.lock:
        sess.fm = fm
        sess.source.features = np.ascontiguousarray(fm.features, dtype=np.float32)


def prepare_session(sess: ImageSession, settings: Any, store: Any, sid: str, progress) -> dict:
    """Job body: preview colour maps + features at working resolution."""
    from sempix.mask import mask_features
    from sempix.progress import sub_progress

    try:
        progress(0.02, "colour maps")
        sess.source.colour_image("luminance")
        sess.source.colour_image("lab")
        progress(0.1, f"{sess.backend} features")
        kw = {"work_pixels": settings.work_pixels, "dim": settings.feature_dim,
              "strict": settings.strict}
        start = 0.1
        quick = quick_width(sess.backend)
        if quick is not None:  # slimmable network: a narrow width first, usable at once
            fm = mask_features(sess.image, sess.backend, width=quick,
                               progress=sub_progress(progress, 0.1, 0.3), **kw)
            _install(sess, fm)
            sess.ready.set()
            progress(0.3, f"{QUICK_PREFIX} (x{quick:g}); refining")
            start = 0.3
        fm = mask_features(sess.image, sess.backend, progress=sub_progress(progress, start, 0.98),
                           **kw)
        _install(sess, fm)
        store.resize(sid, sess.nbytes)
        progress(1.0, "ready")
        return sess.info()
    except Exception as exc:
        sess.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise
    finally:
        sess.ready.set()
