"""Seam-carving speed: sempix vs the `seam-carving` package (and ImageMagick liblqr when installed).

One process, one image, one target: a RetargetMe source (or any photo given with --image) resized to
1024 px wide (about 1024x813), carved to 80% width. Prints a table and the ratios; times are medians
of --repeat runs after a warm-up (numba compilation excluded; it is cached on disk anyway).

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \
        .venv/bin/python benchmarks/carve.py [--image PHOTO] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def median_time(fn, repeat):
    ts = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def find_image(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    data = os.environ.get("SEMPIX_DATA_DIR")
    if data:
        p = Path(data) / "retargetme" / "001" / "src.jpg"
        if p.is_file():
            return p
    import skimage

    return Path(skimage.data.__path__[0]) / "chelsea.png"


def imagemagick():
    """(path, has liquid-rescale, version line) of an ImageMagick `convert`/`magick`, or None."""
    for name in ("magick", "convert-im6.q16", "/usr/bin/convert", "convert"):
        exe = shutil.which(name)
        if not exe:
            continue
        try:
            v = subprocess.run(
                [exe, "-version"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if "ImageMagick" not in v or "not installed" in v:
            continue
        return exe, ("lqr" in v.lower()), v.splitlines()[0]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=None)
    ap.add_argument("--width", type=int, default=1024, help="resize the photo to this width first")
    ap.add_argument("--ratio", type=float, default=0.8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default="ade20k")
    args = ap.parse_args()

    from sempix.carve import carve, reduce_features
    from sempix.features import compute_features

    src = find_image(args.image)
    im = Image.open(src).convert("RGB")
    h = round(im.height * args.width / im.width)
    im = im.resize((args.width, h), Image.BICUBIC)
    u8 = np.asarray(im)
    img = u8.astype(np.float32) / 255.0
    H, W = img.shape[:2]
    tw = round(W * args.ratio)
    print(
        f"image: {src} upscaled to {W}x{H}, target {tw}x{H} ({args.ratio:.0%} width); "
        f"os.cpu_count() = {os.cpu_count()}; median of {args.repeat}"
    )

    # warm-up (numba compile / cache load) for every code path we time
    small = img[:40, :50]
    for e in ("forward", "backward"):
        carve(small, 45, energy=e)
        carve(
            small,
            45,
            energy=e,
            features=np.random.default_rng(0).random((40, 50, 16), dtype=np.float32),
        )

    rows = []
    t_rgb, r_rgb = median_time(lambda: carve(img, tw, energy="forward"), args.repeat)
    rows.append(("sempix RGB-only (lam=0), forward", t_rgb))
    t_rgb_b, _ = median_time(lambda: carve(img, tw, energy="backward"), args.repeat)
    rows.append(("sempix RGB-only (lam=0), backward", t_rgb_b))

    import seam_carving

    seam_carving.resize(u8[:40, :50], (45, 40), energy_mode="forward")  # compile
    seam_carving.resize(u8[:40, :50], (45, 40), energy_mode="backward")
    t_sc, _ = median_time(
        lambda: seam_carving.resize(u8, (tw, H), energy_mode="forward"), args.repeat
    )
    rows.append(("seam-carving package, forward", t_sc))
    t_sc_b, _ = median_time(
        lambda: seam_carving.resize(u8, (tw, H), energy_mode="backward"), args.repeat
    )
    rows.append(("seam-carving package, backward", t_sc_b))

    t_lqr = None
    im_info = imagemagick()
    if im_info is None:
        lqr_note = "ImageMagick not installed: liblqr not timed"
    elif not im_info[1]:
        lqr_note = f"{im_info[2]}: built WITHOUT liblqr (no -liquid-rescale): not timed"
    else:
        with tempfile.TemporaryDirectory() as d:
            inp, outp = Path(d) / "in.png", Path(d) / "out.png"
            im.save(inp)
            cmd = [im_info[0], str(inp), "-liquid-rescale", f"{tw}x{H}!", str(outp)]
            t_lqr, _ = median_time(
                lambda: subprocess.run(cmd, check=True, capture_output=True), args.repeat
            )
        rows.append(("ImageMagick -liquid-rescale (whole process)", t_lqr))
        lqr_note = f"{im_info[2]} (liblqr)"

    # semantic carving with precomputed features (what the CLI asks the backend for: 16 dims)
    t0 = time.perf_counter()
    fm = compute_features(img, args.backend, dim=16, cache=False)
    t_feat = time.perf_counter() - t0
    f16 = fm.features
    fm32 = compute_features(img, args.backend, dim=32, cache=False)
    sem_note = (
        f"features: {fm.backend} (semantic={fm.semantic}), 16 dims, computed in {t_feat:.2f} s "
        "(not in the times)"
    )
    t_sem, _ = median_time(lambda: carve(img, tw, features=f16, lam=0.2), args.repeat)
    rows.append(("sempix semantic lam=0.2, 16-d features (default)", t_sem))
    t_semf, _ = median_time(
        lambda: carve(img, tw, features=f16, lam=0.2, semantic_energy="forward"), args.repeat
    )
    rows.append(("sempix semantic lam=0.2, 16-d, semantic forward costs", t_semf))
    t_sem32, _ = median_time(lambda: carve(img, tw, features=fm32.features, lam=0.2), args.repeat)
    rows.append(("sempix semantic lam=0.2, 32-d input (PCA->16 incl.)", t_sem32))
    t_sem8, _ = median_time(
        lambda: carve(img, tw, features=reduce_features(f16, 8), lam=0.2), args.repeat
    )
    rows.append(("sempix semantic lam=0.2, 8-d features", t_sem8))
    t_sem_b, _ = median_time(
        lambda: carve(img, tw, features=f16, lam=0.2, energy="backward"), args.repeat
    )
    rows.append(("sempix semantic lam=0.2, 16-d, backward", t_sem_b))

    print()
    print("| method | time (s) |")
    print("|---|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.3f} |")
    print()
    print(f"speed-up vs seam-carving (forward):  {t_sc / t_rgb:.1f}x   (target >= 6x)")
    print(f"speed-up vs seam-carving (backward): {t_sc_b / t_rgb_b:.1f}x")
    if t_lqr is not None:
        print(f"sempix RGB forward vs liblqr:        {t_lqr / t_rgb:.2f}x faster")
    print(f"semantic / RGB-only (forward):       {t_sem / t_rgb:.2f}x   (target <= 1.5x)")
    print(f"semantic (forward costs) / RGB-only: {t_semf / t_rgb:.2f}x")
    print(f"semantic 32-dim input / RGB-only:    {t_sem32 / t_rgb:.2f}x")
    print(f"note: {lqr_note}")
    print(f"note: {sem_note}")
    print(f"output sizes: sempix {r_rgb.image.shape[1]}x{r_rgb.image.shape[0]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
