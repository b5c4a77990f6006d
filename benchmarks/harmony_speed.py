"""Harmonize before / after a code change, in one process: time per image and identical output.

Loads a second copy of sempix from another source tree (``--old-src``, e.g. a ``git worktree``
or ``git archive`` of an older commit's ``src``) under the package name ``sempix_old`` (its
imports are rewritten in a temporary folder), then, per image, runs ``harmonize_image`` of both
versions alternately (the order flips every image and pass, so load changes hit both alike):

* time: CPU and wall seconds per image (mean, median, and the fastest of ``--passes`` per image),
  the ratio new / old, and the ``np.sort`` anchor of ``benchmarks/harmony.py``, warm (numba
  compiled, prototypes cached);
* ``--check``: the outputs of the two versions compared on every image of ``--datasets``
  (max abs pixel difference, guard action and F values, template-fit counts, names, targets).

Run::

    mkdir -p /tmp/old && git archive 77f9a9c src | tar -x -C /tmp/old
    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data OMP_NUM_THREADS=1 \\
        nice -n 10 .venv/bin/python benchmarks/harmony_speed.py --old-src /tmp/old/src \\
        [--passes 5] [--threads 1] [--check --datasets kodak24,bsds-val,groups]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harmony import _anchor, _files, _load  # noqa: E402


def load_old(src: Path, tmp: Path):
    """Import ``src/sempix`` as ``sempix_old`` (a renamed copy under ``tmp``)."""
    dst = tmp / "sempix_old"
    shutil.copytree(src / "sempix", dst, ignore=shutil.ignore_patterns("__pycache__"))
    for p in dst.rglob("*.py"):
        text = re.sub(r"\bsempix\.", "sempix_old.", p.read_text())
        text = re.sub(r"\bfrom sempix import\b", "from sempix_old import", text)
        text = re.sub(r"(?m)^(\s*)import sempix$", r"\1import sempix_old", text)
        p.write_text(text)
    sys.path.insert(0, str(tmp))
    import sempix_old.palette as old

    return old


def _summary(res, guard_f=repr):
    g = res.info.get("guard") or {}
    tf = res.info.get("template_fit") or {}
    return {
        "guard": {k: guard_f(v) if isinstance(v, float) else v for k, v in g.items()},
        "template_fit": {k: guard_f(v) if isinstance(v, float) else v for k, v in tf.items()},
        "names": (list(res.source_names), list(res.target_names)),
        "target": np.asarray(res.target_rgb).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-src", type=Path, required=True, help="src folder of the old version")
    ap.add_argument("--data", type=Path, default=None, help="default $SEMPIX_DATA_DIR")
    ap.add_argument("--passes", type=int, default=3, help="timed passes over Kodak24")
    ap.add_argument("--threads", type=int, default=1, help="numba threads")
    ap.add_argument("--check", action="store_true", help="compare the outputs on --datasets")
    ap.add_argument("--datasets", default="kodak24", help="for --check (see harmony.py)")
    ap.add_argument("--size", type=int, default=500)
    args = ap.parse_args(argv)
    import numba

    numba.set_num_threads(args.threads)
    import sempix.palette as new

    data = args.data or Path(os.environ.get("SEMPIX_DATA_DIR", ""))
    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(args.old_src, Path(tmp))
        imgs = [_load(f, args.size) for f in _files(data, "kodak24", None)]
        if not imgs:
            print(f"no Kodak24 images under {data}", file=sys.stderr)
            return 2
        for mod in (old, new):  # warm: compile, load the prototypes
            mod.harmonize_image(imgs[11])
        la0 = os.getloadavg()
        t = {"old": [], "new": []}
        anchors = []
        for p in range(args.passes):
            for i, img in enumerate(imgs):
                anchors.append(_anchor())
                order = [("old", old), ("new", new)]
                for name, mod in order if (i + p) % 2 == 0 else order[::-1]:
                    w, c = time.perf_counter(), time.process_time()
                    mod.harmonize_image(img)
                    t[name].append((time.perf_counter() - w, time.process_time() - c))
        la1 = os.getloadavg()
        anc = float(np.mean(anchors))
        print(
            f"Kodak24, {len(imgs)} images x {args.passes} passes, numba threads {args.threads}, "
            f"os.cpu_count() = {os.cpu_count()}, load average {la0[0]:.1f} -> {la1[0]:.1f}, "
            f"anchor {anc * 1000:.1f} ms\n"
        )
        print("| version | CPU s mean | CPU s median | x anchor | wall s mean | fastest pass "
              "(CPU / wall) |\n|---|---|---|---|---|---|")
        arr = {}
        for name in ("old", "new"):
            x = np.array(t[name]).reshape(args.passes, len(imgs), 2)
            arr[name] = x
            best = x.min(axis=0)
            print(
                f"| {name} | {x[..., 1].mean():.4f} | {statistics.median(x[..., 1].ravel()):.4f} | "
                f"{x[..., 1].mean() / anc:.2f} | {x[..., 0].mean():.4f} | "
                f"{best[:, 1].mean():.4f} / {best[:, 0].mean():.4f} |"
            )
        print(
            f"\nnew / old: CPU {arr['new'][..., 1].mean() / arr['old'][..., 1].mean():.3f}, "
            f"wall {arr['new'][..., 0].mean() / arr['old'][..., 0].mean():.3f}"
        )
        if args.check:
            n = differ = 0
            worst = 0.0
            for d in [s.strip() for s in args.datasets.split(",") if s.strip()]:
                for f in _files(data, d, None):
                    img = _load(f, args.size)
                    a, b = old.harmonize_image(img), new.harmonize_image(img)
                    diff = float(np.abs(a.image - b.image).max())
                    same = _summary(a) == _summary(b)
                    worst = max(worst, diff)
                    n += 1
                    if diff > 0 or not same:
                        differ += 1
                        print(f"differs: {d}/{f.name}: max abs {diff:.3g}, info same {same}")
            print(f"\ncheck: {n} images, {differ} differ; max abs pixel difference {worst:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
