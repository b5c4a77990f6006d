"""Training of SA-AdjustNet and its baselines; the style file (checkpoint) format.

The loop is written as ``step(batch, ctx) -> {loss name: tensor}`` plus a small local driver
(:func:`_run`), the same shape as the shared loop of ``sempix.train`` (branch w17): when that
lands, :func:`train_style` hands ``_step`` to ``sempix.train.train`` with one optimiser group per
learning rate (``backbone`` at half the rate, ``head``) and drops :func:`_run`.

Style file (``torch.save``, read with ``weights_only=True``)::

    {"format": "sempix-adjust/1", "sempix_version": str,
     "config": {"model": AdjustConfig dict, "train": TrainSettings dict,
                "backbone": {"kind": "ade20k" | "random", "deeplab": DeepLabConfig dict} | None,
                "data": {"root": str, "effect": str | None, "train": [names], "val": [names]}},
     "state_dict": {...}, "step": int, "optimizer": {...}, "reweight": {...} | None,
     "rng": {"torch": ByteTensor, "gen": ByteTensor}, "history": [{"step", "loss", ...}]}
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from sempix.adjust.data import (
    Pair,
    augment,
    find_pairs,
    load_pairs,
    pixel_index,
    sample_pixels,
    split_pairs,
)
from sempix.adjust.losses import PresetReweighting, expected_loss, pixel_loss
from sempix.adjust.model import VARIANTS, AdjustConfig, SAAdjustNet, YanNet
from sempix.errors import InputError
from sempix.progress import report

__all__ = ["FORMAT", "TrainSettings", "build_model", "load_style", "train_style", "tiny_deeplab"]

FORMAT = "sempix-adjust/1"
MT_WEIGHT = 0.01


@dataclass
class TrainSettings:
    """Optimisation settings (stored in the style file)."""

    steps: int = 600  # ~40 min on 2 loaded CPU cores at 1 thread (measured ~1 s per image)
    batch: int = 4
    lr: float = 1e-4
    backbone_lr_ratio: float = 0.5  # the hypercolumn backbone is fine-tuned at half the rate
    pixels: int = 2048  # sparse training: random pixels per image and step
    size: int = 256  # long side of the network-resolution copies
    rotate: float = 10.0  # augmentation: rotation in [-rotate, rotate] degrees
    flip: bool = True
    gamma: float = 0.8  # preset re-weighting exponent (variant S)
    n_val: int = 10
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 100
    threads: int = 0  # torch CPU threads (0 = all cores); 1 is faster on an oversubscribed machine

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainSettings:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def tiny_deeplab_config():
    """A small random DeepLabV3+ architecture (tests, or when the ADE20K weights are absent and
    ``backbone="random"`` is asked for explicitly)."""
    from sempix.nets.deeplab import BlockSpec, DeepLabConfig

    blocks = (BlockSpec(1, 8), BlockSpec(2, 8, 2), BlockSpec(2, 16, 2), BlockSpec(2, 16),
              BlockSpec(2, 24, 1, 2))
    return DeepLabConfig(stem_channels=8, blocks=blocks, aspp_channels=16, low_level_block=1,
                         low_level_channels=8, decoder_channels=16)


def tiny_deeplab(seed: int = 0):
    from sempix.nets.deeplab import DeepLabV3Plus

    torch.manual_seed(seed)
    return DeepLabV3Plus(tiny_deeplab_config()).eval()


def _backbone(kind: str, device: str):
    if kind == "ade20k":
        from sempix.features.ade20k_torch import load_deeplab

        return load_deeplab(device="cpu")
    if kind == "random":
        return tiny_deeplab()
    raise InputError(f"unknown backbone {kind!r} (ade20k or random)")


def build_model(cfg: AdjustConfig, deeplab=None) -> torch.nn.Module:
    """The module of a variant (``deeplab``: a DeepLabV3Plus for the context variants)."""
    if cfg.variant not in VARIANTS:
        raise InputError(f"unknown variant {cfg.variant!r}; choose one of {', '.join(VARIANTS)}")
    if cfg.variant == "yan":
        return YanNet(cfg)
    return SAAdjustNet(cfg, deeplab if cfg.uses_context else None)


def _needs_labels(cfg: AdjustConfig) -> bool:
    return cfg.multitask or cfg.variant == "yan"


@torch.no_grad()
def parse_labels(deeplab, rgb: torch.Tensor) -> torch.Tensor:
    """ADE20K labels (h, w) of a (3, h, w) image by the full network (the MT targets and the
    Yan baseline's label histograms)."""
    out = deeplab(rgb[None], upsample=True)
    return out.logits[0].argmax(0)


def _forward(model, p: Pair, rgb, lab, labels, grid, presets=None) -> dict:
    if isinstance(model, YanNet):
        return model(rgb[None], lab[None], grid, labels)
    return model(rgb[None], lab[None], grid, presets=presets)


def _image_loss(model, cfg: AdjustConfig, p: Pair, ts: TrainSettings, gen: torch.Generator,
                reweight: PresetReweighting | None, device) -> dict:
    angle = (torch.rand(1, generator=gen).item() * 2 - 1) * ts.rotate if ts.rotate else 0.0
    flip = bool(ts.flip and torch.rand(1, generator=gen).item() < 0.5)
    (rgb, lab, target), labels = augment([p.rgb, p.lab, p.target], p.labels, angle, flip)
    h, w = lab.shape[1:]
    grid = sample_pixels(h, w, ts.pixels, gen)
    yi, xi = pixel_index(grid, h, w)
    tgt = (target[:, yi, xi].T / 100.0).to(device)
    rgb, lab, grid = rgb.to(device), lab.to(device), grid.to(device)
    lab_dev = None if labels is None else labels.to(device)
    res = _forward(model, p, rgb, lab, lab_dev, grid)
    kind = "mse" if cfg.variant == "mse" else "huber"
    out: dict = {}
    if cfg.adjustment_map:
        wts = None
        if reweight is not None:
            reweight.update(res["probs"])
            wts = reweight.pixel_weights(res["probs"])
        out["color"] = expected_loss(res["per_preset"], res["probs"], tgt, kind, wts)
    else:
        out["color"] = pixel_loss(res["out"], tgt, kind).mean()
    if "parse" in res and labels is not None:
        out["parse"] = MT_WEIGHT * F.cross_entropy(res["parse"], labels[yi, xi].to(device))
    return out


def _save(path, model, cfg, ts, meta, step, opt, reweight, gen, history) -> None:
    from sempix import __version__
    from sempix.image import atomic_output

    ck = {
        "format": FORMAT,
        "sempix_version": __version__,
        "config": {"model": cfg.to_dict(), "train": ts.to_dict(), **meta},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": int(step),
        "optimizer": opt.state_dict() if opt is not None else {},
        "reweight": reweight.state_dict() if reweight is not None else None,
        "rng": {"torch": torch.get_rng_state(), "gen": gen.get_state()},
        "history": list(history),
    }
    with atomic_output(path, force=True) as tmp:
        torch.save(ck, tmp)


def _read(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: style file not found")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{p}: not a readable style file ({str(exc).splitlines()[0]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise InputError(f"{p}: not a sempix adjust style file")
    return ck


def _rebuild(ck: dict):
    cfg = AdjustConfig.from_dict(ck["config"]["model"])
    deeplab = None
    bb = ck["config"].get("backbone")
    if cfg.uses_context and bb:
        from sempix.nets.deeplab import DeepLabConfig, DeepLabV3Plus

        deeplab = DeepLabV3Plus(DeepLabConfig.from_dict(bb["deeplab"]))
    model = build_model(cfg, deeplab)
    model.load_state_dict(ck["state_dict"])
    return model, cfg


def load_style(path, device: str = "cpu"):
    """``(model in eval mode, AdjustConfig, style dict)`` from a style file."""
    ck = _read(path)
    model, cfg = _rebuild(ck)
    return model.eval().to(device), cfg, ck


def _optimizer(model, ts: TrainSettings):
    bb = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    groups = [{"params": rest, "lr": ts.lr}]
    if bb:
        groups.append({"params": bb, "lr": ts.lr * ts.backbone_lr_ratio})
    return torch.optim.Adam(groups)


@torch.no_grad()
def evaluate_lab(model, pairs: list[Pair], device="cpu") -> float:
    """Mean per-pixel CIELab L2 error at network resolution (no augmentation)."""
    model.eval()
    errs = []
    for p in pairs:
        h, w = p.lab.shape[1:]
        grid = sample_pixels(h, w, h * w)
        labels = None if p.labels is None else p.labels.to(device)
        out = _forward(model, p, p.rgb.to(device), p.lab.to(device), labels, grid.to(device))["out"]
        tgt = p.target.reshape(3, -1).T.to(device) / 100.0
        errs.append(float(((out - tgt) * 100).norm(dim=1).mean()))
    model.train()
    return sum(errs) / max(1, len(errs))


def train_style(pairs_dir, out, *, effect: str | None = None, variant: str = "huber-mt",
                k: int = 2, settings: TrainSettings | None = None,
                model_config: AdjustConfig | None = None, backbone: str = "ade20k",
                resume: bool = False, cache: bool = True, progress=None,
                max_pairs: int | None = None) -> dict:
    """Train a style from before/after pairs and write the style file ``out`` (atomically,
    every ``checkpoint_every`` steps and at the end).

    Parameters
    ----------
    pairs_dir : dataset folder (``input/`` + effect folders) or ``before/`` + ``after/``
    out : style file path; with ``resume`` an existing file there is continued
    effect : effect folder of the dataset layout
    variant : one of :data:`VARIANTS` (``huber-mt-s`` = adjustment maps with ``k`` presets)
    settings : :class:`TrainSettings` (steps, batch, lr, pixels, size, device, ...)
    backbone : ``ade20k`` (the pretrained network, needs the model file) or ``random`` (a tiny
        untrained DeepLab: tests only)
    max_pairs : use only the first N training pairs (quick runs)

    Returns
    -------
    dict: ``step``, ``loss`` (last), ``val_l2`` (network resolution), ``seconds``, ``history``.
    """
    from sempix._runtime import init_torch_threads

    ts = settings or TrainSettings()
    if ts.threads > 0:
        torch.set_num_threads(int(ts.threads))
    else:
        init_torch_threads()
    if ts.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available on this machine")
    device = torch.device(ts.device)
    out = Path(out)
    ck = _read(out) if resume and out.is_file() else None
    if ck is not None:
        ts = TrainSettings.from_dict({**ck["config"]["train"], "steps": ts.steps,
                                      "device": ts.device})
        model, cfg = _rebuild(ck)
        meta = {k2: v for k2, v in ck["config"].items() if k2 not in ("model", "train")}
        deeplab_full = None
    else:
        cfg = model_config or AdjustConfig()
        cfg.variant, cfg.k = variant, int(k)
        if cfg.variant not in VARIANTS:
            raise InputError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if cfg.k < 1:
            raise InputError("k must be >= 1")
        torch.manual_seed(ts.seed)
        needs_net = cfg.uses_context or _needs_labels(cfg)
        deeplab_full = _backbone(backbone, ts.device) if needs_net else None
        meta = {"backbone": None, "labels_backbone": backbone, "data": {}}
        if cfg.uses_context:
            import copy

            meta["backbone"] = {"kind": backbone, "deeplab": deeplab_full.config.to_dict()}
            model = build_model(cfg, copy.deepcopy(deeplab_full))
        else:
            model = build_model(cfg)
    triples = find_pairs(pairs_dir, effect)
    names = [t[0] for t in triples]
    if ck is None:
        tr, va = split_pairs(names, ts.n_val, ts.seed)
        meta["data"] = {"root": str(pairs_dir), "effect": effect, "train": tr, "val": va}
    tr = meta["data"]["train"]
    va = meta["data"]["val"]
    if max_pairs:
        tr = tr[:max_pairs]
    by = {t[0]: t for t in triples}
    missing = [n for n in tr + va if n not in by]
    if missing:
        raise InputError(f"{pairs_dir}: pairs of the style's split are missing ({missing[0]})")
    report(progress, 0.0, "loading pairs")
    train_pairs = load_pairs([by[n] for n in tr], ts.size, cache=cache)
    val_pairs = load_pairs([by[n] for n in va], ts.size, cache=cache)
    if _needs_labels(cfg):
        if deeplab_full is None:
            deeplab_full = _backbone(meta.get("labels_backbone", backbone), "cpu")
        for p in train_pairs + val_pairs:  # fixed targets: computed once per run
            p.labels = parse_labels(deeplab_full, p.rgb)
    del deeplab_full
    model = model.to(device).train()
    opt = _optimizer(model, ts)
    gen = torch.Generator().manual_seed(ts.seed)
    reweight = PresetReweighting(cfg.k, ts.gamma) if cfg.adjustment_map else None
    start, history = 0, []
    if ck is not None:
        if ck.get("optimizer"):
            opt.load_state_dict(ck["optimizer"])
        if reweight is not None and ck.get("reweight"):
            reweight.load_state_dict(ck["reweight"])
        start, history = int(ck["step"]), list(ck.get("history", []))
        torch.set_rng_state(ck["rng"]["torch"])
        gen.set_state(ck["rng"]["gen"])
    t0 = time.perf_counter()
    loss = float("nan")
    order: list[int] = []
    for step in range(start, ts.steps):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        logs: dict[str, float] = {}
        for _ in range(ts.batch):
            if not order:
                order = torch.randperm(len(train_pairs), generator=gen).tolist()
            p = train_pairs[order.pop()]
            parts = _image_loss(model, cfg, p, ts, gen, reweight, device)
            s = sum(parts.values()) / ts.batch
            s.backward()
            total += float(s.detach())
            for kname, v in parts.items():
                logs[kname] = logs.get(kname, 0.0) + float(v.detach()) / ts.batch
        opt.step()
        loss = total
        done = step + 1
        if done % 50 == 0 or done == ts.steps:
            history.append({"step": done, "loss": loss, **logs})
        report(progress, done / max(1, ts.steps), f"step {done}/{ts.steps} loss={loss:.4g}")
        if ts.checkpoint_every and done % ts.checkpoint_every == 0 and done < ts.steps:
            _save(out, model, cfg, ts, meta, done, opt, reweight, gen, history)
    seconds = time.perf_counter() - t0
    val = evaluate_lab(model, val_pairs, device) if val_pairs else float("nan")
    history.append({"step": ts.steps, "val_l2_netres": val, "train_seconds": seconds})
    _save(out, model, cfg, ts, meta, ts.steps, opt, reweight, gen, history)
    return {"step": ts.steps, "loss": loss, "val_l2": val, "seconds": seconds,
            "history": history, "val": va, "train": tr}
