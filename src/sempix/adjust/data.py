"""Before/after pairs for SA-AdjustNet: folder layouts, the seeded validation split, the
network-resolution cache, sparse pixel sampling and aligned augmentation.

Layouts of ``PAIRS_DIR``:

* the dataset layout: ``input/`` + one folder per effect (``popout/``, ``xpro/``, ...), files
  matched by stem (``--effect NAME`` picks the folder);
* a user's own edits: ``before/`` + ``after/``, matched by stem.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sempix.errors import InputError

__all__ = ["Pair", "augment", "find_pairs", "load_pairs", "sample_pixels", "split_pairs"]

EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


def _files(d: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in EXTS}


def find_pairs(root: str | Path, effect: str | None = None) -> list[tuple[str, Path, Path]]:
    """``(name, before, after)`` triples of a pairs folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    if (root / "before").is_dir() and (root / "after").is_dir():
        src, dst = root / "before", root / "after"
    elif (root / "input").is_dir():
        effects = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "input")
        if effect is None or effect not in effects:
            raise InputError(f"{root}: choose an effect ({', '.join(effects) or 'none found'})")
        src, dst = root / "input", root / effect
    else:
        raise InputError(f"{root}: expected before/ + after/ folders or input/ + effect folders")
    a, b = _files(src), _files(dst)
    names = sorted(set(a) & set(b))
    if len(names) < 2:
        raise InputError(f"{root}: fewer than 2 matching before/after pairs")
    return [(n, a[n], b[n]) for n in names]


def split_pairs(names: list[str], n_val: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded train/validation split of pair names -> (train, val), both sorted."""
    n_val = max(0, min(int(n_val), len(names) - 1))
    perm = np.random.default_rng(seed).permutation(len(names))
    val = sorted(names[i] for i in perm[:n_val])
    return sorted(set(names) - set(val)), val


@dataclass
class Pair:
    """One pair at network resolution: ``rgb`` (3, h, w) input in [0, 1], ``lab`` / ``target``
    (3, h, w) CIELab of input / retouched image, ``labels`` (h, w) int64 ADE20K labels or None."""

    name: str
    rgb: torch.Tensor
    lab: torch.Tensor
    target: torch.Tensor
    labels: torch.Tensor | None = None


def net_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """(h, w) with the long side ``size`` (never upscaled)."""
    H, W = shape[:2]
    s = min(1.0, size / max(H, W))
    return max(8, round(H * s)), max(8, round(W * s))


def to_net(rgb: np.ndarray, size: int) -> np.ndarray:
    from sempix.ops import resize

    return np.clip(resize(rgb, net_shape(rgb.shape, size)), 0, 1).astype(np.float32)


def load_pairs(triples: list[tuple[str, Path, Path]], size: int, *, cache: bool = True,
               progress=None) -> list[Pair]:
    """Read, downscale (long side ``size``) and convert the pairs; cached on disk (npz in the
    ``adjust`` cache folder, keyed by file identities and size) because this never changes
    between epochs or runs."""
    from sempix._config import cache_dir
    from sempix.color import srgb_to_lab
    from sempix.image import atomic_output, load_rgb
    from sempix.progress import report

    out = []
    for i, (name, a, b) in enumerate(triples):
        key = hashlib.sha256()
        for p in (a, b):
            st = p.stat()
            key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
        key.update(f"{size}|v1".encode())
        cp = cache_dir("adjust") / f"pair-{key.hexdigest()[:24]}.npz"
        arrs = None
        if cache and cp.is_file():
            try:
                with np.load(cp) as z:
                    arrs = {k: z[k] for k in ("rgb", "lab", "target")}
            except (OSError, ValueError, KeyError):
                arrs = None
        if arrs is None:
            x, y = load_rgb(a), load_rgb(b)
            if x.shape[:2] != y.shape[:2]:
                raise InputError(f"{a.name}: before {x.shape[:2]} and after {y.shape[:2]} differ")
            xs, ys = to_net(x, size), to_net(y, size)
            arrs = {"rgb": xs, "lab": srgb_to_lab(xs).astype(np.float32),
                    "target": srgb_to_lab(ys).astype(np.float32)}
            if cache:
                try:
                    cp.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_output(cp, force=True) as tmp, open(tmp, "wb") as f:
                        np.savez(f, **arrs)
                except (OSError, InputError):
                    pass
        t = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1)))
             for k, v in arrs.items()}
        out.append(Pair(name, t["rgb"], t["lab"], t["target"]))
        report(progress, (i + 1) / len(triples), f"pairs {i + 1}/{len(triples)}")
    return out


def sample_pixels(h: int, w: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` random pixel centres (with replacement when ``n`` > h*w) as normalised (x, y)
    coordinates (P, 2) in [-1, 1] (align_corners=False), for :func:`F.grid_sample`."""
    total = h * w
    if n >= total:
        idx = torch.arange(total)
    else:
        idx = torch.randperm(total, generator=generator)[:n]
    y = (idx // w).float()
    x = (idx % w).float()
    return torch.stack([(x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1], dim=1)


def pixel_index(grid: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row/column indices of normalised pixel-centre coordinates (inverse of sample_pixels)."""
    x = ((grid[:, 0] + 1) * w / 2 - 0.5).round().long().clamp(0, w - 1)
    y = ((grid[:, 1] + 1) * h / 2 - 0.5).round().long().clamp(0, h - 1)
    return y, x


def augment(images: list[torch.Tensor], labels: torch.Tensor | None, angle_deg: float,
            flip: bool) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Rotate by ``angle_deg`` about the centre (replicated borders) and optionally flip
    horizontally every (C, h, w) image and the (h, w) label map with the *same* transform
    (bilinear for images, nearest for labels), so inputs and targets stay aligned."""
    c = [t.shape[0] for t in images]
    x = torch.cat(images, 0)[None]
    h, w = x.shape[2:]
    if flip:
        x = x.flip(3)
        labels = None if labels is None else labels.flip(1)
    if angle_deg:
        a = math.radians(angle_deg)
        # rotation in pixel units (aspect-correct) expressed in normalised coordinates
        cos, sin = math.cos(a), math.sin(a)
        theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]],
                             dtype=x.dtype)[None]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if labels is not None:
            lab = F.grid_sample(labels[None, None].float(), grid, mode="nearest",
                                padding_mode="border", align_corners=False)
            labels = lab[0, 0].long()
    return list(torch.split(x[0], c, dim=0)), labels
