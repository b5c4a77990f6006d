"""SegFormer backend (optional extra ``sempix[segformer]``: ``transformers`` + ``torch``).

Loads ``SegformerForSemanticSegmentation`` from a local checkpoint directory (a
``save_pretrained`` folder with ``config.json`` and the weights). The backends
``segformer-b0`` .. ``segformer-b5`` use the model store's folders of the ADE20K checkpoints
``nvidia/segformer-bN-finetuned-ade-512-512`` (b5: ``-640-640``), fetched from the Hugging Face
Hub at a pinned revision (:func:`variant_dir`, ``sempix models fetch segformer-b2``). The plain
``segformer`` backend looks its directory up in this order:

1. ``$SEMPIX_SEGFORMER_DIR``;
2. a sub-directory ``segformer*`` (containing ``config.json``) of ``$SEMPIX_MODEL_DIR`` or of the
   model cache directory (``sempix.models.cache_dir()``), the first in name order.

Input: the image resized (bilinear, aspect kept) so that its longest side is ``size`` (the
checkpoint's ``preprocessor_config.json`` ``size``, default 512) with each side rounded to a
multiple of 32, scaled to [0, 1] and normalised with the ImageNet mean/std (as the checkpoints'
image processor does). Outputs, at 1/4 of that resolution:

* ``features`` - the decode head's fused map, i.e. the input of ``decode_head.classifier``
  (``decoder_hidden_size`` channels, 256 for b0/b1, 768 for b2..b5), read with a forward hook;
* ``logits`` - the classifier's output; class names from ``config.id2label`` (150 ADE20K classes,
  no ``others``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from sempix._runtime import BoundedCache
from sempix.errors import ModelUnavailableError
from sempix.features.ade20k import LowRes
from sempix.ops.resample import sample_coords
from sempix.ops.validate import as_rgb

_lock = threading.Lock()
_models: BoundedCache = BoundedCache(maxsize=2, name="features.segformer")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _is_ckpt(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file()


def model_dir() -> Path:
    """The SegFormer checkpoint directory (see module docstring); raises ModelUnavailableError."""
    env = os.environ.get("SEMPIX_SEGFORMER_DIR")
    if env:
        p = Path(env)
        if _is_ckpt(p):
            return p
        raise ModelUnavailableError(
            f"SEMPIX_SEGFORMER_DIR={env} is not a SegFormer checkpoint directory (no config.json)"
        )
    roots = []
    if os.environ.get("SEMPIX_MODEL_DIR"):
        roots.append(Path(os.environ["SEMPIX_MODEL_DIR"]))
    try:
        from sempix.models import cache_dir

        roots.append(Path(cache_dir()))
    except Exception:  # noqa: BLE001, S110  pragma: no cover - model store not importable
        pass
    for r in roots:
        if r.is_dir():
            for c in sorted(r.glob("segformer*")):
                if _is_ckpt(c):
                    return c
    raise ModelUnavailableError(
        "no SegFormer checkpoint: save one with transformers' save_pretrained (e.g. "
        "nvidia/segformer-b0-finetuned-ade-512-512) and set SEMPIX_SEGFORMER_DIR to that directory"
    )


def variant_dir(name: str) -> Path:
    """Folder of the model-store checkpoint ``name`` (``"segformer-b0"`` .. ``"segformer-b5"``).

    Found locally or downloaded (unless ``SEMPIX_OFFLINE=1``); raises ModelUnavailableError
    saying what to fetch and where to put it.
    """
    from sempix.models import get_model_path

    return Path(get_model_path(name, progress=False))


class _Segformer:
    def __init__(self, path: Path, device: str = "cpu") -> None:
        try:
            import torch
            from transformers import SegformerForSemanticSegmentation
        except ImportError as exc:
            raise ModelUnavailableError(
                f"the segformer backend needs torch and transformers "
                f"(pip install 'sempix[segformer]'): {exc}"
            ) from exc
        self.torch = torch
        self.device = device
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # library code never prints
        try:
            model = SegformerForSemanticSegmentation.from_pretrained(str(path))
            self.model = model.eval().to(device)
        except Exception as exc:
            raise ModelUnavailableError(
                f"{path}: cannot load a SegFormer checkpoint ({exc})"
            ) from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        cfg = self.model.config
        n = cfg.num_labels
        id2label = {int(k): v for k, v in (cfg.id2label or {}).items()}
        self.names = [str(id2label.get(i, f"class{i}")) for i in range(n)]
        self.size = 512
        pp = path / "preprocessor_config.json"
        if pp.is_file():
            try:
                s = json.loads(pp.read_text()).get("size", 512)
                self.size = int(max(s.values()) if isinstance(s, dict) else s)
            except (ValueError, TypeError, AttributeError):
                pass
        self.lock = threading.Lock()
        self._feat = None
        self.model.decode_head.classifier.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self._feat = args[0].detach()

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with self.lock, torch.inference_mode():
            t = torch.from_numpy(x).permute(2, 0, 1)[None].to(self.device)
            logits = self.model(pixel_values=t).logits[0].permute(1, 2, 0).float().cpu().numpy()
            feats = self._feat[0].permute(1, 2, 0).float().cpu().numpy()
            self._feat = None
        return np.ascontiguousarray(feats), np.ascontiguousarray(logits)


def get_model(path: Path, device: str = "cpu") -> _Segformer:
    """The cached model for checkpoint directory ``path`` on ``device``."""
    key = f"{Path(path).resolve()}@{device}"
    return _models.get_or_create(key, lambda: _Segformer(Path(path), device))


def prepare(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (longest side ``size``, sides multiples of 32) and normalise; (h, w, 3) float32."""
    H, W = image.shape[:2]
    s = size / max(H, W)
    h = max(32, round(H * s / 32) * 32)
    w = max(32, round(W * s / 32) * 32)
    u8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(u8, "RGB").resize((w, h), Image.BILINEAR)
    return ((np.asarray(im, np.float32) / 255.0 - MEAN) / STD).astype(np.float32)


def compute_lowres(image: np.ndarray, path: Path | None = None, *, device: str = "cpu") -> LowRes:
    """Run SegFormer on ``image`` (H, W, 3); features/logits at 1/4 of the network input."""
    image = as_rgb(image)
    p = model_dir() if path is None else Path(path)
    m = get_model(p, device)
    H, W = image.shape[:2]
    x = prepare(image, m.size)
    feats, logits = m.run(x)
    hf, wf = feats.shape[:2]
    # the resized input covers the image exactly, the 1/4 grid covers the input (half-pixel centres)
    return LowRes(
        features=feats,
        logits=logits,
        ys=sample_coords(H, hf),
        xs=sample_coords(W, wf),
        class_names=m.names,
        meta={"model": str(p), "input": list(x.shape[:2]), "grid": [hf, wf], "device": device},
    )
