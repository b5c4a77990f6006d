"""Burst datasets over image folders (e.g. ``$SEMPIX_DATA_DIR/dtd10/{train,val}``).

* :func:`list_images` / :func:`load_images`: the images of a folder (sorted, optionally limited);
* :class:`BurstBatches`: an endlessly re-iterable source of training batches synthesised on the
  fly (random crop, flips / 90-degree rotations that keep burst and target aligned, a new burst per
  image per epoch, seeded from ``(seed, epoch, index)``), yielding torch tensors
  ``(burst (B, n, 3, h, w), hr (B, 3, H, W))``;
* :func:`synthesize_folder`: write a fixed synthetic burst per image (frames as PNG + a JSON file
  with the shifts and parameters), reproducible from the seed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sempix.burst.synth import BurstParams, synthesize
from sempix.errors import InputError
from sempix.progress import ProgressFn, report

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files of ``folder`` (sorted by name; first ``limit``)."""
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"{d}: not a folder")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{d}: no images found")
    return files[:limit] if limit else files


def load_images(folder: str | os.PathLike, limit: int | None = None) -> list[np.ndarray]:
    """(H, W, 3) float32 images of a folder."""
    from sempix.image import load_rgb

    return [load_rgb(p) for p in list_images(folder, limit)]


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(4))
    out = np.rot90(img, k)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


class BurstBatches:
    """Training batches synthesised on the fly (one pass over the images = one epoch).

    Parameters
    ----------
    images : list of (H, W, 3) float32 images.
    params : :class:`BurstParams` (``n`` is replaced by a draw from ``n_choices`` per batch when
        given).
    batch : images per batch.
    crop : HR crop size (multiple of ``params.scale``; None = whole images, which must share a
        size).
    n_choices : burst lengths to draw from per batch (for networks that take any n).
    shake_choices, read_choices : optional per-batch draws of the shake / read noise.
    augment : random flips and 90-degree rotations.
    seed : base seed.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        params: BurstParams,
        *,
        batch: int = 4,
        crop: int | None = 64,
        n_choices: Sequence[int] | None = None,
        shake_choices: Sequence[float] | None = None,
        read_choices: Sequence[float] | None = None,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        if not images:
            raise InputError("no training images")
        self.images = list(images)
        self.params = params.validate()
        self.batch = int(batch)
        self.crop = crop
        if crop is not None and crop % params.scale:
            raise InputError(f"crop {crop} must be a multiple of the scale {params.scale}")
        self.n_choices = list(n_choices) if n_choices else None
        self.shake_choices = list(shake_choices) if shake_choices else None
        self.read_choices = list(read_choices) if read_choices else None
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return max(1, len(self.images) // self.batch)

    def __iter__(self) -> Iterator:
        import torch

        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.images))
        for b in range(len(self)):
            idx = order[b * self.batch : (b + 1) * self.batch]
            over = {}
            if self.n_choices:
                over["n"] = int(rng.choice(self.n_choices))
            if self.shake_choices:
                over["shake"] = float(rng.choice(self.shake_choices))
            if self.read_choices:
                over["read"] = float(rng.choice(self.read_choices))
            p = BurstParams(**{**self.params.__dict__, **over})
            bursts, hrs = [], []
            for i in idx:
                img = self.images[int(i)]
                if self.crop is not None:
                    H, W = img.shape[:2]
                    if H < self.crop or W < self.crop:
                        raise InputError(f"image {W}x{H} is smaller than the crop {self.crop}")
                    r = int(rng.integers(H - self.crop + 1))
                    c = int(rng.integers(W - self.crop + 1))
                    img = img[r : r + self.crop, c : c + self.crop]
                if self.augment:
                    img = _augment(img, rng)
                bu = synthesize(img, p, seed=int(rng.integers(2**31)))
                bursts.append(bu.frames.transpose(0, 3, 1, 2))
                hrs.append(bu.hr.transpose(2, 0, 1))
            yield torch.from_numpy(np.stack(bursts)), torch.from_numpy(np.stack(hrs))
        self.epoch += 1


def synthesize_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    params: BurstParams,
    *,
    seed: int = 0,
    limit: int | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> list[Path]:
    """Write one synthetic burst per image: ``out/<stem>/frame_XX.png``, ``hr.png``, ``burst.json``.

    Returns the burst folders. The seed of image ``k`` is ``(seed, k)``.
    """
    from sempix.image import atomic_write_bytes, load_rgb, write_image

    files = list_images(folder, limit)
    outdir = Path(out)
    done = []
    for k, f in enumerate(files):
        b = synthesize(
            load_rgb(f), params, seed=int(np.random.default_rng([seed, k]).integers(2**31))
        )
        d = outdir / f.stem
        for i, fr in enumerate(b.frames):
            write_image(d / f"frame_{i:02d}.png", fr, inputs=[f], force=force)
        write_image(d / "hr.png", b.hr, inputs=[f], force=force)
        meta = {
            "source": str(f),
            "params": b.params.__dict__,
            "seed": b.seed,
            "shifts_hr": b.shifts.tolist(),
        }
        atomic_write_bytes(d / "burst.json", json.dumps(meta, indent=1).encode(), force=True)
        done.append(d)
        report(progress, (k + 1) / len(files), f.name)
    return done
