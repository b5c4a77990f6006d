"""Training of SA-AdjustNet and its baselines on the shared loop (:func:`sempix.train.train`);
the style file format.

The method supplies ``_step(batch, ctx)`` (a batch = a list of cached network-resolution pairs;
each is augmented, sparsely sampled and its losses averaged over the batch) and the optimiser
groups: ``net`` (everything but the backbone) at ``lr`` and ``backbone`` (the ADE20K encoder) at
``lr * backbone_lr_ratio`` (half). Seeding, device, Adam, progress, atomic periodic checkpoints and
resume are the shared loop's.

Style file = a ``sempix.train`` checkpoint (``torch.save``, read with ``weights_only=True``)::

    {"format": "sempix-checkpoint/1", "sempix_version": str,
     "config": {"train": TrainConfig dict,
                "model": {"kind": "sempix-adjust/1", "adjust": AdjustConfig dict,
                          "settings": TrainSettings dict,
                          "backbone": {"kind": "ade20k" | "random", "deeplab": DeepLabConfig dict}
                                      | None,
                          "labels_backbone": "ade20k" | "random",
                          "data": {"root", "effect", "train": [names], "val": [names]}}},
     "state_dicts": {"net": {...}, "backbone": {...} (context variants)},
     "optimizers": {...}, "step": int, "metrics": {...}, "rng": {...},
     "extra": {"history": [...], "base_lrs": {...}}}

The adjustment-map re-weighting state (moving preset frequencies) is a buffer of the network, so
it is saved and resumed with the weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

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

FORMAT = "sempix-adjust/1"  # config["model"]["kind"] of a style file
#: the paper's scene-parsing weight. With colours as Lab / 100 and Huber delta 0.04 the colour loss
#: starts at ~0.005 while the 151-class cross-entropy starts at ~5, so 0.01 makes the parsing term
#: ~10x the colour term (and, while the zero-initialised head is small, the only gradient reaching
#: the shared context): measured, see docs/adjust.md. The default weight is therefore 0.001 (the
#: two terms start equal); ``TrainSettings.mt_weight`` sets it.
MT_WEIGHT = 0.01


@dataclass
class TrainSettings:
    """Optimisation settings (stored in the style file)."""

    steps: int = 600  # measured end to end: see docs/adjust.md ("Default configuration")
    batch: int = 4
    #: Adam rate of the head (backbone: x ``backbone_lr_ratio``). The paper's 1e-4 is for 600+
    #: epochs; 600 steps of batch 4 are 40 epochs of 60 pairs, where 1e-4 is under-trained
    #: (validation L2 at 128 px after 600 steps: 7.07 at 1e-4, 4.75 at 1e-3; docs/adjust.md).
    lr: float = 1e-3
    backbone_lr_ratio: float = 0.5  # the hypercolumn backbone is fine-tuned at half the rate
    pixels: int = 2048  # sparse training: random pixels per image and step
    size: int = 256  # long side of the network-resolution copies
    rotate: float = 10.0  # augmentation: rotation in [-rotate, rotate] degrees
    flip: bool = True
    gamma: float = 0.8  # preset re-weighting exponent (variant S)
    mt_weight: float = 0.001  # scene-parsing CE weight (see MT_WEIGHT)
    n_val: int = 10
    seed: int = 0  # initialisation, sampling, augmentation
    split_seed: int = 0  # the validation split (kept fixed across training seeds)
    device: str = "cpu"
    checkpoint_every: int = 100
    threads: int = 0  # torch CPU threads (0 = all cores); 1 is faster on an oversubscribed machine

    def check(self) -> None:
        """Raise :class:`~sempix.errors.InputError` for a value training cannot use."""
        positive = {"batch": self.batch, "lr": self.lr,
                    "backbone_lr_ratio": self.backbone_lr_ratio, "pixels": self.pixels,
                    "size": self.size}
        for name, v in positive.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number, got {v!r}")
        for name, v in {"steps": self.steps, "rotate": self.rotate, "gamma": self.gamma,
                        "mt_weight": self.mt_weight, "n_val": self.n_val, "threads": self.threads,
                        "checkpoint_every": self.checkpoint_every}.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InputError(f"{name} must be a number >= 0, got {v!r}")

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


def _image_loss(model, cfg: AdjustConfig, p: Pair, ts: TrainSettings, gen: torch.Generator | None,
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
        out["parse"] = ts.mt_weight * F.cross_entropy(res["parse"], labels[yi, xi].to(device))
    return out


class _Rest(nn.Module):
    """The non-backbone part of an SAAdjustNet (shares its modules): one optimiser group."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleDict({n: m for n, m in model.named_children() if n != "backbone"})

    def state_dict(self, *args, **kwargs):  # names as in the full model
        return {k.split(".", 1)[1]: v for k, v in super().state_dict(*args, **kwargs).items()}

    def load_state_dict(self, state, strict: bool = True):
        return super().load_state_dict({f"parts.{k}": v for k, v in state.items()}, strict=strict)


def _split_modules(model: nn.Module) -> dict[str, nn.Module]:
    if getattr(model, "backbone", None) is not None:
        return {"net": _Rest(model), "backbone": model.backbone}
    return {"net": model}


