"""Learned burst restorer: RRDB network, interpolation endpoints, two-stage training on tiny
data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sempix.burst.learned import (
    LearnedConfig,
    interpolated_network,
    load_network,
    restore_learned,
    train_distortion,
    train_perception,
)
from sempix.burst.synth import BurstParams
from sempix.nets.rrdb import BurstRRDB, Discriminator, RRDBConfig, interpolate_state


def _images(k=4, size=32, seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return [
        ndimage.gaussian_filter(rng.random((size, size, 3)), (1.5, 1.5, 0)).astype(np.float32)
        for _ in range(k)
    ]


@pytest.mark.parametrize("fusion", ["mean", "concat"])
def test_network_shapes(fusion):
    net = BurstRRDB(RRDBConfig(frames=3, scale=4, features=8, growth=4, blocks=1, fusion=fusion))
    y = net(torch.rand(2, 3, 3, 8, 10))
    assert y.shape == (2, 3, 32, 40)
    # residual init: the untrained network is bilinear upsampling of the reference frame
    ref = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8), scale_factor=4, mode="bilinear")
    assert ref.shape == (1, 3, 32, 32)
    if fusion == "mean":
        assert net(torch.rand(1, 5, 3, 8, 8)).shape == (1, 3, 32, 32)  # any burst length
    else:
        with pytest.raises(ValueError):
            net(torch.rand(1, 5, 3, 8, 8))
    assert Discriminator(8, 2)(torch.rand(2, 3, 32, 32)).shape == (2,)


def test_thesis_size_option():
    # the thesis's 23-block trunk (built narrow here to keep the test fast; the thesis uses 64/32)
    net = BurstRRDB(RRDBConfig(features=16, growth=8, blocks=23, frames=10, fusion="concat"))
    assert len(net.trunk) == 23
    assert net(torch.rand(1, 10, 3, 4, 4)).shape == (1, 3, 16, 16)


def test_interpolation_endpoints():
    torch.manual_seed(0)
    cfg = RRDBConfig(frames=2, scale=2, features=8, growth=4, blocks=1)
    a, b = BurstRRDB(cfg), BurstRRDB(cfg)
    for p in b.parameters():
        p.data.normal_()
    n0 = interpolated_network(a, b, 0.0)
    n1 = interpolated_network(a, b, 1.0)
    for k, v in a.state_dict().items():
        assert torch.equal(n0.state_dict()[k], v)
        assert torch.equal(n1.state_dict()[k], b.state_dict()[k])
    mid = interpolate_state(a.state_dict(), b.state_dict(), 0.5)
    k = next(iter(mid))
    assert torch.allclose(mid[k], 0.5 * (a.state_dict()[k] + b.state_dict()[k]))


def test_two_stage_training_tiny(tmp_path):
    from sempix.retarget.vgg import VGG19Features

    torch.manual_seed(0)
    cfg = LearnedConfig(
        net=RRDBConfig(frames=2, scale=2, features=8, growth=4, blocks=1).to_dict(),
        burst=dict(BurstParams(n=2, scale=2, read=5.0).__dict__),
        steps_l1=3,
        steps_gan=2,
        batch=2,
        crop=16,
        lr=2e-3,
        checkpoint_every=0,
    )
    imgs = _images()
    losses = []
    r1 = train_distortion(imgs, cfg, tmp_path / "d.pt", progress=lambda f, m: losses.append(m))
    assert r1.step == 3 and (tmp_path / "d.pt").is_file()
    # random-weight VGG: the perceptual loss runs without the model store
    vgg = VGG19Features("vgg19-normalised-relu3_1", "relu3_1")
    r2 = train_perception(imgs, cfg, tmp_path / "d.pt", tmp_path / "p.pt", vgg=vgg)
    assert r2.step == 2 and {"g", "d", "log_percep", "log_adv"} <= set(r2.logs)
    nd, np_ = load_network(tmp_path / "d.pt"), load_network(tmp_path / "p.pt")
    burst = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    out = restore_learned(interpolated_network(nd, np_, 0.5), burst)
    assert out.shape == (16, 16, 3) and out.min() >= 0 and out.max() <= 1


def test_l1_loss_falls_on_a_fixed_batch():
    from sempix.burst.data import BurstBatches
    from sempix.train import TrainConfig, train

    torch.manual_seed(0)
    net = BurstRRDB(RRDBConfig(frames=2, scale=2, features=8, growth=4, blocks=1, residual=False))
    batch = next(
        iter(BurstBatches(_images(), BurstParams(n=2, scale=2, read=5.0), batch=2, crop=16))
    )
    seen = []

    def step(b, ctx):
        loss = torch.nn.functional.l1_loss(ctx.modules["g"](b[0]), b[1])
        seen.append(float(loss.detach()))
        return {"l1": loss}

    train({"g": net}, step, [batch], TrainConfig(steps=3, lr=3e-3))
    assert seen[-1] < seen[0]


def test_lpips_random_weights_properties():
    from sempix.burst.metrics import lpips
    from sempix.nets.lpips import LPIPS

    torch.manual_seed(0)
    net = LPIPS()
    for lin in net.lins:  # LPIPS heads are non-negative
        lin.weight.data.abs_()
    x = _images(1, 64)[0]
    assert lpips(x, x, net) == pytest.approx(0.0, abs=1e-9)
    noisy = [
        np.clip(x + np.random.default_rng(0).normal(0, s, x.shape), 0, 1).astype(np.float32)
        for s in (0.05, 0.2)
    ]
    d1, d2 = lpips(x, noisy[0], net), lpips(x, noisy[1], net)
    assert 0 < d1 < d2
    assert lpips(noisy[0], x, net) == pytest.approx(d1, rel=1e-5)  # symmetric
    sd = {
        f"features.{i}.{t}": getattr(c, t).detach().clone()
        for c, i in zip(net.convs, [0, 3, 6, 8, 10])
        for t in ("weight", "bias")
    }
    lin = {f"lin{k}.model.1.weight": l.weight.detach().clone() for k, l in enumerate(net.lins)}
    other = LPIPS()
    other.load_weights(sd, lin)
    assert lpips(x, noisy[0], other) == pytest.approx(d1, rel=1e-6)
