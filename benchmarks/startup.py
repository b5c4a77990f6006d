"""Start-up costs of the sempix CLI: first run after install, second run, whole process vs liblqr.

Four tables, all measured in this run (times in seconds, wall clock of whole processes):

1. ``first run``: every tool's command with an EMPTY numba cache (``NUMBA_CACHE_DIR`` = a new temp
   dir: a fresh install), then the same command again (second run), and - in another empty cache -
   ``sempix warmup TOOL`` followed by the first real command. "after warmup - second" is what the
   first real command still adds after ``sempix warmup`` (target <= 5 s).
2. ``whole process``: ``sempix carve --features none`` and ``sempix carve`` with cached ade20k
   features on a 1024x813 photo to 80 % width, against ImageMagick's ``convert -liquid-rescale
   80%x100%`` (liblqr), interleaved (sempix, sempix, liblqr, sempix, ...), medians.
3. ``phases``: where the time of one ``carve --features none`` process goes (interpreter start,
   imports, numba cache load, decode, carve, encode), timed inside a driver process.
4. ``imports``: ``python -X importtime`` of the CLI's carve command, cumulative time of the main
   packages.
5. ``feature files``: features of a 1 MP photo (ade20k dim 16 / 64, lowlevel, guided): cache
   entry and ``.npz`` sizes per megapixel, cache-hit time (the lazy map; and with the
   full-resolution features built), also as the first hit of a new process, file load time.

ImageMagick with liblqr comes from Debian: ``apt-get install -y imagemagick`` (its ``convert`` is
built with liblqr; ``convert -list format`` / ``-version`` show "lqr" among the delegates).

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        .venv/bin/python benchmarks/startup.py [--tools carve,mask] [--rounds 5] [--skip-first]

The CPU may be shared: the load average is printed before and after each table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from carve import find_image, imagemagick  # noqa: E402

PY = sys.executable


def load() -> str:
    try:
        a, b, c = os.getloadavg()
        return f"load average {a:.2f} {b:.2f} {c:.2f}"
    except OSError:
        return "load average n/a"


#: CPU seconds (user + system) of the last :func:`run`'s process tree
LAST_CPU = [0.0]


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> float:
    c = _children_cpu()
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    LAST_CPU[0] = _children_cpu() - c
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return dt


def sempix_cmd(*args: str) -> list[str]:
    return [PY, "-c", "from sempix.cli import main; main()", *args]


def tool_commands(d: Path, small: Path, group: list[Path]) -> dict[str, list[str]]:
    """One typical command per tool (small image: the cost measured is start-up + compile)."""
    o = d / "out"
    o.mkdir(exist_ok=True)
    s = str(small)
    return {
        "carve": sempix_cmd("carve", s, "-o", str(o / "c.jpg"), "-W", "80%", "-q", "--force"),
        "carve-none": sempix_cmd(
            "carve", s, "-o", str(o / "c0.jpg"), "-W", "80%", "--features", "none", "-q", "--force"
        ),
        "features": sempix_cmd("features", s, "-o", str(o / "f.npz"), "-q", "--force"),
        "mask": sempix_cmd("mask", s, "--at", "100,100", "-o", str(o / "m.png"), "-q", "--force"),
        "palette": sempix_cmd("palette", s, "-o", str(o / "p.png"), "-q", "--force"),
        "harmonize": sempix_cmd("harmonize", s, "-o", str(o / "h.jpg"), "-q", "--force"),
        "recolor": sempix_cmd("recolor", *map(str, group), "-o", str(o / "rc"), "-q", "--force"),
        "retarget": sempix_cmd(
            "retarget", s, "-o", str(o / "r.jpg"), "-W", "75%", "-n", "2", "-q", "--force"
        ),
        "softseg": sempix_cmd("softseg", s, "-o", str(o / "ss"), "-q", "--force"),
    }


WARMUP_TOOL = {"carve-none": "carve"}


def first_runs(
    tools: list[str], cmds: dict[str, list[str]], base_env: dict, repeats: int = 1
) -> None:
    print(
        f"\n## 1. first run with an empty numba cache, second run, after `sempix warmup` ({load()})"
    )
    print(
        "Seconds: wall clock / CPU (user + system of the process tree). Under a changing load the "
        "CPU column is the comparable one; the second run and the first run after warm-up are "
        f"measured {repeats} time(s) each, interleaved (second, warmup + after warmup, ...; each "
        "warm-up in its own empty cache), medians."
    )
    print(
        "| tool | first run | second run | first - second (CPU) | warmup | first after warmup | "
        "after warmup - second (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    med = statistics.median
    for tool in tools:
        cmd = cmds[tool]
        seconds, afters, warms = [], [], []
        with tempfile.TemporaryDirectory() as nb1:
            env = dict(base_env, NUMBA_CACHE_DIR=nb1)
            t1 = (run(cmd, env), LAST_CPU[0])
            for _ in range(repeats):
                seconds.append((run(cmd, env), LAST_CPU[0]))
                with tempfile.TemporaryDirectory() as nb2:
                    env2 = dict(base_env, NUMBA_CACHE_DIR=nb2)
                    warms.append(
                        (run(sempix_cmd("warmup", WARMUP_TOOL.get(tool, tool), "-q"), env2),
                         LAST_CPU[0])
                    )
                    afters.append((run(cmd, env2), LAST_CPU[0]))
        t2 = (med(v[0] for v in seconds), med(v[1] for v in seconds))
        tw = (med(v[0] for v in warms), med(v[1] for v in warms))
        t3 = (med(v[0] for v in afters), med(v[1] for v in afters))
        print(
            f"| {tool} | {t1[0]:.1f} / {t1[1]:.1f} | {t2[0]:.1f} / {t2[1]:.1f} | "
            f"{t1[1] - t2[1]:.1f} | {tw[0]:.1f} / {tw[1]:.1f} | {t3[0]:.1f} / {t3[1]:.1f} | "
            f"{t3[1] - t2[1]:+.1f} |",
            flush=True,
        )
    print(f"({load()})")


def whole_process(d: Path, big: Path, rounds: int, base_env: dict) -> None:
    W, H = Image.open(big).size
    o = d / "out"
    sem_none = sempix_cmd(
        "carve",
        str(big),
        "-o",
        str(o / "w0.jpg"),
        "-W",
        "80%",
        "--features",
        "none",
        "-q",
        "--force",
    )
    sem_feat = sempix_cmd("carve", str(big), "-o", str(o / "w1.jpg"), "-W", "80%", "-q", "--force")
    im = imagemagick()
    rows: dict[str, list[float]] = {
        "sempix carve --features none": [],
        "sempix carve (ade20k, cached features)": [],
    }
    # the floor of any numba-based command: interpreter, numpy, numba, one cached kernel loaded
    # (numba's target start-up, which imports scipy.linalg for its BLAS check)
    floors = {
        "floor: `python -c pass`": [PY, "-c", "pass"],
        "floor: `python -c 'import numpy'`": [PY, "-c", "import numpy"],
        "floor: `python -c 'import numba'`": [PY, "-c", "import numba"],
        "floor: import numba + load one cached kernel": [
            PY, "-c", "import numpy as np; from sempix.ops.resample import upsample; "
            "upsample(np.zeros((2, 2, 1), np.float32), np.zeros(3), np.zeros(3))",
        ],
    }
    lqr = None
    if im is None or not im[1]:
        print("\n(ImageMagick with liblqr not found: `apt-get install -y imagemagick`)")
    else:
        lqr = [im[0], str(big), "-liquid-rescale", "80%x100%", str(o / "lqr.jpg")]
        rows[f"ImageMagick convert -liquid-rescale 80%x100% ({im[2].split()[2]}, liblqr)"] = []
    print(f"\n## 2. whole process, {W}x{H} -> 80 % width, {rounds} interleaved rounds ({load()})")
    run(sem_none, base_env)  # kernels loaded once (page cache), features computed once (cache)
    run(sem_feat, base_env)
    for cmd in floors.values():
        run(cmd, base_env)
    if lqr:
        run(lqr)
    keys = list(rows)
    rows.update({k: [] for k in floors})
    cpu: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(rounds):
        rows[keys[0]].append(run(sem_none, base_env))
        cpu[keys[0]].append(LAST_CPU[0])
        if lqr:
            rows[keys[2]].append(run(lqr))
            cpu[keys[2]].append(LAST_CPU[0])
        rows[keys[1]].append(run(sem_feat, base_env))
        cpu[keys[1]].append(LAST_CPU[0])
        for k, cmd in floors.items():
            rows[k].append(run(cmd, base_env))
            cpu[k].append(LAST_CPU[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    print("| command | median wall | min | max | / liblqr (wall) | median CPU | / liblqr (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    anchor = med[keys[2]] if lqr else None
    anchor_cpu = mcpu[keys[2]] if lqr else None
    for k, v in rows.items():
        ratio = f"{med[k] / anchor:.2f}x" if anchor else "-"
        rc = f"{mcpu[k] / anchor_cpu:.2f}x" if anchor_cpu else "-"
        print(
            f"| {k} | {med[k]:.2f} | {min(v):.2f} | {max(v):.2f} | {ratio} | {mcpu[k]:.2f} | "
            f"{rc} |"
        )
    print(f"({load()})")


PHASES = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import numba
t2 = time.perf_counter()
from sempix.cli import main
import sempix.cli.carve_cmd
t3 = time.perf_counter()
from sempix.carve import carve
from sempix.image import read_image, write_image
t4 = time.perf_counter()
carve(np.random.default_rng(0).random((12, 16, 3), dtype=np.float32), 13)  # numba cache load
t5 = time.perf_counter()
li = read_image(sys.argv[1])
t6 = time.perf_counter()
res = carve(li.rgb, round(li.rgb.shape[1] * 0.8))
t7 = time.perf_counter()
write_image(sys.argv[2], res.image, force=True)
t8 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7)
"""


