"""Recorded-quality regression tests, one per tool, on one small real fixture each.

Pymatting style: each tool runs on a small real photograph from ``SEMPIX_DATA_DIR`` (skipped
without it), one quality metric is computed and compared with the value recorded from the code
*before* the issue-13 refactor, within an error budget. A refactor that changes a tool's results
beyond noise fails here. Run this file as a script to print the current values::

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data python
    tests/test_quality_regression.py

The recorded values use the ADE20K features when ``SEMPIX_MODEL_DIR`` holds the model, else the
low-level features (two recordings); the budget covers float-order noise and BLAS thread counts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _data_dir() -> Path | None:
    d = os.environ.get("SEMPIX_DATA_DIR")
    return Path(d) if d and Path(d).is_dir() else None


def _backend() -> str:
    from sempix.models import is_available

    return "ade20k" if is_available("deeplabv3-mnv2-ade20k") else "lowlevel"


def _load(p: Path, width: int | None = None, mode: str = "RGB") -> np.ndarray:
    im = Image.open(p).convert(mode)
    if width is not None:
        h = round(im.height * width / im.width)
        im = im.resize((width, h), Image.BOX)
    return np.asarray(im, np.float32) / 255.0


def m_carve(data: Path, backend: str) -> dict:
    """Share of the salient object kept when carving a BSDS/SOD photo to 75% width."""
    from sempix.carve import carve
    from sempix.features import compute_features

    img = _load(data / "bsds500/images/train/100080.jpg", 120)
    sal = _load(data / "sod/masks/100080.png", 120, "L") > 0.5
    fm = compute_features(img, backend, cache=False)
    res = carve(img, 90, features=fm.features, also=[sal.astype(np.float32)])
    kept = float(res.also[0].sum() / max(sal.sum(), 1))
    return {"kept_salient": kept, "mean_out": float(res.image.mean())}


def m_mask(data: Path, backend: str) -> dict:
    """IoU of a one-click range mask with the largest human segment of a BSDS image."""
    from scipy.io import loadmat
    from scipy.ndimage import distance_transform_edt

    from sempix.mask import mask_features, range_mask

    img = _load(data / "bsds500/images/val/101087.jpg")
    gt = loadmat(data / "bsds500/groundTruth/val/101087.mat")["groundTruth"][0, 0]["Segmentation"][
        0, 0
    ]
    ids, counts = np.unique(gt, return_counts=True)
    seg = gt == ids[np.argmax(counts)]
    dt = distance_transform_edt(seg)
    y, x = np.unravel_index(np.argmax(dt), dt.shape)
    fm = mask_features(img, backend, cache=False)
    # "iou" / "mask_mean" predate issues 21 and 19: pinned to their settings (luminance, lam 0.5,
    # tau 0.25, per-pixel criterion); "*_default" follow the library defaults (issue 19: lam 0.8,
    # tau 0.3, Lab, connected to the click), recorded when those defaults were chosen
    pt = [(int(x), int(y))]
    res = range_mask(img, pt, features=fm, space="luminance", lam=0.5, tau=0.25, connected=False)
    new = range_mask(img, pt, features=fm)
    out = {}
    for suffix, r in (("", res), ("_default", new)):
        m = r.mask > 0.5
        out["iou" + suffix] = float((m & seg).sum() / max((m | seg).sum(), 1))
        out["mask_mean" + suffix] = float(r.mask.mean())
    return out


def m_softseg(data: Path, backend: str) -> dict:
    """SAD (/1000) of the foreground layers of a soft segmentation vs the alphamatting GT."""
    from sempix.features import compute_features
    from sempix.softseg import SoftSegConfig, grouping_features, soft_segment

    img = _load(data / "alphamatting/input/GT04.png", 96)
    gt = _load(data / "alphamatting/gt/GT04.png", 96, "L")
    fm = compute_features(img, backend, dim=3, reduce="pca", cache=False)

    def sad(res):
        layers = res.alphas
        mass = layers.sum(axis=(0, 1))
        inside = (layers * gt[..., None]).sum(axis=(0, 1)) / np.maximum(mass, 1e-9)
        alpha = layers[..., inside > 0.5].sum(axis=2)
        return float(np.abs(alpha - gt).sum() / 1000)

    # "sad": the grouping before issue 19 (one k-means++ run on the 3-d features)
    cfg = SoftSegConfig(
        n_eigvecs=30, n_initial=12, work_pixels=4000, colors=False, group_restarts=0
    )
    out = {"sad": sad(soft_segment(img, features=fm.features, config=cfg))}
    # issue 19: grouping by the direction of the native network features (the default when
    # soft_segment computes its own features), mass-weighted k-means with 100 restarts
    gf = grouping_features(img, backend, img.shape[:2])
    cfg.group_restarts = SoftSegConfig.group_restarts
    out["sad_grouped"] = sad(
        soft_segment(img, features=fm.features, group_features=gf, config=cfg)
    )
    return out


def m_harmonize(data: Path, backend: str) -> dict:
    """Harmony F-score of a Kodak image before and after name-based harmonization."""
    from sempix.palette import harmonize_image, harmony_metrics

    img = _load(data / "kodak24/kodim23.png", 128)
    # recorded before issue 21's harmony guard (which keeps this small kodim23 as it is) and before
    # issue 19's template fit: unguarded, palette step only
    res = harmonize_image(img, method="names", guard="off", fit_template=False)
    # issue 19: the default (template fit after the guard), recorded with it
    new = harmonize_image(img, method="names")
    s_in, s_new = harmony_metrics(img), harmony_metrics(new.image)
    return {
        "f_before": float(s_in.f_score),
        "f_after": float(harmony_metrics(res.image).f_score),
        "mean_change": float(np.abs(res.image - img).mean()),
        "f_default": float(s_new.f_score),
        "pit_gain_default": float(s_new.pit - s_in.pit),
        "mits_gain_default": float(s_new.mits - s_in.mits),
        "mean_change_default": float(np.abs(new.image - img).mean()),
    }


def m_recolor(data: Path, backend: str) -> dict:
    """Mean pairwise Lab palette distance of a 3-image collection before/after recolouring."""
    from skimage.color import rgb2lab

    from sempix.recolor import recolor_collection

    folder = data / "groups/collection01"
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))[:3]
    imgs = [_load(p, 96) for p in paths]

    def spread(ims):
        means = [rgb2lab(i).reshape(-1, 3).mean(0) for i in ims]
        return float(
            np.mean([np.linalg.norm(a - b) for j, a in enumerate(means) for b in means[j + 1 :]])
        )

    res = recolor_collection(
        imgs, features="none" if backend == "lowlevel" else backend, saliency="both", seed=0
    )
    change = float(np.mean([np.abs(a - b).mean() for a, b in zip(res.images, imgs)]))
    out = {"spread_before": spread(imgs), "spread_after": spread(res.images), "mean_change": change}
    # larger than the analysis side (320 px): covers the analysis downsizing path too
    big = [_load(p, 400) for p in paths]
    res = recolor_collection(
        big, features="none" if backend == "lowlevel" else backend, saliency="both", seed=0
    )
    out["spread_after_400"] = spread(res.images)
    out["mean_change_400"] = float(np.mean([np.abs(a - b).mean() for a, b in zip(res.images, big)]))
    return out


def m_retarget(data: Path, backend: str) -> dict:
    """Semantic-seam retargeting of a RetargetMe source to 75% width: VGG semantic score."""
    from sempix.retarget import retarget
    from sempix.retarget.score import semantic_score

    img = _load(data / "retargetme/001/src.jpg", 96)
    w = round(img.shape[1] * 0.75)
    out = {}
    res = retarget(
        img, w, method="semantic-seam", features=backend if backend != "lowlevel" else None
    )
    out["seam_mean"] = float(res.image.mean())
    res = retarget(
        img,
        w,
        method="dnr",
        iterations=5,
        refine_iterations=2,
        features=backend if backend != "lowlevel" else None,
        protect=None,
    )
    out["dnr_mean"] = float(res.image.mean())
    try:
        out["dnr_vgg"] = float(semantic_score(img, res.image, kind="vgg"))
    except Exception:  # noqa: BLE001 - VGG weights unavailable: score not recorded
        pass
    return out


TOOLS = {
    "carve": m_carve,
    "mask": m_mask,
    "softseg": m_softseg,
    "harmonize": m_harmonize,
    "recolor": m_recolor,
    "retarget": m_retarget,
}

# Values measured on the code before the issue-13 refactor (commit 643d2bc), per feature backend;
# the *_400 recolor values were re-recorded after it (intended change, noted inline).
RECORDED: dict[str, dict[str, dict[str, float]]] = {
    "ade20k": {
        "carve": {"kept_salient": 0.994155582426441, "mean_out": 0.37047702074050903},
        "harmonize": {
            "f_before": 0.218145727021969,
            "f_after": 0.2745043953398982,
            "mean_change": 0.03359444439411163,
            # issue 19, recorded with its default (template fit after the guard). On this 128-px
            # kodim23 the guard rejects the palette step (F 0.218 -> 0.275) and takes the
            # "saturation-only" step (palette hues kept) + the template fit
            "f_default": 0.05482673715228978,
            "pit_gain_default": 11.279296875,
            "mits_gain_default": 0.06804514845029908,
            "mean_change_default": 0.021153101697564125,
        },
        "mask": {
            "iou": 0.35756275477365373,
            "mask_mean": 0.11111974716186523,
            # issue 19 (new defaults: lam 0.8, tau 0.3, Lab, connected), recorded with them
            "iou_default": 0.42223378650881416,
            "mask_mean_default": 0.12611964344978333,
        },
        "recolor": {
            "spread_before": 20.789339065551758,
            "spread_after": 20.77043914794922,
            "mean_change": 0.010567325167357922,
            # re-recorded after issue 13: the analysis copy (320 px) is no longer rounded to
            # 8 bits, and the automatic-k palettes react to that; before: 18.026438 / 0.016713
            "spread_after_400": 18.950515747070312,
            "mean_change_400": 0.014867599122226238,
        },
        "retarget": {
            "seam_mean": 0.4112303555011749,
            "dnr_mean": 0.40936920046806335,
            "dnr_vgg": 0.8288121492301487,
        },
        # issue 19: sad_grouped = the new default grouping (native-feature cosine, weighted
        # k-means, 100 restarts), recorded with it; "sad" (old grouping) is unchanged. On this
        # 96 px fixture the new grouping is worse (1.38 vs 1.14; with 10 restarts 1.02): a pin,
        # not a quality claim (see docs/softseg.md for the measurement at the dataset's size)
        "softseg": {"sad": 1.1384135484695435, "sad_grouped": 1.381113886833191},
    },
    "lowlevel": {
        "carve": {"kept_salient": 0.9947601773478436, "mean_out": 0.3710336685180664},
        "harmonize": {
            "f_before": 0.218145727021969,
            "f_after": 0.2745043953398982,
            "mean_change": 0.03359444439411163,
            # issue 19, recorded with its default (template fit after the guard). On this 128-px
            # kodim23 the guard rejects the palette step (F 0.218 -> 0.275) and takes the
            # "saturation-only" step (palette hues kept) + the template fit
            "f_default": 0.05482673715228978,
            "pit_gain_default": 11.279296875,
            "mits_gain_default": 0.06804514845029908,
            "mean_change_default": 0.021153101697564125,
        },
        "mask": {
            "iou": 0.6478549391699168,
            "mask_mean": 0.4346798360347748,
            # issue 19 (new defaults), recorded with them
            "iou_default": 0.9587040348118309,
            "mask_mean_default": 0.2901924252510071,
        },
        "recolor": {
            "spread_before": 20.789339065551758,
            "spread_after": 20.3101749420166,
            "mean_change": 0.012011338956654072,
            # re-recorded after issue 13 (see above); before: 20.515810 / 0.010917
            "spread_after_400": 20.71769142150879,
            "mean_change_400": 0.011265076696872711,
        },
        "retarget": {
            "seam_mean": 0.4112303555011749,
            "dnr_mean": 0.40936920046806335,
            "dnr_vgg": 0.8288121492301487,
        },
        # issue 19: lowlevel has no native semantic features; sad_grouped = 3-d features with
        # the new weighted k-means (100 restarts), recorded with it
        "softseg": {"sad": 0.3140915334224701, "sad_grouped": 0.34555572271347046},
    },
}

# Absolute error budget per metric (default: 1e-3 relative + 1e-4 absolute). The soft
# segmentation's eigensolver and the DNR optimisation depend on BLAS thread counts: 1%.
BUDGET = {
    "softseg.sad": 0.01 * 1.1384,
    "softseg.sad_grouped": 0.01 * 1.1384,
    "retarget.dnr_vgg": 0.01,
    "retarget.dnr_mean": 0.002,
}


@pytest.mark.slow
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_recorded_quality(tool):
    data = _data_dir()
    if data is None:
        pytest.skip("SEMPIX_DATA_DIR not set: recorded-quality fixtures unavailable")
    backend = _backend()
    rec = RECORDED.get(backend, {}).get(tool)
    if rec is None:
        pytest.skip(f"no recorded values for {tool} with the {backend} backend")
    got = TOOLS[tool](data, backend)
    for key, want in rec.items():
        assert key in got, f"{tool}: metric {key} missing"
        tol = BUDGET.get(f"{tool}.{key}", 1e-3 * abs(want) + 1e-4)
        assert abs(got[key] - want) <= tol, (
            f"{tool}.{key}: got {got[key]:.6f} vs recorded {want:.6f}"
        )


if __name__ == "__main__":  # print the current values (to record them)
    d = _data_dir()
    if d is None:
        sys.exit("set SEMPIX_DATA_DIR")
    be = sys.argv[2] if len(sys.argv) > 2 else _backend()
    names = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] else sorted(TOOLS)
    import time

    for n in names:
        t = time.perf_counter()
        print(n, be, repr(TOOLS[n](d, be)), f"{time.perf_counter() - t:.1f}s", flush=True)
