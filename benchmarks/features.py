"""Feature-extraction speed for a 1 MP image: cold, warm, cache hit (and the other backends).

Run:  flock /tmp/sempix-bench.lock .venv/bin/python benchmarks/features.py [--image PATH] [--mp 1.0]

Runtime comparison (issue 14): ``--runtimes litert,torch [--sizes 0.25,1,4] [--device cpu]``
times the ade20k backend per runtime and image size, each case in a fresh process so that its
peak resident memory (ru_maxrss) is its own: cold (first call: interpreter creation or
converted-weights load), warm median, the network stage alone, peak RSS; ratios against LiteRT
at the same size. ``--device cuda`` adds torch on the GPU when one is present.

Needs SEMPIX_MODEL_DIR (ade20k model); the image defaults to $SEMPIX_DATA_DIR/kodak24/kodim05.png
upscaled to ~1 MP (falls back to scikit-image's astronaut). Targets (issue 2): ade20k warm
<= 1.5 s on 2 cores, cache hit <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def load_image(path: str | None, mp: float) -> tuple[np.ndarray, str]:
    if path is None:
        data = os.environ.get("SEMPIX_DATA_DIR")
        cand = Path(data) / "kodak24" / "kodim05.png" if data else None
        if cand is not None and cand.is_file():
            path = str(cand)
    if path is not None:
        im = Image.open(path).convert("RGB")
        name = Path(path).name
    else:
        from skimage.data import astronaut

        im = Image.fromarray(astronaut())
        name = "skimage astronaut"
    s = (mp * 1e6 / (im.width * im.height)) ** 0.5
    im = im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)
    return np.asarray(im, np.float32) / 255.0, name


def _child(runtime: str, mp: float, device: str, repeat: int, image: str | None) -> int:
    """One comparison case in this (fresh) process; prints one JSON line."""
    import json
    import resource

    img, _ = load_image(image, mp)
    from sempix.features import compute_features

    kw = {"backend": "ade20k", "cache": False, "strict": True, "runtime": runtime, "device": device}
    t0 = time.perf_counter()
    compute_features(img, **kw)
    cold = time.perf_counter() - t0
    warm, net = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fm = compute_features(img, **kw)
        warm.append(time.perf_counter() - t0)
        net.append(fm.meta["timings"]["network"])
    if device == "cuda":
        import torch

        peak_gpu = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_gpu = None
    print(json.dumps({"runtime": fm.meta["runtime"], "shape": list(img.shape[:2]), "cold": cold,
                      "warm": statistics.median(warm), "network": statistics.median(net),
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "gpu_mb": peak_gpu}))
    return 0


def compare_runtimes(args) -> int:
    import json
    import subprocess

    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    sizes = [float(x) for x in args.sizes.split(",")]
    cases = [(r, "cpu") for r in runtimes]
    if args.device == "cuda" and "torch" in runtimes:
        cases.append(("torch", "cuda"))
    print(f"ade20k runtimes; os.cpu_count() = {os.cpu_count()}; {args.repeat} warm runs per case; "
          "each case in a fresh process")
    res: dict[tuple, dict] = {}
    for mp in sizes:
        for rt, dev in cases:
            cmd = [sys.executable, __file__, "--_child", rt, str(mp), dev, str(args.repeat)]
            if args.image:
                cmd += ["--image", args.image]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if out.returncode or not line:
                print(f"{rt}/{dev} at {mp} MP failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            res[(mp, rt, dev)] = json.loads(line[-1])
    print(f"\n{'MP':>5s} {'size':>11s} {'runtime':>10s} {'cold s':>7s} {'warm s':>7s} "
          f"{'net s':>7s} "
          f"{'peak RSS MB':>11s} {'warm x litert':>13s} {'net x litert':>12s}")
    for mp in sizes:
        anchor = res.get((mp, "litert", "cpu"))
        for rt, dev in cases:
            r = res.get((mp, rt, dev))
            if r is None:
                continue
            wx = f"{r['warm'] / anchor['warm']:13.2f}" if anchor else f"{'-':>13s}"
            nx = f"{r['network'] / anchor['network']:12.2f}" if anchor else f"{'-':>12s}"
            size = f"{r['shape'][1]}x{r['shape'][0]}"
            gpu = f" (GPU peak {r['gpu_mb']:.0f} MB)" if r.get("gpu_mb") else ""
            print(f"{mp:5.2f} {size:>11s} {r['runtime']:>10s} {r['cold']:7.2f} {r['warm']:7.2f} "
                  f"{r['network']:7.2f} {r['rss_mb']:11.0f} {wx} {nx}{gpu}")
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"load average (1, 5, 15 min): {load}; cores {os.cpu_count()}")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        rt, mp, dev, rep = sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        image = sys.argv[sys.argv.index("--image") + 1] if "--image" in sys.argv else None
        return _child(rt, mp, dev, rep, image)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=None)
    ap.add_argument("--mp", type=float, default=1.0, help="megapixels")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--guided", action="store_true", help="also time guided=True")
    ap.add_argument("--runtimes", default=None, help="compare ade20k runtimes, e.g. litert,torch")
    ap.add_argument("--sizes", default="0.25,1,4", help="megapixels of the runtime comparison")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="also torch on CUDA")
    args = ap.parse_args()
    os.environ.setdefault("SEMPIX_CACHE_DIR", tempfile.mkdtemp(prefix="sempix-bench-"))
    if args.runtimes:
        return compare_runtimes(args)

    img, name = load_image(args.image, args.mp)
    H, W = img.shape[:2]
    print(
        f"image: {name} resized to {W}x{H} ({H * W / 1e6:.2f} MP); os.cpu_count() = "
        f"{os.cpu_count()}"
    )
    t = time.perf_counter()
    from sempix.features import compute_features

    print(f"import sempix.features: {time.perf_counter() - t:.2f} s")

    rows: list[tuple[str, float, float, str]] = []

    def timed(label: str, repeat: int = 1, note: str = "", **kw):
        times = []
        fm = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            fm = compute_features(img, **kw)
            _ = float(np.asarray(fm.features[H // 2, W // 2, 0]))  # touch the data
            times.append(time.perf_counter() - t0)
        rows.append(
            (
                label,
                statistics.median(times),
                min(times),
                note or f"D={fm.dim}, cache {fm.meta.get('cache')}",
            )
        )
        return fm

    fm = timed(
        "ade20k cold (interpreter load + first run)", backend="ade20k", cache=False, strict=True
    )
    timings = fm.meta.get("timings", {})
    timed(
        f"ade20k warm (median of {args.repeat})",
        args.repeat,
        backend="ade20k",
        cache=False,
        strict=True,
    )
    fm = compute_features(img, backend="ade20k", cache=False, strict=True)
    stage = ", ".join(f"{k} {v:.2f}" for k, v in fm.meta["timings"].items())
    timed(
        "ade20k warm dim=3 PCA (median)",
        args.repeat,
        backend="ade20k",
        cache=False,
        dim=3,
        reduce="pca",
    )
    timed("ade20k warm dim=128 (median)", args.repeat, backend="ade20k", cache=False, dim=128)
    compute_features(img, backend="ade20k")  # store
    timed(f"ade20k cache hit (median of {args.repeat})", args.repeat, backend="ade20k")
    timed("ade20k dim=128 cache miss (compute + store)", 1, backend="ade20k", dim=128)
    timed("ade20k dim=128 cache hit", args.repeat, backend="ade20k", dim=128)
    timed("lowlevel warm (median)", args.repeat, backend="lowlevel", cache=False)
    if args.guided:
        timed("ade20k warm guided=True", 1, backend="ade20k", cache=False, guided=True)

    warm = next(r[1] for r in rows if r[0].startswith("ade20k warm ("))
    warm_min = next(r[2] for r in rows if r[0].startswith("ade20k warm ("))
    print(f"\n{'case':48s} {'median s':>8s} {'min s':>7s} {'x warm':>7s}  note")
    for label, sec, best, note in rows:
        print(f"{label:48s} {sec:8.3f} {best:7.3f} {sec / warm:7.2f}  {note}")
    print(
        f"\nwarm stages (s): {stage}; first-run stages: "
        + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
    )
    hit = next(r[1] for r in rows if r[0].startswith("ade20k cache hit"))
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"load average (1, 5, 15 min): {load}")
    print(
        f"targets: warm median {warm:.2f} s, best {warm_min:.2f} s (<= 1.5 s: "
        f"{'OK' if warm <= 1.5 else 'MISSED'}), "
        f"cache hit {hit * 1000:.0f} ms (<= 50 ms: {'OK' if hit <= 0.05 else 'MISSED'}), "
        f"cores {os.cpu_count()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