def phases(d: Path, big: Path, rounds: int, base_env: dict) -> None:
    names = [
        "import numpy",
        "import numba (+ scipy.linalg it loads)",
        "import click + sempix.cli",
        "import sempix.carve + image",
        "numba cache load (carve kernels)",
        "decode JPEG",
        "carve",
        "encode JPEG",
    ]
    vals: list[list[float]] = [[] for _ in names]
    starts, totals = [], []
    for _ in range(rounds):
        starts.append(run([PY, "-c", "pass"], base_env))
        t = time.perf_counter()
        p = subprocess.run(
            [PY, "-c", PHASES, str(big), str(d / "out" / "ph.jpg")],
            env=base_env,
            capture_output=True,
            text=True,
            check=True,
        )
        totals.append(time.perf_counter() - t)
        for i, v in enumerate(p.stdout.split()):
            vals[i].append(float(v))
    print(f"\n## 3. phases of one `carve --features none` process, median of {rounds} ({load()})")
    print("| phase | seconds |")
    print("|---|---:|")
    print(f"| interpreter start (`python -c pass`) | {statistics.median(starts):.3f} |")
    for n, v in zip(names, vals):
        print(f"| {n} | {statistics.median(v):.3f} |")
    print(f"| whole driver process | {statistics.median(totals):.3f} |")


