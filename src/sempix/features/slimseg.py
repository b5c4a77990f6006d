"""``slimseg`` backend: one slimmable ADE20K network, run at a chosen width.

The checkpoint is made by ``sempix slimseg distill PHOTOS -o slimseg_ade20k.pt`` (distillation
of the ``ade20k`` network into a slimmable DeepLabV3+ MobileNetV2, see
:mod:`sempix.slimseg.distill`). Besides the training state it holds, for every width, the
sub-network *exported* as a plain :class:`~sempix.nets.deeplab.DeepLabV3Plus` (its channels
sliced, its switchable batch norms folded into the convolutions): ``ckpt["export"] =
{"widths": [...], "class_names": [...], "nets": {"0.25": {"config", "state_dict"}, ...}}``.
This backend reads only that part, so it needs nothing but :mod:`sempix.nets` and runs each
width as fast as a network of that width can run.

Where the checkpoint is found (the model store's rules for an explicit path and the user
cache):

1. ``checkpoint=`` (an explicit file, or a folder holding ``slimseg_ade20k.pt``);
2. ``$SEMPIX_SLIMSEG_CHECKPOINT``;
3. ``slimseg_ade20k.pt`` in ``$SEMPIX_MODEL_DIR`` entries, then the user model cache
   (:func:`sempix.models.cache_dir`);
4. otherwise :class:`~sempix.errors.ModelUnavailableError` saying how to make one.

The width: ``width=`` (e.g. 0.5), else ``$SEMPIX_SLIMSEG_WIDTH``, else the widest. The input is
letterboxed exactly like the ``ade20k`` backend (513x513, :func:`sempix.features.ade20k.letterbox`)
and cropped to the same stride-4 grid, so the :class:`~sempix.features.compute.FeatureMap` is
post-processed identically (features = the decoder's penultimate map, ``256 x width`` channels;
labels from the logits).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from sempix._runtime import BoundedCache, init_torch_threads
from sempix.errors import InputError, ModelUnavailableError
from sempix.ops.validate import as_rgb

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "slimseg_ade20k.pt"
ENV_CHECKPOINT = "SEMPIX_SLIMSEG_CHECKPOINT"
ENV_WIDTH = "SEMPIX_SLIMSEG_WIDTH"
EXPORT_FORMAT = 1

_payloads: BoundedCache = BoundedCache(maxsize=2, name="features.slimseg.payload")
_nets: BoundedCache = BoundedCache(maxsize=4, name="features.slimseg.nets")

__all__ = [
    "CHECKPOINT_NAME",
    "checkpoint_path",
    "compute_lowres",
    "load_export",
    "resolve_width",
    "width_key",
]

HOW_TO_MAKE = (
    "make one with `sempix slimseg distill PHOTOS -o {dest}` (a folder of your own photos; "
    "distils the ade20k network), or pass its path (--checkpoint / ${env})"
)


def width_key(width: float) -> str:
    """The key of a width in checkpoints and caches (``0.5`` -> ``"0.5"``)."""
    return f"{float(width):g}"


def checkpoint_path(explicit: str | os.PathLike | None = None) -> Path:
    """Find the slimmable ADE20K checkpoint (see the module docstring for the order).

    Raises
    ------
    ModelUnavailableError
        None found; the message says how to make one.
    """
    from sempix.models import cache_dir, model_dirs

    if explicit is None and os.environ.get(ENV_CHECKPOINT, "").strip():
        explicit = os.environ[ENV_CHECKPOINT].strip()
    if explicit is not None:
        p = Path(explicit).expanduser()
        if p.is_dir():
            p = p / CHECKPOINT_NAME
        if not p.is_file():
            raise ModelUnavailableError(f"slimmable checkpoint {p} does not exist")
        return p
    for d in model_dirs():
        if (d / CHECKPOINT_NAME).is_file():
            return d / CHECKPOINT_NAME
    dest = Path(cache_dir()) / CHECKPOINT_NAME
    raise ModelUnavailableError(
        f"no slimmable checkpoint ({CHECKPOINT_NAME} not in $SEMPIX_MODEL_DIR or {cache_dir()}); "
        + HOW_TO_MAKE.format(dest=dest, env=ENV_CHECKPOINT)
    )


def _read_export(path: Path) -> dict:
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise ModelUnavailableError(
            f"{path}: not a readable slimmable checkpoint ({str(exc).splitlines()[0]})"
        ) from None
    exp = ckpt.get("export") if isinstance(ckpt, dict) else None
    if not isinstance(exp, dict) or exp.get("format") != EXPORT_FORMAT or not exp.get("nets"):
        raise ModelUnavailableError(
            f"{path}: this checkpoint holds no exported widths (an unfinished training run?); "
            f"run `sempix slimseg export {path}` or let the run finish"
        )
    return exp


def load_export(path: str | os.PathLike) -> dict:
    """The ``export`` part of a checkpoint (cached per path, size and mtime).

    Returns
    -------
    dict with ``widths`` (sorted floats), ``class_names`` (list or None), ``nets``
    ({width key: {"config", "state_dict"}}) and ``format``.
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    return _payloads.get_or_create(key, lambda: _read_export(p))


