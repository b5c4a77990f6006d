"""A tiny, randomly initialised SA-AdjustNet style file for the web tests (no dataset, no model
file: the ``random`` DeepLab backbone, 0 training steps, then visible random weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def tiny_style(tmp: Path, variant: str = "huber-mt-s", k: int = 2) -> Path:
    """Write ``tmp/tiny-<variant>.pt`` and return its path."""
    from sempix.adjust.train import TrainSettings, train_style
    from sempix.image import write_image

    rng = np.random.default_rng(0)
    pairs = tmp / "pairs"
    for d in ("before", "after"):
        (pairs / d).mkdir(parents=True, exist_ok=True)
    for i in range(3):
        x = rng.random((24, 32, 3)).astype(np.float32)
        write_image(pairs / "before" / f"p{i}.png", x)
        write_image(pairs / "after" / f"p{i}.png", x[..., ::-1].copy())
    out = tmp / f"tiny-{variant}.pt"
    ts = TrainSettings(steps=0, batch=1, pixels=64, size=32, n_val=1, checkpoint_every=0,
                       threads=1)
    n = torch.get_num_threads()
    try:
        train_style(pairs, out, variant=variant, k=k, settings=ts, backbone="random", cache=False)
    finally:
        torch.set_num_threads(n)
    ck = torch.load(out, weights_only=True)
    g = torch.Generator().manual_seed(1)
    net = ck["state_dicts"]["net"]
    # a clearly visible colour change, different for each preset
    net["head.P.weight"] = torch.randn(net["head.P.weight"].shape, generator=g) * 0.1
    net["head.V.weight"] = torch.randn(net["head.V.weight"].shape, generator=g) * 3.0
    torch.save(ck, out)
    return out
