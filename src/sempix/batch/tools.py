"""The batch tool registry: how each sempix tool runs on one image of a batch.

A :class:`BatchTool` says which options a tool takes (they become ``sempix batch TOOL --option``
flags and keys of the ``options`` dict of :func:`sempix.batch.run`), how to validate them once on
the client (``prepare``), per-image options (``item_options``, e.g. the clicked points of a mask)
and how to process one image (``process(job, options)``, writing every output through
``job.out(name)`` into a private staging folder that the runner commits atomically). Group tools
(``recolor``) give a :class:`GroupSteps` instead: ``analyse`` per image (parallel), ``reduce`` once
on the client, ``apply`` per image (parallel).

Every tool here uses only the public API of its sempix package, like the CLI does. A later tool
plugs in with :func:`register_tool` (the module that registers it must be importable on the
workers; it is imported there by name).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sempix.errors import InputError

IMAGE_OUT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


@dataclass
class Job:
    """One image of a batch, as a tool's ``process`` sees it.

    Attributes
    ----------
    path : the input file.
    stem : its name without suffix (outputs are named from it).
    staging : private folder the outputs are written into (names relative to the image's output
        folder, e.g. ``"photo.png"`` or ``"photo/layer_0.png"``).
    """

    path: Path
    stem: str
    staging: Path

    @property
    def image_suffix(self) -> str:
        """The input's suffix when it is a writable image format, else ``.png``."""
        s = self.path.suffix.lower()
        return s if s in IMAGE_OUT else ".png"

    def out(self, name: str) -> Path:
        """Staging path of the output ``name`` (folders created)."""
        p = self.staging / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@dataclass(frozen=True)
class Option:
    """A tool option: python key, default, click type/flag, help (``cli`` = extra flag names)."""

    key: str
    default: Any
    help: str
    type: Any = None
    flag: bool = False
    cli: tuple[str, ...] = ()
    multiple: bool = False


@dataclass
class GroupSteps:
    """Map-reduce steps of a group tool.

    ``analyse(job, options) -> small picklable result`` runs per image on the workers;
    ``reduce(results, options) -> list of per-image payloads`` (same order) runs once on the client;
    ``apply(job, payload, options)`` writes the image's outputs on the workers; ``describe(shared)``
    (optional) gives a JSON-able summary written to ``OUT/<tool>-group.json``.
    """

    analyse: Callable[[Job, dict], Any]
    reduce: Callable[[list, dict], tuple[list, dict | None]]
    apply: Callable[[Job, Any, dict], None]


@dataclass
class BatchTool:
    """A tool that ``sempix batch`` can run (see the module doc)."""

    name: str
    help: str
    options: tuple[Option, ...] = ()
    process: Callable[[Job, dict], None] | None = None
    prepare: Callable[[dict], dict] | None = None
    item_options: Callable[[dict, str, Path], dict | None] | None = None
    group: GroupSteps | None = None
    version: str = "1"
    module: str = field(default="")

    def defaults(self) -> dict:
        return {o.key: (list(o.default) if o.multiple else o.default) for o in self.options}

    def resolve_options(self, options: dict | None) -> dict:
        """Defaults + ``options``; unknown keys raise :class:`InputError`."""
        opts = self.defaults()
        for k, v in (options or {}).items():
            key = k.replace("-", "_")
            if key not in opts:
                known = ", ".join(sorted(opts)) or "none"
                raise InputError(f"batch {self.name}: unknown option {k!r} (options: {known})")
            opts[key] = v
        if self.prepare is not None:
            opts = self.prepare(opts)
        return opts


REGISTRY: dict[str, BatchTool] = {}


def register_tool(tool: BatchTool) -> BatchTool:
    """Add (or replace) a batch tool; returns it."""
    if not tool.module:
        fn = tool.process or (tool.group.apply if tool.group else None)
        tool.module = getattr(fn, "__module__", "") or __name__
    REGISTRY[tool.name] = tool
    return tool


