"""Agreement of the converted float32 PyTorch ADE20K network with the int8 LiteRT original.

Run:  python benchmarks/ade20k_torch_agreement.py [--bsds 20] [--device cpu]

Images: the ADE20K samples of $SEMPIX_DATA_DIR/ade20k and the first N BSDS500 val images.
Per image, on the valid (non-padding) part of the 129x129 output grid: argmax agreement (share of
grid samples with the same class), mean cosine similarity of the 256-channel penultimate
features, max |logit difference|; plus the full-resolution label agreement of
``compute_features`` (labels upsampled to the image). Also the network time of each runtime.
Acceptance (issue 14): argmax agreement >= 99 %, mean cosine >= 0.99.

``--reference-kernels`` also runs LiteRT without its default XNNPACK delegate (the reference
int8 "hybrid" kernels) and reports how well the two LiteRT kernel sets agree with each other:
the scale of the int8 model's own numerical noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bsds", type=int, default=20, help="number of BSDS500 val images")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--reference-kernels",
        action="store_true",
        help="also compare LiteRT without XNNPACK (reference kernels)",
    )
    args = ap.parse_args()
    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data:
        print("SEMPIX_DATA_DIR is not set", file=sys.stderr)
        return 2
    import torch

    from sempix.features import ade20k
    from sempix.features.post import argmax_upsampled
    from sempix.image import load_rgb

    torch.set_num_threads(os.cpu_count() or 1)
    ref = _reference_interpreter(ade20k.model_path()) if args.reference_kernels else None
    files = sorted((Path(data) / "ade20k").glob("ADE_*.jpg"))
    files += sorted((Path(data) / "bsds500" / "images" / "val").glob("*.jpg"))[: args.bsds]
    path = ade20k.model_path()
    # warm both runtimes (interpreter creation, conversion/cache load)
    warm = np.zeros((64, 64, 3), np.float32)
    ade20k.compute_lowres(warm, path, runtime="litert")
    ade20k.compute_lowres(warm, path, runtime="torch", device=args.device)
    print(f"os.cpu_count() = {os.cpu_count()}, torch threads {torch.get_num_threads()}, "
          f"device {args.device}")
    print(
        f"{'image':28s} {'grid':>9s} {'argmax %':>9s} {'full-res %':>10s} {'cos mean':>9s} "
        f"{'cos min':>8s} "
        f"{'max|dlogit|':>11s} {'litert s':>8s} {'torch s':>8s}"
        + ("  ref-vs-xnn % ref-vs-torch %" if ref else "")
    )
    rows = []
    for f in files:
        img = load_rgb(f)
        t = time.perf_counter()
        a = ade20k.compute_lowres(img, path, runtime="litert")
        tl = time.perf_counter() - t
        t = time.perf_counter()
        b = ade20k.compute_lowres(img, path, runtime="torch", device=args.device)
        tt = time.perf_counter() - t
        agree = float((a.logits.argmax(-1) == b.logits.argmax(-1)).mean())
        full = float(
            (
                argmax_upsampled(a.logits, a.ys, a.xs) == argmax_upsampled(b.logits, b.ys, b.xs)
            ).mean()
        )
        fa = a.features.reshape(-1, a.features.shape[-1]).astype(np.float64)
        fb = b.features.reshape(-1, b.features.shape[-1]).astype(np.float64)
        cos = (fa * fb).sum(1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1) + 1e-12)
        dl = float(np.abs(a.logits - b.logits).max())
        extra = ""
        rx = rt_ = np.nan
        if ref is not None:
            x, _ = ade20k.letterbox(img)
            hc, wc = a.logits.shape[:2]
            lr = ref(x)[:hc, :wc]
            rx = float((lr.argmax(-1) == a.logits.argmax(-1)).mean())
            rt_ = float((lr.argmax(-1) == b.logits.argmax(-1)).mean())
            extra = f"  {100 * rx:12.2f} {100 * rt_:14.2f}"
        rows.append(
            (
                agree,
                full,
                cos.mean(),
                cos.min(),
                dl,
                tl,
                tt,
                rx,
                rt_,
                a.logits.shape[0] * a.logits.shape[1],
            )
        )
        grid = f"{a.logits.shape[0]}x{a.logits.shape[1]}"
        print(
            f"{f.name[:28]:28s} {grid:>9s} {100 * agree:9.2f} {100 * full:10.2f} {cos.mean():9.5f} "
            f"{cos.min():8.4f} {dl:11.3f} {tl:8.2f} {tt:8.2f}" + extra
        )
    r = np.array(rows)
    pooled = float((r[:, 0] * r[:, 9]).sum() / r[:, 9].sum())
    mean_a, min_a = 100 * r[:, 0].mean(), 100 * r[:, 0].min()
    mean_f, min_f = 100 * r[:, 1].mean(), 100 * r[:, 1].min()
    print(
        f"\n{len(rows)} images: argmax agreement pooled over all samples {100 * pooled:.2f} %, "
        f"mean {mean_a:.2f} % (min {min_a:.2f} %), "
        f"full-res label agreement mean {mean_f:.2f} % (min {min_f:.2f} %), "
        f"penultimate cosine mean {r[:, 2].mean():.5f} (worst image {r[:, 2].min():.5f}, "
        f"worst sample {r[:, 3].min():.4f}), max |logit diff| {r[:, 4].max():.3f} "
        f"(median over images {np.median(r[:, 4]):.3f})"
    )
    if ref is not None:
        print(
            f"LiteRT reference kernels vs XNNPACK: argmax agreement mean "
            f"{100 * np.mean(r[:, 7]):.2f} % (min {100 * np.min(r[:, 7]):.2f} %); "
            f"reference kernels vs torch: mean {100 * np.mean(r[:, 8]):.2f} %"
        )
    print(
        f"network time median: litert {np.median(r[:, 5]):.2f} s, torch {np.median(r[:, 6]):.2f} s "
        f"(torch / litert = {np.median(r[:, 6]) / np.median(r[:, 5]):.2f})"
    )
    ok = r[:, 0].mean() >= 0.99 and r[:, 2].mean() >= 0.99
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"load average (1, 5, 15 min): {load}")
    print(f"acceptance (argmax >= 99 %, cosine >= 0.99): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


def _reference_interpreter(path):
    """LiteRT without the default (XNNPACK) delegate: returns run(x) -> logits (129, 129, C)."""
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from sempix.features.ade20k import get_runner

    logit_index = get_runner(path).logit_index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = Interpreter(
            model_path=str(path),
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            num_threads=os.cpu_count() or 1,
        )
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]

    def run(x):
        it.set_tensor(inp, x)
        it.invoke()
        return it.get_tensor(logit_index)[0].copy()

    return run


if __name__ == "__main__":
    sys.exit(main())