def imports(d: Path, big: Path, base_env: dict) -> None:
    cmd = [
        PY,
        "-X",
        "importtime",
        "-c",
        "from sempix.cli import main; main()",
        "carve",
        str(big),
        "-o",
        str(d / "out" / "it.jpg"),
        "-W",
        "80%",
        "--features",
        "none",
        "-q",
        "--force",
    ]
    p = subprocess.run(cmd, env=base_env, capture_output=True, text=True, check=True)
    cum: dict[str, int] = {}
    selfs: dict[str, int] = {}
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not m:
            continue
        s, c, _ind, name = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        top = name.split(".")[0]
        selfs[top] = selfs.get(top, 0) + s
        cum[name] = max(cum.get(name, 0), c)
    print(f"\n## 4. `python -X importtime` of `sempix carve --features none` ({load()})")
    print("| package (self time of all its modules) | ms |")
    print("|---|---:|")
    for top, s in sorted(selfs.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| {top} | {s / 1000:.0f} |")
    print(f"| all imports | {sum(selfs.values()) / 1000:.0f} |")
    print("\n| module (cumulative, with what it imports) | ms |")
    print("|---|---:|")
    for name in (
        "numpy",
        "numba",
        "scipy.linalg",
        "click",
        "sempix.cli",
        "sempix.image",
        "PIL.Image",
        "sempix.carve",
        "sempix.kernels",
        "rich",
    ):
        if name in cum:
            print(f"| {name} | {cum[name] / 1000:.0f} |")


FIRST_HIT = r"""
import sys, time
import numpy as np
from sempix.features import compute_features
from sempix.ops.resample import upsample
img = np.load(sys.argv[1])
t0 = time.process_time()
upsample(np.zeros((2, 2, 1), np.float32), np.zeros(3), np.zeros(3))  # numba start-up, kernels
t1 = time.process_time()
fm = compute_features(img, sys.argv[2], dim=int(sys.argv[3]), guided=sys.argv[4] == "1")
t2 = time.process_time()
fm.features
t3 = time.process_time()
assert fm.meta["cache"] == "hit"
print(t1 - t0, t2 - t1, t3 - t2)
"""

#: (label, backend, dim, guided) rows of table 5
FEATURE_ROWS = [
    ("ade20k dim 16", "ade20k", 16, False),
    ("ade20k dim 64 (default)", "ade20k", 64, False),
    ("lowlevel (11 channels)", "lowlevel", 0, False),
    ("ade20k dim 16 --guided", "ade20k", 16, True),
]


def feature_files(d: Path, src: Path, rounds: int, rows: list[str] | None = None) -> None:
    """Cache entry / feature file sizes and cache-hit times at 1 MP.

    A hit returns a lazy FeatureMap (labels, probabilities and shape ready); the full-resolution
    float32 features are built when a tool first uses ``.features``: both times are given, in
    this process (kernels loaded) and in a fresh process (first hit, numba cache load included).
    Times are CPU time of this process (``time.process_time``: comparable under load; the work is
    single-threaded) with the wall clock in brackets.
    """
    os.environ["SEMPIX_CACHE_DIR"] = str(d / "fcache")
    from sempix.features import cache as fcache
    from sempix.features import compute_features
    from sempix.features.files import load_features, save_features

    im = Image.open(src).convert("RGB")
    W = 1155
    H = round(im.height * W / im.width)
    img = np.asarray(im.resize((W, H), Image.BICUBIC), np.float32) / 255.0
    np.save(d / "img.npy", img)
    mp = W * H / 1e6
    print(
        f"\n## 5. feature cache and files, {W}x{H} ({mp:.2f} MP), median of {rounds} ({load()})"
    )
    print(
        "| features | cache entry MB/MP | hit ms (lazy map) | hit + build ms | first hit in a "
        "new process: numba start-up + hit + build ms | full-res float16 MB/MP (before) | "
        "file MB/MP | file load + build ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, backend, dim, guided in FEATURE_ROWS:
        if rows and not any(r in label for r in rows):
            continue
        fcache.clear()
        fm = compute_features(img, backend, dim=dim, guided=guided)
        if fm.backend != backend:
            print(f"| {label} | ({backend} model unavailable) |")
            continue
        entry = fcache.entries()[0][1]
        hits, builds, walls = [], [], []
        for _ in range(rounds):
            w = time.perf_counter()
            t = time.process_time()
            h = compute_features(img, backend, dim=dim, guided=guided)
            t1 = time.process_time()
            w1 = time.perf_counter()
            _ = h.features
            builds.append(time.process_time() - t)
            hits.append(t1 - t)
            walls.append((w1 - w, time.perf_counter() - w))
            assert h.meta["cache"] == "hit"
        fresh = []
        for _ in range(max(1, rounds // 2)):
            p = subprocess.run(
                [PY, "-c", FIRST_HIT, str(d / "img.npy"), backend, str(dim), str(int(guided))],
                env=dict(os.environ), capture_output=True, text=True, check=True,
            )
            n, a, b = (float(v) for v in p.stdout.split())
            fresh.append((n, a, b))
        f16 = H * W * fm.dim * 2
        f1 = d / f"f{dim}.npz"
        save_features(f1, fm, force=True)
        loads = []
        for _ in range(rounds):
            t = time.process_time()
            _ = load_features(f1).features
            loads.append(time.process_time() - t)
        med = statistics.median
        print(
            f"| {label} | {entry / 1e6 / mp:.2f} | {1000 * med(hits):.0f} "
            f"({1000 * med([w[0] for w in walls]):.0f}) | {1000 * med(builds):.0f} "
            f"({1000 * med([w[1] for w in walls]):.0f}) | "
            f"{1000 * med([f[0] for f in fresh]):.0f} + {1000 * med([f[1] for f in fresh]):.0f} + "
            f"{1000 * med([f[2] for f in fresh]):.0f} | "
            f"{f16 / 1e6 / mp:.0f} | {f1.stat().st_size / 1e6 / mp:.2f} | "
            f"{1000 * med(loads):.0f} |",
            flush=True,
        )
    print(f"({load()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default=None, help="photo (default: RetargetMe 001 or chelsea)")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument(
        "--tools",
        default="carve,carve-none,features,mask,palette,harmonize,recolor,retarget,softseg",
        help="tools of table 1 (comma-separated)",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-first", action="store_true", help="skip table 1 (the slow one)")
    ap.add_argument("--only-first", action="store_true", help="only table 1")
    ap.add_argument("--only-whole", action="store_true", help="only tables 2-4")
    ap.add_argument("--repeats", type=int, default=1, help="table 1: second/after-warmup runs")
    ap.add_argument(
        "--only-features", action="store_true", help="only table 5 (feature cache/files)"
    )
    ap.add_argument(
        "--feature-rows", default="", help="rows of table 5 (comma-separated substrings)"
    )
    args = ap.parse_args()
    print(f"os.cpu_count() = {os.cpu_count()}; python {sys.version.split()[0]}; {load()}")
    with tempfile.TemporaryDirectory() as td:
        d = Path(td)
        src = find_image(args.image)
        im = Image.open(src).convert("RGB")
        h = round(im.height * args.width / im.width)
        big = d / "big.jpg"
        im.resize((args.width, h), Image.BICUBIC).save(big, quality=95)
        small = d / "small.jpg"
        im.resize((320, round(320 * h / args.width)), Image.BICUBIC).save(small, quality=95)
        group = []
        data = os.environ.get("SEMPIX_DATA_DIR")
        coll = Path(data) / "groups" / "collection01" if data else None
        files = sorted(coll.iterdir())[:3] if coll and coll.is_dir() else []
        for i, f in enumerate(files or [src, src, src]):
            g = Image.open(f).convert("RGB")
            g.thumbnail((256, 256))
            if not files:
                g = Image.fromarray(np.roll(np.asarray(g), 40 * i, axis=2 if i % 2 else 1))
            group.append(d / f"g{i}.jpg")
            g.save(group[-1], quality=95)
        base_env = dict(os.environ, SEMPIX_CACHE_DIR=str(d / "cache"))
        if args.only_features:
            feature_files(d, src, args.rounds, [r for r in args.feature_rows.split(",") if r])
            return
        print(f"image: {src} -> {big.name} {args.width}x{h} (table 1 uses a 320 px copy)")
        if not args.skip_first:
            tools = [t for t in args.tools.split(",") if t]
            first_runs(tools, tool_commands(d, small, group), base_env, args.repeats)
        if args.only_first:
            return
        whole_process(d, big, args.rounds, base_env)
        phases(d, big, args.rounds, base_env)
        imports(d, big, base_env)
        if args.only_whole:
            return
        feature_files(d, src, args.rounds, [r for r in args.feature_rows.split(",") if r])


if __name__ == "__main__":
    if shutil.which(PY) is None:  # pragma: no cover
        sys.exit("python not found")
    main()