def get_tool(name: str) -> BatchTool:
    """The registered tool ``name`` (:class:`InputError` listing the tools if unknown)."""
    tool = REGISTRY.get(name)
    if tool is None:
        raise InputError(
            f"unknown batch tool {name!r}; choose one of {', '.join(sorted(REGISTRY))}"
        )
    return tool


# ============================================================================ helpers
def _read(job: Job):
    from sempix.image import read_image

    return read_image(job.path)


def _size(value, full: int, what: str):
    from sempix.carve import parse_size

    return parse_size(value, full, what)


def _backend(opts: dict, key: str = "features") -> str:
    b = str(opts.get(key) or "ade20k").lower()
    if b not in ("ade20k", "segformer", "lowlevel", "none"):
        raise InputError(f"--{key} must be ade20k, segformer, lowlevel or none (got {b!r})")
    return b


def _need_size(opts: dict) -> dict:
    if opts.get("width") is None and opts.get("height") is None:
        raise InputError("give --width and/or --height (pixels or percent, e.g. --width 75%)")
    for k in ("width", "height"):
        if opts.get(k) is not None:
            opts[k] = str(opts[k])
    return opts


# ============================================================================ features
def _features_prepare(o: dict) -> dict:
    o["backend"] = str(o["backend"]).lower()
    if o["backend"] not in ("ade20k", "segformer", "lowlevel"):
        raise InputError(f"--backend must be ade20k, segformer or lowlevel (got {o['backend']!r})")
    if o["reduce"] not in ("random", "pca"):
        raise InputError("--reduce must be random or pca")
    return o


def _features_process(job: Job, o: dict) -> None:
    import numpy as np

    from sempix.features import compute_features
    from sempix.image import atomic_save_npz, write_image

    img = _read(job).rgb
    fm = compute_features(
        img,
        backend=o["backend"],
        dim=o["dim"],
        reduce=o["reduce"],
        seed=o["seed"],
        guided=o["guided"],
        strict=o["strict"],
    )
    meta = {k: v for k, v in fm.meta.items() if k not in ("grid_ys", "grid_xs")}
    arrays = {
        "features": np.asarray(fm.features, np.float32),
        "backend": np.array(fm.backend),
        "semantic": np.array(fm.semantic),
        "meta": np.array(json.dumps(meta, default=str)),
    }
    if fm.labels is not None:
        arrays["labels"] = np.asarray(fm.labels, np.int32)
        arrays["class_names"] = np.array(fm.class_names)
        arrays["probs_lowres"] = np.asarray(fm.probs_lowres, np.float32)
    atomic_save_npz(job.out(job.stem + ".npz"), compressed=False, **arrays)
    if o["preview"]:
        from sempix.features.preview import render_preview

        pic = np.asarray(render_preview(fm, img), np.float32) / 255.0
        write_image(job.out(job.stem + ".preview.png"), pic)


register_tool(
    BatchTool(
        "features",
        "Per-pixel semantic features (.npz as `sempix features -o`), optional preview.",
        options=(
            Option(
                "backend",
                "ade20k",
                "Feature backend: ade20k, segformer, lowlevel.",
                cli=("--backend", "--features"),
            ),
            Option("dim", None, "Output dimension (default: the backend's).", type=int),
            Option("reduce", "random", "random projection or per-image pca."),
            Option("seed", 0, "Random-projection seed.", type=int),
            Option("guided", False, "Guided-filter the features to image edges.", flag=True),
            Option(
                "strict", False, "Fail instead of falling back to lowlevel features.", flag=True
            ),
            Option("preview", False, "Also write NAME.preview.png.", flag=True),
        ),
        process=_features_process,
        prepare=_features_prepare,
    )
)


# ============================================================================ carve
#: the feature request of ``sempix carve`` (same cache entries as the CLI)
CARVE_FEATURE_DIM = 16


