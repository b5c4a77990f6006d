"""Tests of the built-in saliency backend (sempix.recolor.saliency)."""

from __future__ import annotations

import numpy as np
import pytest

from sempix.errors import InputError
from sempix.recolor.saliency import compute_saliency, salient_mask, thing_mask


def _blob_image(rng, h=120, w=160, cy=60, cx=80, r=25, colour=(0.9, 0.2, 0.1)):
    img = np.full((h, w, 3), 0.35, np.float32) + rng.normal(0, 0.02, (h, w, 3)).astype(np.float32)
    img[..., 1] += np.linspace(0, 0.1, w, dtype=np.float32)[None]  # a gentle background gradient
    yy, xx = np.mgrid[:h, :w]
    blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    img[blob] = colour
    return np.clip(img, 0, 1), blob


def test_salient_blob_is_found(rng):
    img, blob = _blob_image(rng)
    s = compute_saliency(img)
    assert s.saliency.shape == blob.shape and s.saliency.dtype == np.float32
    assert 0 <= s.saliency.min() and s.saliency.max() <= 1
    assert s.saliency[blob].mean() > 0.8
    assert s.saliency[~blob].mean() < 0.15
    m = salient_mask(s.saliency)
    inter = np.logical_and(m, blob).sum()
    assert inter / blob.sum() > 0.6 and inter / max(m.sum(), 1) > 0.9


def test_off_centre_blob_and_large_image(rng):
    img, blob = _blob_image(rng, h=400, w=600, cy=120, cx=430, r=70, colour=(0.1, 0.3, 0.9))
    s = compute_saliency(img).saliency
    assert s.shape == (400, 600)
    assert s[blob].mean() > 0.7
    assert s[~blob].mean() < 0.2


def test_semantic_prior_raises_thing_pixels(rng):
    # two equally contrasted blobs; the labels call only one of them a "thing" (person)
    img, blob_a = _blob_image(rng, cx=45, r=20)
    yy, xx = np.mgrid[:120, :160]
    blob_b = (yy - 60) ** 2 + (xx - 115) ** 2 < 400
    img[blob_b] = (0.9, 0.2, 0.1)
    names = ["others", "wall", "person"]
    labels = np.ones((120, 160), np.int32)
    labels[blob_b] = 2
    assert thing_mask(labels, names)[blob_b].all() and not thing_mask(labels, names)[blob_a].any()
    plain = compute_saliency(img).saliency
    sem = compute_saliency(img, labels=(labels, names))
    assert sem.backend == "rbd+ade20k"
    gain_b = sem.saliency[blob_b].mean() - plain[blob_b].mean()
    gain_a = sem.saliency[blob_a].mean() - plain[blob_a].mean()
    assert sem.saliency[blob_b].mean() > sem.saliency[blob_a].mean()
    assert gain_b > gain_a


def test_bad_input():
    with pytest.raises(InputError):
        compute_saliency(np.zeros((10, 10), np.float32))
    with pytest.raises(InputError):
        compute_saliency(np.zeros((10, 10, 3), np.float32), backend="u2net")


def test_real_sod_better_than_centre_prior(data_dir):
    from PIL import Image

    masks = sorted((data_dir / "sod" / "masks").glob("*.png"))[:8]
    if not masks:
        pytest.skip("no SOD masks")
    ours, centre = [], []
    for mp in masks:
        ip = next((p for p in (data_dir / "bsds500" / "images").glob(f"*/{mp.stem}.jpg")), None)
        if ip is None:
            continue
        img = np.asarray(Image.open(ip).convert("RGB"), np.float32) / 255
        gt = np.asarray(Image.open(mp).convert("L"), np.float32) / 255
        h, w = gt.shape
        yy, xx = np.mgrid[0:h, 0:w]
        c = np.exp(-(((yy - h / 2) / (0.3 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2) / 2)
        ours.append(np.abs(compute_saliency(img).saliency - gt).mean())
        centre.append(np.abs(c - gt).mean())
    assert len(ours) >= 4
    assert np.mean(ours) < np.mean(centre)
