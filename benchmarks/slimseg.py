"""SlimSeg measurements 1 and 2 on CamVid (on demand; trains 10 networks).

1. CamVid val mIoU per width: independent networks (one per width), slimmable without KD and
   boundary ("plain"), + stepwise KD ("kd"), + boundary supervision ("full"); anchor = the
   independent network of the same width (delta in mIoU points).
2. Teacher ablation at the smallest widths: prev (= "full") vs largest vs mean vs larger.

Every variant gets the SAME budget (steps x batch x crop, working size, schedule, seed and the
same ADE20K initialisation sliced to the width). Each run is a subprocess (``--jobs`` at once,
``nice -n 10``, one torch thread); finished runs are kept in ``--out`` (``NAME.pt`` + ``NAME.json``)
and skipped when the script is run again, so an interrupted benchmark continues.

    python benchmarks/slimseg.py --steps 120 --size 160x120 --crop 112 --batch 4 --jobs 3
    python benchmarks/slimseg.py --tables-only      # print the tables of the finished runs

Needs ``$SEMPIX_DATA_DIR/camvid`` and the ADE20K model (``$SEMPIX_MODEL_DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WIDTHS = (0.25, 0.5, 0.75, 1.0)
# name -> TrainOptions overrides
VARIANTS = {
    "full": {},
    "plain": {"kd": False, "boundary": False},
    "kd": {"boundary": False},
    **{f"indep{w:g}": {"independent": w, "boundary": False} for w in WIDTHS},
    "largest": {"teacher": "largest"},
    "mean": {"teacher": "mean"},
    "larger": {"teacher": "larger"},
}


def _pair(text: str) -> tuple[int, int]:
    if "x" in text:
        w, h = (int(v) for v in text.split("x"))
        return h, w
    return int(text), int(text)


def run_one(name: str, args) -> None:
    """Train + evaluate one variant (in this process) and write NAME.json."""
    import torch

    torch.set_num_threads(1)
    from sempix.slimseg import TrainOptions, evaluate_slimseg, train_slimseg

    out = Path(args.out)
    data = Path(args.data)
    kw = dict(VARIANTS[name])
    opts = TrainOptions(steps=args.steps, batch=args.batch, size=_pair(args.size),
                        crop=_pair(args.crop), scale=(0.75, 1.5), seed=args.seed, threads=1,
                        checkpoint_every=25, limit=args.limit, **kw)
    ck = out / f"{name}.pt"
    t0 = time.time()
    resume = ck.exists()
    r = train_slimseg(data, ck, opts, resume=resume)
    train_s = time.time() - t0
    t1 = time.time()
    ev = evaluate_slimseg(data, ck, speed=False, limit=args.eval_limit)
    res = {"name": name, "options": opts.to_dict(), "train_seconds": train_s,
           "eval_seconds": time.time() - t1, "final_loss": r["loss"], "resumed": resume,
           "load_after": os.getloadavg()[0], "eval": ev}
    tmp = out / f".{name}.json.part"
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, out / f"{name}.json")


def _load(out: Path) -> dict:
    res = {}
    for p in out.glob("*.json"):
        d = json.loads(p.read_text())
        if isinstance(d, dict) and "name" in d:
            res[d["name"]] = d
    return res


def _miou(res: dict, name: str, w: float) -> float | None:
    d = res.get(name)
    if d is None:
        return None
    for row in d["eval"]["widths"]:
        if abs(row["width"] - w) < 1e-9:
            return 100 * row["miou"]
    return None


def _fmt(v) -> str:
    return "   -  " if v is None else f"{v:6.1f}"


def tables(out: Path, speed: bool) -> None:
    res = _load(out)
    if not res:
        print("no finished runs in", out)
        return
    any_d = next(iter(res.values()))
    o = any_d["options"]
    print(f"cores: {os.cpu_count()}, load average now: {os.getloadavg()[0]:.1f}")
    print(f"budget per variant: {o['steps']} SGD steps x batch {o['batch']}, crop "
          f"{o['crop'][1]}x{o['crop'][0]} from images at {o['size'][1]}x{o['size'][0]} "
          f"(scale {o['scale'][0]}-{o['scale'][1]}, flip), lr {o['lr']} poly {o['power']}, "
          f"seed {o['seed']}, init ADE20K (x1.0, importance-ordered channels)")
    print(f"val: {any_d['eval']['images']} CamVid val images at "
          f"{any_d['eval']['size'][1]}x{any_d['eval']['size'][0]}")
    print()
    print("1. CamVid val mIoU (%) per width; delta = vs the independent network of that width")
    print("width | indep. | plain | +KD   | +KD+bnd (full) | full - indep.")
    for w in WIDTHS:
        ind = _miou(res, f"indep{w:g}", w)
        full = _miou(res, "full", w)
        delta = None if ind is None or full is None else full - ind
        print(f"x{w:<5g}| {_fmt(ind)} | {_fmt(_miou(res, 'plain', w))} | "
              f"{_fmt(_miou(res, 'kd', w))} | {_fmt(full)}         | "
              f"{'  -' if delta is None else f'{delta:+.1f}'}")
    print()
    print("2. teacher ablation (full model: KD + boundary), CamVid val mIoU (%)")
    print("width | prev  | largest | mean  | larger")
    for w in WIDTHS[:2]:
        print(f"x{w:<5g}| {_fmt(_miou(res, 'full', w))} | {_fmt(_miou(res, 'largest', w))}  | "
              f"{_fmt(_miou(res, 'mean', w))} | {_fmt(_miou(res, 'larger', w))}")
    print()
    print("run times (minutes, wall, shared machine) and load average at the end of each run")
    for n in VARIANTS:
        if n in res:
            d = res[n]
            print(f"  {n:9s} train {d['train_seconds'] / 60:5.1f}  eval "
                  f"{d['eval_seconds'] / 60:4.1f}  load {d['load_after']:.1f}"
                  f"{'  (resumed)' if d['resumed'] else ''}")
    if speed and "full" in res:
        _speed(out / "full.pt")


def _speed(ck: Path) -> None:
    import torch

    from sempix.slimseg import count_flops, load_slimseg
    from sempix.slimseg.evaluate import time_forward

    torch.set_num_threads(1)
    model, _ = load_slimseg(ck)
    print()
    print("FLOPs, parameters and CPU speed per width (1 thread, batch 1, 480x360 = CamVid full "
          "size; anchor x1.0)")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rows = []
    for w in WIDTHS:
        fl = count_flops(model, w, (360, 480))
        rows.append((w, fl["macs"], fl["params"], time_forward(model, w, (360, 480), repeat=3)))
    ref = rows[-1]
    print("width | GMACs | % of x1.0 | params (M) | ms    | speed-up vs x1.0")
    for w, m, p, s in rows:
        print(f"x{w:<5g}| {m / 1e9:5.2f} | {100 * m / ref[1]:5.1f}     | {p / 1e6:5.2f}      | "
              f"{1000 * s:5.0f} | {ref[3] / s:4.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(os.environ.get("SEMPIX_DATA_DIR", "data"),
                                                   "camvid"))
    ap.add_argument("--out", default=".bench/slimseg")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", default="160x120", help="working size WxH")
    ap.add_argument("--crop", default="112", help="training crop WxH or N")
    ap.add_argument("--limit", type=int, default=None, help="training images")
    ap.add_argument("--eval-limit", type=int, default=None, help="val images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--run", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.run:
        run_one(args.run, args)
        return
    if not args.tables_only:
        if not Path(args.data).is_dir():
            sys.exit(f"{args.data}: CamVid not found (set SEMPIX_DATA_DIR)")
        todo = [n for n in args.variants.split(",") if not (out / f"{n}.json").exists()]
        unknown = [n for n in todo if n not in VARIANTS]
        if unknown:
            sys.exit(f"unknown variants {unknown}")
        passed = [f"--{k.replace('_', '-')}={v}" for k, v in
                  (("data", args.data), ("out", args.out), ("steps", args.steps),
                   ("batch", args.batch), ("size", args.size), ("crop", args.crop),
                   ("seed", args.seed))]
        if args.limit:
            passed.append(f"--limit={args.limit}")
        if args.eval_limit:
            passed.append(f"--eval-limit={args.eval_limit}")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        running: list[tuple[str, subprocess.Popen]] = []
        while todo or running:
            while todo and len(running) < args.jobs:
                n = todo.pop(0)
                log = open(out / f"{n}.log", "w")  # noqa: SIM115 - closed with the process
                inc = max(0, 10 - os.nice(0))  # children at niceness 10, not 10 + ours
                cmd = ["nice", "-n", str(inc), sys.executable, __file__, "--run", n, *passed]
                running.append((n, subprocess.Popen(cmd, stdout=log, stderr=log, env=env)))
                print(f"{time.strftime('%H:%M:%S')} started {n}", flush=True)
            time.sleep(5)
            for n, p in list(running):
                if p.poll() is not None:
                    running.remove((n, p))
                    print(f"{time.strftime('%H:%M:%S')} {n} finished (rc {p.returncode})",
                          flush=True)
    tables(out, speed=not args.no_speed)


if __name__ == "__main__":
    main()