def _read(path, name: str | None = None) -> dict:
    """A style file's checkpoint dict from a path or the file's bytes (``weights_only``: a style
    file cannot run code); InputError unless it is a ``sempix-adjust/1`` style."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        import io

        from sempix.train import CHECKPOINT_FORMAT

        name = name or "style"
        try:
            ck = torch.load(io.BytesIO(bytes(path)), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{name}: not a readable style file ({msg[:200]})") from None
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise InputError(f"{name}: not a sempix checkpoint")
    else:
        from sempix.train import load_checkpoint

        name = name or str(path)
        ck = load_checkpoint(path)
    mc = (ck.get("config") or {}).get("model") if isinstance(ck.get("config"), dict) else None
    if not isinstance(mc, dict) or mc.get("kind") != FORMAT:
        raise InputError(f"{name}: not a sempix adjust style file (kind {FORMAT!r} expected)")
    return ck


def _rebuild(ck: dict):
    mc = ck["config"]["model"]
    cfg = AdjustConfig.from_dict(mc["adjust"])
    deeplab = None
    bb = mc.get("backbone")
    if cfg.uses_context and bb:
        from sempix.nets.deeplab import DeepLabConfig, DeepLabV3Plus

        deeplab = DeepLabV3Plus(DeepLabConfig.from_dict(bb["deeplab"]))
    model = build_model(cfg, deeplab)
    sd = dict(ck["state_dicts"]["net"])
    sd.update({f"backbone.{k}": v for k, v in ck["state_dicts"].get("backbone", {}).items()})
    model.load_state_dict(sd)
    return model, cfg


def load_style(path, device: str = "cpu", *, name: str | None = None):
    """``(model in eval mode, AdjustConfig, style dict)`` from a style file (a path, or its bytes:
    an upload; ``name`` is used in error messages).

    The style dict is the checkpoint; ``style["config"]["model"]`` holds the settings
    (``settings["size"]`` is the network resolution used by :func:`adjust_image`).
    """
    ck = _read(path, name)
    try:
        model, cfg = _rebuild(ck)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        what = name or (str(path) if isinstance(path, (str, Path)) else "style")
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{what}: a damaged style file ({msg[:200]})") from None
    return model.eval().to(device), cfg, ck


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


class _Batches:
    """Re-iterable epochs of shuffled batches of pairs (global torch RNG: seeded and resumed by
    the shared loop)."""

    def __init__(self, pairs: list[Pair], batch: int) -> None:
        self.pairs, self.batch = pairs, max(1, int(batch))

    def __iter__(self):
        order = torch.randperm(len(self.pairs)).tolist()
        n = max(1, len(order) // self.batch)
        for i in range(n):
            chunk = order[i * self.batch : (i + 1) * self.batch] or order
            yield [self.pairs[j] for j in chunk]


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
    dict: ``step``, ``loss`` (last), ``val_l2`` (network resolution), ``seconds``, ``history``,
    ``train`` / ``val`` (pair names).
    """
    from sempix._runtime import init_torch_threads
    from sempix.train import TrainConfig, resolve_device, train

    ts = settings or TrainSettings()
    ts.check()
    if ts.threads > 0:
        torch.set_num_threads(int(ts.threads))
    else:
        init_torch_threads()
    device = resolve_device(ts.device)
    out = Path(out)
    ck = _read(out) if resume and out.is_file() else None
    if ck is not None:
        mc = dict(ck["config"]["model"])
        ts = TrainSettings.from_dict({**mc["settings"], "steps": ts.steps, "device": ts.device,
                                      "threads": ts.threads})
        mc["settings"] = ts.to_dict()
        model, cfg = _rebuild(ck)
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
        mc = {"kind": FORMAT, "adjust": cfg.to_dict(), "settings": ts.to_dict(), "backbone": None,
              "labels_backbone": backbone, "data": {}}
        if cfg.uses_context:
            import copy

            mc["backbone"] = {"kind": backbone, "deeplab": deeplab_full.config.to_dict()}
            model = build_model(cfg, copy.deepcopy(deeplab_full))
        else:
            model = build_model(cfg)
    triples = find_pairs(pairs_dir, effect)
    names = [t[0] for t in triples]
    if ck is None:
        tr, va = split_pairs(names, ts.n_val, ts.split_seed)
        mc["data"] = {"root": str(pairs_dir), "effect": effect, "train": tr, "val": va}
    tr, va = mc["data"]["train"], mc["data"]["val"]
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
        net = _backbone(mc.get("labels_backbone", backbone), "cpu")
        for p in train_pairs + val_pairs:  # fixed targets: computed once per run
            p.labels = parse_labels(net, p.rgb)
        del net
    reweight = None
    if cfg.adjustment_map:
        reweight = PresetReweighting(cfg.k, ts.gamma)
    mods = _split_modules(model)

    def step(batch, ctx):
        if reweight is not None:
            reweight.freq = model.to_map.preset_freq  # a buffer: saved and resumed with weights
        total: dict = {}
        for p in batch:
            for name, v in _image_loss(model, cfg, p, ts, None, reweight, ctx.device).items():
                total[name] = total.get(name, 0.0) + v / len(batch)
        return total

    def evaluate(ctx):
        return {"val_l2_netres": evaluate_lab(model, val_pairs, ctx.device)} if val_pairs else {}

    tcfg = TrainConfig(steps=ts.steps, optimizer="adam", betas=(0.9, 0.999),
                       lr={"net": ts.lr, "backbone": ts.lr * ts.backbone_lr_ratio},
                       checkpoint_every=ts.checkpoint_every, seed=ts.seed, device=str(device),
                       monitor="val_l2_netres")
    optimize = {name: [name] for name in mods}
    res = train(mods, step, _Batches(train_pairs, ts.batch), tcfg, optimize=optimize,
                checkpoint=out, resume=out if ck is not None else None, model_config=mc,
                evaluate=evaluate, progress=progress)
    model.to("cpu")
    val = res.history[-1].get("val_l2_netres", float("nan")) if res.history else float("nan")
    loss = sum(v for kk, v in res.logs.items() if not kk.startswith("log_")) if res.logs else \
        float("nan")
    return {"step": res.step, "loss": loss, "val_l2": val, "seconds": res.seconds,
            "history": res.history, "val": va, "train": tr}
