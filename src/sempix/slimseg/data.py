"""Labelled image folders for segmentation training, and their augmentation.

Folder layouts (file stems pair images with labels; labels are single-channel PNGs of class
indices):

* SegNet / CamVid: ``DATA/train`` + ``DATA/trainannot``, ``DATA/val`` + ``DATA/valannot``;
* generic: ``DATA/<split>/images`` + ``DATA/<split>/labels``.

Label values ``>= num_classes`` and the dataset's ``void`` value become :data:`IGNORE` (255).
CamVid (``$SEMPIX_DATA_DIR/camvid``): 11 classes (sky .. bicyclist), void = 11.

Images are decoded once, resized to the working size (``size=(H, W)``; antialiased bilinear for
images, nearest for labels) and kept in memory as ``uint8``: a few hundred CamVid frames at
240x180 take ~50 MB.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sempix.errors import InputError
from sempix.progress import ProgressFn, report

__all__ = ["IGNORE", "AugmentedBatches", "LabelledFolder", "find_split"]

IGNORE = 255
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
                  "pedestrian", "bicyclist")


def find_split(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """``(image folder, label folder)`` of ``split`` in ``root`` (see the module docstring)."""
    r = Path(root)
    layouts = ((r / split, r / f"{split}annot"), (r / split / "images", r / split / "labels"))
    for img, lab in layouts:
        if img.is_dir() and lab.is_dir():
            return img, lab
    raise InputError(
        f"{r}: no '{split}' split (expected {split}/ + {split}annot/, or {split}/images/ + "
        f"{split}/labels/)"
    )


@dataclass
class LabelledFolder:
    """One split of a labelled folder, decoded and resized in memory.

    Parameters
    ----------
    root : dataset folder.
    split : ``train`` | ``val`` | ...
    size : (H, W) working size (None = the files' size; all images must then agree).
    num_classes : classes (None: 11 for a SegNet-style CamVid folder, else max label + 1).
    void : label value to ignore (None: 11 for CamVid, else none besides values >= classes).
    limit : use only the first ``limit`` pairs (sorted by name).

    Attributes
    ----------
    images : (K, H, W, 3) uint8; labels : (K, H, W) uint8 (255 = ignore); names : list of stems.
    """

    root: str | os.PathLike
    split: str = "train"
    size: tuple[int, int] | None = None
    num_classes: int | None = None
    void: int | None = None
    limit: int | None = None
    progress: ProgressFn | None = None

    def __post_init__(self) -> None:
        from PIL import Image

        img_dir, lab_dir = find_split(self.root, self.split)
        camvid = lab_dir.name.endswith("annot")
        labels = {p.stem: p for p in lab_dir.iterdir() if p.suffix.lower() == ".png"}
        pairs = sorted(
            (p.stem, p, labels[p.stem]) for p in img_dir.iterdir()
            if p.suffix.lower() in _IMAGE_EXT and p.stem in labels
        )
        if self.limit is not None:
            pairs = pairs[: self.limit]
        if not pairs:
            raise InputError(f"{img_dir}: no image with a label PNG of the same name in {lab_dir}")
        if self.void is None and camvid:
            self.void = 11
        imgs, labs = [], []
        for i, (_, ip, lp) in enumerate(pairs):
            with Image.open(ip) as im:
                im = im.convert("RGB")
                if self.size is not None and im.size != (self.size[1], self.size[0]):
                    im = im.resize((self.size[1], self.size[0]), Image.BILINEAR, reducing_gap=None)
                imgs.append(np.asarray(im, dtype=np.uint8))
            with Image.open(lp) as lm:
                if lm.mode not in ("L", "P", "I", "I;16"):
                    raise InputError(f"{lp}: labels must be a single-channel PNG, got {lm.mode}")
                if self.size is not None and lm.size != (self.size[1], self.size[0]):
                    lm = lm.resize((self.size[1], self.size[0]), Image.NEAREST)
                labs.append(np.asarray(lm).astype(np.int64))
            if imgs[-1].shape[:2] != labs[-1].shape:
                raise InputError(f"{ip}: image and label sizes differ")
            report(self.progress, (i + 1) / len(pairs),
                   f"reading {self.split} {i + 1}/{len(pairs)}")
        if len({a.shape for a in imgs}) > 1:
            raise InputError(f"{img_dir}: images differ in size; give a working size")
        lab = np.stack(labs)
        if self.num_classes is None:
            valid = lab[lab != self.void] if self.void is not None else lab
            self.num_classes = 11 if camvid else int(valid.max()) + 1
        bad = lab >= self.num_classes
        if self.void is not None:
            bad |= lab == self.void
        lab[bad] = IGNORE
        self.images = np.stack(imgs)
        self.labels = lab.astype(np.uint8)
        self.names = [n for n, _, _ in pairs]
        self.class_names = (
            CAMVID_CLASSES if camvid and self.num_classes == 11
            else tuple(str(i) for i in range(self.num_classes))
        )

    def __len__(self) -> int:
        return len(self.names)

    def tensors(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) float in [0, 1] and labels (B, H, W) int64 of ``index``."""
        x = torch.from_numpy(self.images[index]).permute(0, 3, 1, 2).float() / 255.0
        return x, torch.from_numpy(self.labels[index]).long()


class AugmentedBatches:
    """Re-iterable random batches: random scale, crop (padded with ignore) and horizontal flip.

    One pass = one epoch over the dataset in a random order (``numpy.random``, seeded by the
    training loop). Yields ``(images (B, 3, h, w) float, labels (B, h, w) int64)``.

    Parameters
    ----------
    data : LabelledFolder
    batch : images per batch (the last incomplete batch of an epoch is dropped).
    crop : (h, w) crop size.
    scale : (min, max) random scale factor of the working-size image.
    flip : random horizontal flips.
    """

    def __init__(self, data: LabelledFolder, batch: int, crop: tuple[int, int],
                 scale: tuple[float, float] = (0.5, 2.0), flip: bool = True) -> None:
        if batch < 1 or batch > len(data):
            raise InputError(f"batch must be in 1..{len(data)} (the number of images)")
        self.data, self.batch, self.crop = data, batch, tuple(crop)
        self.scale, self.flip = scale, flip

    def __len__(self) -> int:
        return len(self.data) // self.batch

    def _sample(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.data.tensors([i])
        s = float(np.random.uniform(*self.scale))
        h, w = x.shape[2:]
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=s < 1)
            y = F.interpolate(y[:, None].float(), size=(nh, nw), mode="nearest")[:, 0].long()
        ch, cw = self.crop
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=0.0)
            y = F.pad(y, (0, pw, 0, ph), value=IGNORE)
        top = int(np.random.randint(0, x.shape[2] - ch + 1))
        left = int(np.random.randint(0, x.shape[3] - cw + 1))
        x = x[:, :, top: top + ch, left: left + cw]
        y = y[:, top: top + ch, left: left + cw]
        if self.flip and np.random.rand() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        return x[0], y[0]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = np.random.permutation(len(self.data))
        for b in range(len(self)):
            items = [self._sample(int(i)) for i in order[b * self.batch: (b + 1) * self.batch]]
            yield torch.stack([a for a, _ in items]), torch.stack([c for _, c in items])