def _carve_prepare(o: dict) -> dict:
    o = _need_size(o)
    o["features"] = _backend(o)
    if not 0 <= float(o["lam"]) <= 1:
        raise InputError(f"--lambda must be in [0, 1] (got {o['lam']})")
    if o["keep_class"] and o["features"] == "none":
        raise InputError("--keep-class needs semantic labels: use --features ade20k (not none)")
    return o


def _carve_process(job: Job, o: dict) -> None:
    from sempix.carve import CarveOptions, carve
    from sempix.image import write_image

    li = _read(job)
    rgb = li.rgb
    H, W = rgb.shape[:2]
    tw, th = _size(o["width"], W, "width"), _size(o["height"], H, "height")
    feats, keep, lam = None, None, 0.0
    if o["features"] != "none":
        from sempix.features import class_mask, compute_features

        fm = compute_features(rgb, o["features"], dim=CARVE_FEATURE_DIM, reduce="random")
        feats, lam = fm.features, float(o["lam"])
        names = [n for k in o["keep_class"] for n in str(k).split(",") if n.strip()]
        if names:
            keep = class_mask(fm, names)
    also = [li.alpha] if li.alpha is not None else []
    res = carve(
        rgb,
        tw,
        th,
        features=feats,
        keep=keep,
        also=also,
        options=CarveOptions(lam=lam, energy=o["energy"], order=o["order"]),
    )
    write_image(
        job.out(job.stem + job.image_suffix),
        res.image,
        alpha=res.also[-1] if li.alpha is not None else None,
        icc=li.icc,
    )


register_tool(
    BatchTool(
        "carve",
        "Semantic seam carving to a new size (as `sempix carve`).",
        options=(
            Option("width", None, "Target width: pixels or percent (80%).", cli=("-W",)),
            Option("height", None, "Target height: pixels or percent.", cli=("-H",)),
            Option(
                "lam", 0.2, "Semantic share of the energy in [0, 1].", type=float, cli=("--lambda",)
            ),
            Option("energy", "forward", "forward or backward energy."),
            Option("order", "width-first", "width-first, height-first or optimal."),
            Option("features", "ade20k", "Feature backend (ade20k, segformer, lowlevel, none)."),
            Option("keep_class", (), "Protect pixels of these classes (repeat).", multiple=True),
        ),
        process=_carve_process,
        prepare=_carve_prepare,
    )
)


