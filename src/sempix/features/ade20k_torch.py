"""The ADE20K network in PyTorch: converted once from the TFLite file, cached, run on CPU or CUDA.

:func:`load_deeplab` builds :class:`sempix.nets.deeplab.DeepLabV3Plus` from the model store's
``deeplabv3-mnv2-ade20k`` file. The conversion (:func:`sempix.nets.tflite.convert_deeplab_tflite`)
runs once per file content: the result ``{"format", "sha256", "source", "config",
"state_dict"}`` is saved in the user cache as ``<cache>/converted/deeplabv3-mnv2-ade20k-<sha256
prefix>.pt`` (written to a temporary file and renamed, so never half-written; never in the
repository). The key is the TFLite file's sha256, so a changed file gets a new conversion; a
cached file whose recorded sha256, format or tensors do not match is converted again.

:func:`compute_lowres` is the torch twin of :func:`sempix.features.ade20k.compute_lowres`: the
same letterboxing, the same 129-grid crop and coordinates, float32 instead of the int8 LiteRT
kernels (agreement measured by ``benchmarks/ade20k_torch_agreement.py``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from sempix._runtime import BoundedCache, init_torch_threads
from sempix.errors import ModelUnavailableError
from sempix.ops.validate import as_rgb

log = logging.getLogger(__name__)

FORMAT = 1
_nets: BoundedCache = BoundedCache(maxsize=2, name="features.ade20k_torch")

__all__ = ["cache_path", "compute_lowres", "convert_file", "load_deeplab", "load_state"]


def _cache_dir() -> Path:
    from sempix.models import cache_dir

    return Path(cache_dir()) / "converted"


def cache_path(sha256: str) -> Path:
    """Where the converted state dict of a TFLite file with this sha256 is cached."""
    return _cache_dir() / f"deeplabv3-mnv2-ade20k-{sha256[:16]}.pt"


def convert_file(path: str | os.PathLike) -> dict:
    """Convert a TFLite file, without the cache.

    Returns ``{"format", "sha256", "source", "config", "state_dict"}``.
    """
    import hashlib

    from sempix.nets.tflite import TFLiteConversionError, convert_deeplab_tflite

    data = Path(path).read_bytes()
    try:
        cfg, sd = convert_deeplab_tflite(data)
    except TFLiteConversionError as exc:
        raise ModelUnavailableError(f"{path}: cannot convert to PyTorch ({exc})") from exc
    return {
        "format": FORMAT,
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": Path(path).name,
        "config": cfg.to_dict(),
        "state_dict": sd,
    }


def _valid(payload, sha: str) -> bool:
    if (
        not isinstance(payload, dict)
        or payload.get("format") != FORMAT
        or payload.get("sha256") != sha
    ):
        return False
    try:
        from sempix.nets.deeplab import DeepLabConfig, DeepLabV3Plus

        ref = DeepLabV3Plus(DeepLabConfig.from_dict(payload["config"])).state_dict()
        sd = payload["state_dict"]
        return set(ref) == set(sd) and all(tuple(ref[k].shape) == tuple(sd[k].shape) for k in ref)
    except Exception:  # noqa: BLE001 - any malformed payload means "convert again"
        return False


def _atomic_save(obj, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | os.PathLike | None = None, *, cache: bool = True) -> dict:
    """The converted payload of the TFLite file ``path`` (default: the model store's file).

    Reads the user cache when it holds a valid conversion of this exact file content, else
    converts and (``cache=True``) stores the result atomically. A cache that cannot be written
    (read-only, full disk) is skipped with a debug log line.
    """
    import torch

    from sempix.models import sha256_file

    p = Path(path) if path is not None else _model_path()
    sha = sha256_file(p)
    cp = cache_path(sha)
    if cache and cp.is_file():
        try:
            payload = torch.load(cp, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - truncated/corrupt cache file: convert again
            log.debug("ignoring unreadable converted cache %s: %s", cp, exc)
            payload = None
        if _valid(payload, sha):
            payload["cache"] = str(cp)
            return payload
    payload = convert_file(p)
    if cache:
        try:
            _atomic_save(payload, cp)
            payload["cache"] = str(cp)
        except OSError as exc:
            log.debug("cannot write the converted cache %s: %s", cp, exc)
    return payload


def _model_path() -> Path:
    from sempix.features.ade20k import model_path

    return model_path()


def load_deeplab(path: str | os.PathLike | None = None, *, device: str = "cpu", cache: bool = True):
    """The ADE20K :class:`~sempix.nets.deeplab.DeepLabV3Plus` with trained weights, in eval mode.

    Parameters
    ----------
    path : TFLite file (default: the model store's ``deeplabv3-mnv2-ade20k``)
    device : "cpu" | "cuda"
    cache : use the converted-weights cache in the user cache directory

    Returns
    -------
    DeepLabV3Plus (a new module each call: train or modify it freely)
    """
    from sempix.nets.deeplab import DeepLabConfig, DeepLabV3Plus

    payload = load_state(path, cache=cache)
    net = DeepLabV3Plus(DeepLabConfig.from_dict(payload["config"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval().to(device)


def _shared_net(p: Path, device: str):
    """One eval-mode network per (file, size, mtime, device) for inference (thread-safe)."""
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, device)

    def build():
        import torch

        init_torch_threads()
        net = load_deeplab(p, device=device)
        net.requires_grad_(False)
        if device == "cpu":  # oneDNN's depthwise/1x1 convolutions are faster in NHWC
            net = net.to(memory_format=torch.channels_last)
        return net, threading.Lock()

    return _nets.get_or_create(key, build)


def run(x: np.ndarray, path: Path, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Run the letterboxed input ``x`` (1, S, S, 3) in [-1, 1]: ``(features, logits)`` (h, w, C)."""
    net, lock = _shared_net(Path(path), device)
    return forward(net, lock, x, device)


def forward(net, lock, x: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Run a DeepLab-shaped ``net`` (under ``lock``) on the letterboxed ``x`` (1, S, S, 3) in
    [-1, 1]: ``(features, logits)`` (h, w, C), float32, C-contiguous. Shared with the slimseg
    backend (same input convention, same outputs)."""
    import torch

    t = torch.from_numpy((x.astype(np.float32) + 1.0) * 0.5).permute(0, 3, 1, 2).to(device)
    if device == "cpu":
        t = t.contiguous(memory_format=torch.channels_last)
    with lock, torch.inference_mode():
        out = net(t)
        feats = out.features[0].permute(1, 2, 0).float().cpu().numpy()
        logits = out.logits[0].permute(1, 2, 0).float().cpu().numpy()
    return np.ascontiguousarray(feats), np.ascontiguousarray(logits)


def compute_lowres(image: np.ndarray, path: Path | None = None, *, device: str = "cpu"):
    """Torch twin of :func:`sempix.features.ade20k.compute_lowres` (same letterbox and crop)."""
    from sempix.features.ade20k import INPUT_SIZE, LowRes, class_names, grid_coords, letterbox

    image = as_rgb(image)
    p = _model_path() if path is None else Path(path)
    H, W = image.shape[:2]
    x, (h, w) = letterbox(image)
    feats, logits = run(x, p, device)
    ys, xs, hc, wc = grid_coords(H, W, h, w)
    return LowRes(
        features=np.ascontiguousarray(feats[:hc, :wc]),
        logits=np.ascontiguousarray(logits[:hc, :wc]),
        ys=ys,
        xs=xs,
        class_names=class_names(),
        meta={
            "model": str(p),
            "letterbox": [h, w],
            "grid": [hc, wc],
            "input_size": INPUT_SIZE,
            "runtime": "torch",
            "device": device,
        },
    )