def resolve_width(width: float | str | None, path: str | os.PathLike) -> float:
    """``width`` checked against the checkpoint's widths (None: ``$SEMPIX_SLIMSEG_WIDTH``,
    else the widest).

    Raises
    ------
    InputError
        A width the checkpoint does not hold (the message lists those it does).
    """
    widths = [float(w) for w in load_export(path)["widths"]]
    if width is None or width == "":
        width = os.environ.get(ENV_WIDTH, "").strip() or None
    if width is None:
        return max(widths)
    try:
        w = float(width)
    except (TypeError, ValueError):
        raise InputError(f"width must be a number such as 0.5 (got {width!r})") from None
    for cand in widths:
        if abs(cand - w) < 1e-6:
            return cand
    raise InputError(
        f"width {w:g} is not in the slimmable checkpoint {Path(path).name} "
        f"(widths: {', '.join(width_key(x) for x in widths)})"
    )


def _net(path: Path, width: float, device: str):
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, width_key(width), device)

    def build():
        import torch

        from sempix.nets.deeplab import DeepLabConfig, DeepLabV3Plus

        init_torch_threads()
        entry = load_export(path)["nets"][width_key(width)]
        net = DeepLabV3Plus(DeepLabConfig.from_dict(entry["config"]))
        net.load_state_dict(entry["state_dict"])
        net = net.eval().to(device)
        net.requires_grad_(False)
        if device == "cpu":  # oneDNN's depthwise/1x1 convolutions are faster in NHWC
            net = net.to(memory_format=torch.channels_last)
        return net, threading.Lock()

    return _nets.get_or_create(key, build)


def class_names(path: str | os.PathLike) -> list[str]:
    """Class names stored in the checkpoint (the ADE20K names when it has none)."""
    names = load_export(path).get("class_names")
    if names:
        return list(names)
    from sempix.features.ade20k import class_names as ade_names

    return ade_names()


def compute_lowres(image: np.ndarray, path: str | os.PathLike | None = None, *,
                   width: float | None = None, device: str = "cpu"):
    """Run the width-``width`` sub-network on ``image``; same letterbox and crop as ``ade20k``.

    Returns
    -------
    sempix.features.ade20k.LowRes (features (h, w, 256 x width), logits (h, w, C))
    """
    from sempix.features.ade20k import INPUT_SIZE, LowRes, grid_coords, letterbox
    from sempix.features.ade20k_torch import forward

    image = as_rgb(image)
    p = checkpoint_path(path)
    w = resolve_width(width, p)
    net, lock = _net(p, w, device)
    H, W = image.shape[:2]
    x, (h, wd) = letterbox(image)
    feats, logits = forward(net, lock, x, device)
    ys, xs, hc, wc = grid_coords(H, W, h, wd)
    return LowRes(
        features=np.ascontiguousarray(feats[:hc, :wc]),
        logits=np.ascontiguousarray(logits[:hc, :wc]),
        ys=ys,
        xs=xs,
        class_names=class_names(p),
        meta={
            "model": str(p),
            "width": w,
            "letterbox": [h, wd],
            "grid": [hc, wc],
            "input_size": INPUT_SIZE,
            "runtime": "torch",
            "device": device,
        },
    )