# ============================================================================ mask
def load_points_table(path: str | Path) -> dict[str, list[list[float]]]:
    """Read clicked points per image from CSV (``image,x,y`` rows, several rows = several points;
    a header row is optional) or JSON (``{"image": [[x, y], ...]}``). Keys are image paths relative
    to the input root or bare file names."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such points file")
    table: dict[str, list[list[float]]] = {}
    try:
        if p.suffix.lower() == ".json":
            raw = json.loads(p.read_text())
            if not isinstance(raw, dict):
                raise ValueError("expected an object {image: [[x, y], ...]}")
            for k, v in raw.items():
                pts = [v] if v and not isinstance(v[0], (list, tuple)) else v
                table[str(k)] = [[float(a), float(b)] for a, b in pts]
        else:
            with open(p, newline="") as fh:
                for i, row in enumerate(csv.reader(fh)):
                    if not row or row[0].startswith("#"):
                        continue
                    if len(row) != 3:
                        raise ValueError(f"line {i + 1}: expected image,x,y")
                    try:
                        x, y = float(row[1]), float(row[2])
                    except ValueError:
                        if i == 0:
                            continue  # header
                        raise ValueError(f"line {i + 1}: x and y must be numbers") from None
                    table.setdefault(row[0].strip(), []).append([x, y])
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: cannot read points ({str(exc).splitlines()[0]})") from None
    if not table:
        raise InputError(f"{p}: no points in the file")
    return table


def _mask_prepare(o: dict) -> dict:
    from sempix.mask import check_lam_tau, parse_adjustments

    o["features"] = _backend(o)
    if bool(o["points"]) == bool(o["cls"]):
        raise InputError(
            "give the clicks per image with --points FILE.csv|json, or --class NAME (e.g. sky)"
        )
    if o["cls"] and o["features"] in ("none", "lowlevel"):
        raise InputError("--class needs semantic labels: use --features ade20k (or segformer)")
    if o["cls"] and o["features"] == "ade20k":
        from sempix.models import is_available

        if not is_available("deeplabv3-mnv2-ade20k"):
            raise InputError(
                "--class needs the ADE20K model: `sempix models fetch deeplabv3-mnv2-ade20k` "
                "or set SEMPIX_MODEL_DIR"
            )
    check_lam_tau(o["lam"], o["tau"], o["feather"])
    if o["apply"]:
        parse_adjustments(o["apply"])  # validates
    if o["points"]:
        o["_points"] = load_points_table(o["points"])
        o["points"] = str(Path(o["points"]).resolve())
    return o


def _mask_item(o: dict, rel: str, path: Path) -> dict | None:
    if not o.get("_points"):
        return None
    t = o["_points"]
    pts = t.get(rel) or t.get(path.name) or t.get(str(path))
    if not pts:
        raise InputError(
            f"no points for this image in {o['points']} (key {rel!r} or {path.name!r})"
        )
    return {"at": pts}


def _auto_click(fm, names: str, shape: tuple[int, int]) -> list[list[float]]:
    """The most interior pixel of the class (maximum of the distance transform), at full size."""
    import numpy as np
    from scipy.ndimage import distance_transform_edt

    from sempix.features import class_mask

    cm = class_mask(fm, names)
    if not cm.any():
        raise InputError(f"no pixel labelled {names!r} in this image")
    d = distance_transform_edt(np.pad(cm, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    h, w = cm.shape
    H, W = shape
    return [[min(W - 1, (x + 0.5) * W / w - 0.5), min(H - 1, (y + 0.5) * H / h - 0.5)]]


def _mask_process(job: Job, o: dict) -> None:
    from sempix.distance import parse_points
    from sempix.image import write_image
    from sempix.mask import (
        DEFAULT_WORK_PIXELS,
        MaskSource,
        apply_adjustments,
        mask_features,
        parse_adjustments,
        range_mask,
    )

    li = _read(job)
    img = li.rgb
    H, W = img.shape[:2]
    fm = None
    if o["features"] != "none":
        fm = mask_features(
            img,
            o["features"],
            work_pixels=o["work_pixels"] or DEFAULT_WORK_PIXELS,
            strict=bool(o["cls"]),
        )
    pts = o["at"] if o.get("at") else _auto_click(fm, o["cls"], (H, W))
    res = range_mask(
        img,
        parse_points(pts, (H, W)),
        lam=o["lam"],
        tau=o["tau"],
        space=o["space"],
        feather=o["feather"],
        refine=o["refine"],
        source=MaskSource(img, fm),
    )
    write_image(job.out(job.stem + ".mask.png"), res.mask)
    from sempix.image import atomic_write_bytes

    info = {
        "points": [[round(float(x), 1), round(float(y), 1)] for x, y in pts],
        "class": o["cls"],
        "selected": round(float(res.mask.mean()), 4),
        "features": None if fm is None else fm.backend,
    }
    atomic_write_bytes(job.out(job.stem + ".mask.json"), json.dumps(info).encode())
    if o["apply"]:
        out = apply_adjustments(img, res.mask, parse_adjustments(o["apply"]))
        write_image(job.out(job.stem + job.image_suffix), out, alpha=li.alpha, icc=li.icc)


register_tool(
    BatchTool(
        "mask",
        "Semantic range masks (NAME.mask.png + NAME.mask.json: clicks used, share selected) from "
        "clicks per image (CSV/JSON) or a class (--class sky).",
        options=(
            Option(
                "points",
                None,
                "CSV (image,x,y rows) or JSON ({image: [[x,y],...]}) of clicks per image.",
            ),
            Option(
                "cls",
                None,
                "Click automatically inside this ADE20K class (e.g. sky, person).",
                cli=("--class",),
            ),
            Option("lam", 0.5, "Semantic weight in [0, 1].", type=float, cli=("--lambda",)),
            Option("tau", 0.25, "Distance threshold.", type=float),
            Option("space", "luminance", "luminance or lab."),
            Option("feather", 0.0, "Soft fall-off half-width.", type=float),
            Option("refine", False, "Guided-filter the mask edges.", flag=True),
            Option(
                "apply",
                None,
                'Adjustments inside the mask ("exposure=-0.5,saturation=0.2"): also '
                "writes the edited image.",
            ),
            Option(
                "work_pixels", None, "Pixel budget of the semantic working resolution.", type=int
            ),
            Option("features", "ade20k", "Feature backend (ade20k, segformer, lowlevel, none)."),
        ),
        process=_mask_process,
        prepare=_mask_prepare,
        item_options=_mask_item,
    )
)


# ============================================================================ softseg
def _softseg_prepare(o: dict) -> dict:
    o["features"] = _backend(o)
    if not 1 <= int(o["layers"]) <= 64:
        raise InputError(f"--layers must be between 1 and 64 (got {o['layers']})")
    if int(o["work_pixels"]) < 0:
        raise InputError("--work-pixels must be >= 0")
    return o


def _softseg_process(job: Job, o: dict) -> None:
    import numpy as np

    from sempix.softseg import SoftSegConfig, save_result, soft_segment

    img = _read(job).rgb
    cfg = SoftSegConfig(
        n_layers=int(o["layers"]), work_pixels=int(o["work_pixels"]) or None, seed=int(o["seed"])
    )
    feats = None
    if o["features"] == "none":
        feats = np.asarray(img, np.float32)
        cfg.affinity.sigma_s = 0.0
    res = soft_segment(img, features=feats, backend=o["features"], config=cfg)
    save_result(res, job.out(job.stem))


register_tool(
    BatchTool(
        "softseg",
        "Semantic soft segmentation: a folder NAME/ of layers per image (as `sempix softseg`).",
        options=(
            Option("layers", 5, "Number of soft layers.", type=int),
            Option(
                "work_pixels", 25_000, "Working resolution (pixels) of the eigen stage.", type=int
            ),
            Option("seed", 0, "Seed.", type=int),
            Option("features", "ade20k", "Feature backend (ade20k, segformer, lowlevel, none)."),
        ),
        process=_softseg_process,
        prepare=_softseg_prepare,
    )
)


# ============================================================================ palette / harmonize
def _palette_process(job: Job, o: dict) -> None:
    from sempix.image import atomic_write_bytes, write_image
    from sempix.palette import extract_palette, swatch_picture

    li = _read(job)
    m = li.alpha if li.alpha is not None and (li.alpha > 0).any() else None
    pal = extract_palette(li.rgb, k=o["k"], mask=m)
    doc = pal.to_dict()
    doc["image"] = job.path.name
    atomic_write_bytes(job.out(job.stem + ".palette.json"), json.dumps(doc, indent=2).encode())
    if o["swatch"]:
        write_image(job.out(job.stem + ".swatch.png"), swatch_picture(pal, names=pal.names()))


def _k_check(o: dict) -> dict:
    if o["k"] is not None and not 1 <= int(o["k"]) <= 16:
        raise InputError(f"-k must be between 1 and 16 (got {o['k']})")
    return o


def _need_model(name: str) -> None:
    """Resolve (or download) a model on the client before any task starts, so that a missing model
    is one error for the run rather than the same failure recorded for every image."""
    from sempix.models import get_model_path

    get_model_path(name)


def _palette_prepare(o: dict) -> dict:
    o = _k_check(o)
    _need_model("w2c")  # colour names in the JSON and on the swatch
    return o


register_tool(
    BatchTool(
        "palette",
        "Colour palette per image (NAME.palette.json + NAME.swatch.png).",
        options=(
            Option("k", None, "Number of colours (default automatic 2..7).", type=int, cli=("-k",)),
            Option("swatch", True, "Also write the swatch picture.", flag=True),
        ),
        process=_palette_process,
        prepare=_palette_prepare,
    )
)


def _harmonize_prepare(o: dict) -> dict:
    o = _k_check(o)
    if o["method"] not in ("names", "cohen-or"):
        raise InputError("--method must be names or cohen-or")
    if not 0 <= float(o["strength"]) <= 1:
        raise InputError("--strength must be in [0, 1]")
    _need_model("w2c")  # names, neutral colours and the harmony guard (both methods)
    return o


def _harmonize_process(job: Job, o: dict) -> None:
    from sempix.image import write_image
    from sempix.palette import harmonize_image

    li = _read(job)
    res = harmonize_image(
        li.rgb,
        method=o["method"],
        k=o["k"],
        keep_names=not o["allow_name_change"],
        strength=float(o["strength"]),
    )
    write_image(job.out(job.stem + job.image_suffix), res.image, alpha=li.alpha, icc=li.icc)


register_tool(
    BatchTool(
        "harmonize",
        "Palette-based colour harmonization per image (as `sempix harmonize`).",
        options=(
            Option("method", "names", "names or cohen-or."),
            Option("k", None, "Palette size (default automatic).", type=int, cli=("-k",)),
            Option("strength", 1.0, "Fraction of each colour's shift applied.", type=float),
            Option("allow_name_change", False, "Plain nearest-prototype rule.", flag=True),
        ),
        process=_harmonize_process,
        prepare=_harmonize_prepare,
    )
)


# ============================================================================ retarget
def _retarget_prepare(o: dict) -> dict:
    from sempix.retarget import METHODS

    o = _need_size(o)
    o["features"] = _backend(o)
    if o["method"] not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}")
    if o["device"] not in ("cpu", "cuda"):
        raise InputError("--device must be cpu or cuda")
    return o


def _retarget_process(job: Job, o: dict) -> None:
    from sempix.image import write_image
    from sempix.retarget import parse_size, retarget

    li = _read(job)
    H, W = li.rgb.shape[:2]
    tw, th = parse_size(o["width"], W, "width"), parse_size(o["height"], H, "height")
    res = retarget(
        li.rgb,
        tw,
        th,
        method=o["method"],
        iterations=int(o["iterations"]),
        features=o["features"],
        device=o["device"],
        protect=o["protect"],
        extra=li.alpha,
    )
    write_image(job.out(job.stem + job.image_suffix), res.image, alpha=res.extra, icc=li.icc)


register_tool(
    BatchTool(
        "retarget",
        "Deep-feature retargeting and other resizers (as `sempix retarget`).",
        options=(
            Option("width", None, "Target width: pixels or percent.", cli=("-W",)),
            Option("height", None, "Target height: pixels or percent.", cli=("-H",)),
            Option("method", "dnr", "dnr, multiop, seam, semantic-seam, scale, warp."),
            Option("iterations", 50, "Reconstruction iterations (dnr).", type=int),
            Option("protect", "auto", "auto, none or class names."),
            Option("device", "cpu", "cpu or cuda."),
            Option("features", "ade20k", "Feature backend (semantic-seam / protection)."),
        ),
        process=_retarget_process,
        prepare=_retarget_prepare,
    )
)


# ============================================================================ recolor (group)
def _recolor_prepare(o: dict) -> dict:
    o["features"] = _backend(o)
    if o["wb"] not in ("auto", "on", "off"):
        raise InputError("--wb must be auto, on or off in a batch")
    if o["saliency"] not in ("both", "background", "off"):
        raise InputError("--saliency must be both, background or off")
    names = o["names"]
    if isinstance(names, str):
        names = None if names.strip().lower() in ("off", "none") else float(names)
    if names is not None and not names > 0:
        raise InputError("--names must be a positive distance (e.g. 0.8) or off")
    o["names"] = names
    if names is not None:
        _need_model("w2c")
    if o["group_size"] is not None and int(o["group_size"]) < 1:
        raise InputError("--group-size must be at least 1")
    if o["palette"]:
        from sempix.recolor import parse_palette

        parse_palette(o["palette"])
    use_sal = o["saliency"] != "off" and not o["semantic"]
    # the built-in saliency (rbd): nothing to fetch, the same on every worker
    o["saliency_backend"], o["saliency_model"] = ("rbd" if use_sal else None), None
    return o


def _recolor_analyse(job: Job, o: dict):
    import numpy as np

    from sempix.recolor import analyse_image

    img = _read(job).rgb
    an = analyse_image(
        img,
        wb=o["wb"],
        saliency=o["saliency_backend"] is not None,
        semantic=o["semantic"],
        features=o["features"],
        saliency_backend=o["saliency_backend"],
        saliency_model=o["saliency_model"],
    )
    # only the palette, groups and white balance travel back: the pixel arrays stay on the worker
    return replace(
        an,
        small=np.zeros((0, 0, 3), np.float32),
        saliency=None,
        pixel_colour=np.zeros((0, 0), np.int64),
    )


def _recolor_reduce(analyses: list, o: dict):
    import numpy as np

    from sempix.recolor import CollectionSolution, parse_palette, solve_analyses

    pal = parse_palette(o["palette"]) if o["palette"] else None
    sol = solve_analyses(
        analyses,
        group_size=o["group_size"],
        saliency=o["saliency"],
        semantic=o["semantic"],
        names=o["names"],
        harmonize=o["harmonize"],
        palette=pal,
        features=o["features"],
        wb_modes=[o["wb"]] * len(analyses),
        saliency_backend=o["saliency_backend"],
        saliency_model_file=o["saliency_model"],
    )
    per_image = [
        CollectionSolution([an], sol.group_lab, sol.group_names, [a], [b], sol.options, {})
        for an, a, b in zip(sol.analyses, sol.assignments, sol.broken)
    ]
    rgb = sol.group_rgb
    u8 = np.clip(np.rint(np.asarray(rgb, np.float64) * 255), 0, 255).astype(int)
    summary = {
        "group_palette": ["#{:02x}{:02x}{:02x}".format(*c) for c in u8],
        "groups": list(sol.group_names),
        "images": len(analyses),
        "stats": {k: v for k, v in sol.stats.items() if not isinstance(v, list)},
        "options": {k: v for k, v in sol.options.items() if k != "wb"},
    }
    if any(math.isnan(float(v)) for v in rgb.ravel()):
        raise InputError("the group palette could not be solved")
    return per_image, summary


def _recolor_apply(job: Job, sub, o: dict) -> None:
    from sempix.image import write_image
    from sempix.recolor import render

    li = _read(job)
    out = render(sub, [li.rgb])[0]
    suffix = ".png" if job.path.suffix.lower() in (".png", ".tif", ".tiff", ".bmp") else ".jpg"
    write_image(job.out(job.stem + suffix), out, alpha=li.alpha, icc=li.icc)


register_tool(
    BatchTool(
        "recolor",
        "Consistent colours across all inputs "
        "(analyse in parallel, solve once, render in parallel).",
        options=(
            Option("features", "ade20k", "Feature backend of the semantic prior (none to skip)."),
            Option("wb", "auto", "White balance: auto, on, off."),
            Option("saliency", "both", "both, background or off."),
            Option("semantic", False, "Group colours by ADE20K classes.", flag=True),
            Option("names", "0.8", "Colour-naming association distance, or off."),
            Option("harmonize", False, "Harmonize the group colours.", flag=True),
            Option("group_size", None, "Group colours per (sub-)palette.", type=int),
            Option("palette", None, "External group palette '#aabbcc,#112233'."),
        ),
        prepare=_recolor_prepare,
        group=GroupSteps(analyse=_recolor_analyse, reduce=_recolor_reduce, apply=_recolor_apply),
    )
)
