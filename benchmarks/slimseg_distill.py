"""SlimSeg measurements 3 and 4: the distilled ADE20K slimmable network.

Sub-commands (each prints a table, the core count and the load average, and writes JSON into
``--out``, default ``.bench/slimseg``):

``distill``  distil the ade20k network on BSDS500 *train* (200 photos, ``$SEMPIX_DATA_DIR``) into
             ``<out>/slimseg_ade20k.pt`` (resumable; budget = ``--steps/--batch/--crop``).
``agree``    agreement with the teacher on BSDS500 *val* (never seen in training): pixel accuracy
             and mIoU of each width's labels against the teacher's labels, on the stride-4 grid of
             the 513 letterbox (the teacher's own resolution). ``--which start`` evaluates the
             *undistilled* start instead (importance-ordered slices of the ADE20K weights with
             calibrated batch norms): what the distillation itself bought.
``speed``    CPU seconds per forward of each exported width at 0.25 MP (500x500) and 1 MP
             (1000x1000), widths interleaved round by round in one process (median of ``--repeat``),
             with the ratio to x1.0 measured in the same rounds.
``tools``    measurement 4: mask best-tau IoU (the ``semantic`` and ``default`` rows of
             ``benchmarks/mask_quality.py``, its segments, clicks and thresholds, on the first
             ``--limit`` BSDS val images) and carve quality (``benchmarks/carve_quality.py``
             variants (b) and (d) on the first ``--limit`` SOD images) with features from
             ade20k and from the slim network at each width.

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data OMP_NUM_THREADS=1 \
        python benchmarks/slimseg_distill.py distill --steps 50 --batch 4 --crop 193 --flip \
            --limit 144     # the run reported in docs/slimseg_distill.md (crops, flips)
    python benchmarks/slimseg_distill.py agree --limit 50
    python benchmarks/slimseg_distill.py speed --repeat 5 --threads 2
    python benchmarks/slimseg_distill.py tools --limit 20 --features ade20k,0.25,0.5,1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _env() -> str:
    load = os.getloadavg()
    return (f"os.cpu_count() = {os.cpu_count()}, load average "
            f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


def _data() -> Path:
    d = os.environ.get("SEMPIX_DATA_DIR")
    if not d or not (Path(d) / "bsds500").is_dir():
        sys.exit("set SEMPIX_DATA_DIR (folder with bsds500/)")
    return Path(d)


def _teacher_id() -> str:
    from sempix.features.ade20k import model_path
    from sempix.features.cache import file_identity

    return file_identity(model_path())


def _save(out: Path, name: str, obj) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(obj, indent=1))


# ------------------------------------------------------------------------------------------------


def cmd_distill(args) -> None:
    from sempix.slimseg.distill import DistillOptions, distill

    photos = sorted((_data() / "bsds500" / "images" / "train").glob("*.jpg"))
    if args.limit:
        photos = photos[: args.limit]
    opts = DistillOptions(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr,
                          grad_clip=args.grad_clip, flip=args.flip,
                          checkpoint_every=args.checkpoint_every, seed=0)
    t0 = time.time()
    last = [0.0]

    def progress(f, msg):
        if time.time() - last[0] > 30:
            last[0] = time.time()
            print(f"{time.time() - t0:7.0f} s  {100 * f:5.1f} %  {msg}  ({_env()})", flush=True)

    res = distill(photos, args.out / "slimseg_ade20k.pt", opts, cache_root=args.out / "teacher",
                  progress=progress)
    info = {"steps": res.step, "photos": res.photos, "seconds": res.seconds,
            "options": {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in opts.__dict__.items()},
            "logs": res.logs, "env": _env()}
    _save(args.out, "distill", info)
    print(json.dumps(info, indent=1))


# ------------------------------------------------------------------------------------------------


def _grid_labels(net, tt, device="cpu"):
    """argmax labels of a plain DeepLabV3Plus on the letterbox of cached teacher targets."""
    import torch

    h, w = tt.image.shape[:2]
    x = np.full((1, 513, 513, 3), 0.5, np.float32)
    x[0, :h, :w] = tt.image.astype(np.float32) / 255.0
    t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        lg = net(t).logits[0]
    gh, gw = tt.index.shape[:2]
    return lg[:, :gh, :gw].argmax(0).numpy()


def _nets_of(export: dict):
    import torch

    from sempix.nets.deeplab import DeepLabConfig, DeepLabV3Plus

    out = {}
    for k, e in export["nets"].items():
        net = DeepLabV3Plus(DeepLabConfig.from_dict(e["config"]))
        net.load_state_dict(e["state_dict"])
        out[float(k)] = net.eval().to(memory_format=torch.channels_last)
    return dict(sorted(out.items()))


def _confusion(cm, pred, ref, n):
    cm += np.bincount(ref.ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)


def _scores(cm):
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    present = cm.sum(1) > 0  # classes the teacher uses
    return float(tp.sum() / max(1, cm.sum())), float(np.mean(tp[present] / union[present]))


def _start_export(widths, crop, size, topk, out):
    """Export of the undistilled start: importance-ordered slices, batch norms calibrated on
    training crops exactly as :func:`sempix.slimseg.distill.distill` does."""
    from sempix.slimseg.distill import export_model, load_targets, sample_batch, teacher_cache_dir
    from sempix.slimseg.model import calibrate_bn, pretrained_slimseg

    start = pretrained_slimseg(widths=tuple(widths), boundary_head=False, seed=0)
    train_dir = teacher_cache_dir(_teacher_id(), size, topk, out / "teacher")
    names = sorted(p.stem for p in (_data() / "bsds500" / "images" / "train").glob("*.jpg"))
    from sempix.slimseg.distill import photo_hash

    hashes = {photo_hash(_data() / "bsds500" / "images" / "train" / f"{n}.jpg") for n in names}
    tr = [load_targets(p) for p in sorted(train_dir.glob("*.npz")) if p.stem in hashes]
    calib = sample_batch(tr, max(2, min(8, len(tr))), crop, rng=np.random.RandomState(0))[0]
    calibrate_bn(start, calib)
    return export_model(start)


def cmd_agree(args) -> None:
    import torch

    from sempix.slimseg.distill import cache_teacher_targets, load_targets, teacher_cache_dir

    torch.set_num_threads(args.threads)
    models = {}
    if args.which in ("distilled", "both"):
        ckpt = torch.load(args.out / "slimseg_ade20k.pt", weights_only=True)
        models["distilled"] = _nets_of(ckpt["export"])
        opt = dict(ckpt["config"]["model"]["distill"], steps_done=int(ckpt["step"]))
    else:
        opt = {"widths": args.widths, "crop": args.crop, "size": 513, "topk": 5}
    if args.which in ("start", "both"):
        models["start (no distillation)"] = _nets_of(
            _start_export(opt["widths"], opt["crop"], opt["size"], opt["topk"], args.out))
    photos = sorted((_data() / "bsds500" / "images" / "val").glob("*.jpg"))[: args.limit]
    tdir = teacher_cache_dir(_teacher_id(), opt["size"], opt["topk"], args.out / "teacher")
    files = cache_teacher_targets(photos, tdir, size=opt["size"], topk=opt["topk"])
    n = 151
    cms = {(m, w): np.zeros((n, n), np.int64) for m, nets in models.items() for w in nets}
    t0 = time.time()
    for i, f in enumerate(files):
        tt = load_targets(f)
        ref = tt.index[..., 0].astype(np.int64)
        for m, nets in models.items():
            for w, net in nets.items():
                _confusion(cms[(m, w)], _grid_labels(net, tt), ref, n)
        print(f"\r{i + 1}/{len(files)} val photos, {time.time() - t0:.0f} s", end="",
              file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows = []
    print(f"\nAgreement with the teacher (ade20k, torch) on {len(files)} BSDS500 val photos "
          f"(never seen in distillation), stride-4 grid of the 513 letterbox; {_env()}\n")
    print("| model | width | pixel agreement | mIoU vs teacher labels |")
    print("|---|---:|---:|---:|")
    for (m, w), cm in cms.items():
        acc, miou = _scores(cm)
        rows.append({"model": m, "width": w, "pixel_acc": acc, "miou": miou})
        print(f"| {m} | x{w:g} | {100 * acc:.1f} % | {100 * miou:.1f} % |")
    _save(args.out, f"agree-{args.which}", {"photos": len(files), "rows": rows, "env": _env(),
                                            "distill": opt})


# ------------------------------------------------------------------------------------------------


def cmd_speed(args) -> None:
    import torch

    from sempix.slimseg.distill import export_model
    from sempix.slimseg.model import count_flops, pretrained_slimseg

    torch.set_num_threads(args.threads)
    # speed does not depend on the weights: the exported start of the same architecture
    slim = pretrained_slimseg(widths=tuple(args.widths), boundary_head=False)
    nets = _nets_of(export_model(slim))
    sizes = {"0.25 MP (500x500)": 500, "1 MP (1000x1000)": 1000}
    res = []
    print(f"\nCPU forward time per width (exported plain networks, batch 1, torch "
          f"{torch.__version__}, {args.threads} threads, widths interleaved, median of "
          f"{args.repeat}); start: {_env()}\n")
    print("| input | width | GMACs | params (M) | seconds | speed-up vs x1.0 |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, s in sizes.items():
        x = torch.rand(1, 3, s, s).contiguous(memory_format=torch.channels_last)
        times = {w: [] for w in nets}
        with torch.inference_mode():
            for net in nets.values():
                net(x)  # warm-up
            for _ in range(args.repeat):
                for w, net in nets.items():
                    t = time.perf_counter()
                    net(x)
                    times[w].append(time.perf_counter() - t)
        full = float(np.median(times[max(nets)]))
        for w in nets:
            med = float(np.median(times[w]))
            fl = count_flops(slim, w, (s, s))
            res.append({"input": label, "width": w, "seconds": med, "speedup": full / med,
                        "macs": fl["macs"], "params": fl["params"], "all": times[w]})
            print(f"| {label} | x{w:g} | {fl['macs'] / 1e9:.2f} | {fl['params'] / 1e6:.2f} | "
                  f"{med:.3f} | {full / med:.2f}x |")
    print(f"\nend: {_env()}")
    _save(args.out, "speed", {"rows": res, "threads": args.threads, "env": _env()})


# ------------------------------------------------------------------------------------------------


def _mask_rows(mq, backend: str, limit: int) -> dict:
    """The ``semantic`` and ``default`` rows of ``benchmarks/mask_quality.py`` (same segments,
    clicks, thresholds and IoU), without its other methods (time)."""
    from sempix.image import read_image
    from sempix.mask import DEFAULT_TAU, MaskSource, mask_features

    root = _data() / "bsds500"
    images = sorted((root / "images" / "val").glob("*.jpg"))[:limit]
    taus = np.linspace(0.0, mq.TAU_MAX, 3 * mq.N_TAU + 1)[1:]
    i_def = int(np.argmin(np.abs(taus - DEFAULT_TAU)))
    sem_best, def_best, def_at = [], [], []
    feat_s = 0.0
    for path in images:
        segs = mq.load_segments(root / "groundTruth" / "val" / (path.stem + ".mat"), 4, 0.02)
        img = read_image(path).rgb
        if not segs or segs[0].shape != img.shape[:2]:
            continue
        t = time.perf_counter()
        fm = mask_features(img, backend, strict=True)
        feat_s += time.perf_counter() - t
        src = MaskSource(img, fm)
        for seg in segs:
            pt = mq.interior_point(seg)
            sem, _lum = src.distances(pt, "luminance")
            c_sem = mq.iou_curve(sem, seg, taus)
            c_def = mq.iou_curve(src.distance([pt]), seg, taus)
            sem_best.append(c_sem.max())
            def_best.append(c_def.max())
            def_at.append(c_def[i_def])
    return {
        "mask_semantic_best_tau": float(np.mean(sem_best)),
        "mask_default_best_tau": float(np.mean(def_best)),
        "mask_default_iou_at_tau": float(np.mean(def_at)),
        "mask_segments": len(sem_best),
        "mask_feature_seconds": feat_s,
    }


def cmd_tools(args) -> None:
    import torch

    sys.path.insert(0, str(HERE))
    import carve_quality
    import mask_quality

    from sempix.carve import carve
    from sempix.features import compute_features, protect_mask

    ck = args.out / "slimseg_ade20k.pt"
    os.environ["SEMPIX_SLIMSEG_CHECKPOINT"] = str(ck)
    configs = [("ade20k", None)] if "ade20k" in args.features else []
    slim = [float(v) for v in args.features if v != "ade20k"]
    if slim:
        widths = [float(w) for w in torch.load(ck, weights_only=True)["export"]["widths"]]
        configs += [("slimseg", w) for w in widths if w in slim]
    rows = []
    print(f"\nMeasurement 4 (start: {_env()})\n")
    for backend, w in configs:
        name = backend if w is None else f"slimseg x{w:g}"
        if w is not None:
            os.environ["SEMPIX_SLIMSEG_WIDTH"] = f"{w:g}"
        t0 = time.time()
        mq = _mask_rows(mask_quality, backend, args.limit)
        t_mask = time.time() - t0
        # carve quality, variants (b) and (d) of benchmarks/carve_quality.py
        from PIL import Image

        items = list(carve_quality.pairs(_data()))[: args.limit]
        fb, fd = [], []
        t0 = time.time()
        for ip, mp in items:
            img = np.asarray(Image.open(ip).convert("RGB"), dtype=np.float32) / 255.0
            m = np.asarray(Image.open(mp).convert("L").resize(img.shape[1::-1]), np.float32)
            m = (m > 127).astype(np.float32)
            fm = compute_features(img, backend, dim=16)
            tw = round(img.shape[1] * 0.8)
            pm = protect_mask(fm, "auto")[0]
            also = [m] if pm is None else [m, pm.astype(np.float32)]
            rb = carve(img, tw, features=fm.features, also=also, lam=0.2)
            rd = carve(img, tw, features=fm, also=also, lam=0.2, protect="auto")
            fb.append(carve_quality.removed_fraction(m, rb.also[0]))
            fd.append(carve_quality.removed_fraction(m, rd.also[0]))
        row = {
            "features": name,
            **mq,
            "mask_seconds": t_mask,
            "carve_b_removed": float(np.mean(fb)),
            "carve_d_removed": float(np.mean(fd)),
            "carve_images": len(items),
            "carve_seconds": time.time() - t0,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| features | mask best-tau IoU, semantic | mask best-tau IoU, default | mask IoU at "
          "default tau | salient removed, carve (b) | salient removed, carve (d) protect=auto |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['features']} | {r['mask_semantic_best_tau']:.3f} | "
              f"{r['mask_default_best_tau']:.3f} | {r['mask_default_iou_at_tau']:.3f} | "
              f"{r['carve_b_removed']:.4f} | {r['carve_d_removed']:.4f} |")
    print(f"\n{rows[0]['mask_segments']} segments of {args.limit} BSDS val images; "
          f"{rows[0]['carve_images']} SOD images resized to 80 % width; end: {_env()}")
    _save(args.out, "tools-" + "-".join(args.features), {"rows": rows, "limit": args.limit,
                                                         "env": _env()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(".bench/slimseg"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("distill")
    d.add_argument("--steps", type=int, default=150)
    d.add_argument("--batch", type=int, default=4)
    d.add_argument("--crop", type=int, default=513)
    d.add_argument("--flip", action="store_true")
    d.add_argument("--lr", type=float, default=0.003)
    d.add_argument("--grad-clip", type=float, default=5.0)
    d.add_argument("--limit", type=int, default=None, help="first N training photos")
    d.add_argument("--checkpoint-every", type=int, default=10)
    a = sub.add_parser("agree")
    a.add_argument("--limit", type=int, default=100)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--which", choices=["start", "distilled", "both"], default="both")
    a.add_argument("--widths", type=lambda v: [float(x) for x in v.split(",")],
                   default=[0.25, 0.5, 0.75, 1.0], help="widths of the start (--which start)")
    a.add_argument("--crop", type=int, default=193, help="calibration crop (--which start)")
    s = sub.add_parser("speed")
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--widths", type=lambda v: [float(x) for x in v.split(",")],
                   default=[0.25, 0.5, 0.75, 1.0])
    t = sub.add_parser("tools")
    t.add_argument("--limit", type=int, default=20)
    t.add_argument("--features", type=lambda v: v.split(","),
                   default=["ade20k", "0.25", "0.5", "1"], help="ade20k and/or slimseg widths")
    args = ap.parse_args(argv)
    {"distill": cmd_distill, "agree": cmd_agree, "speed": cmd_speed, "tools": cmd_tools}[
        args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
