"""SlimSeg: nested slim layers, switchable BN, KD detachment, boundary band, Algorithm 1, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sempix.nets.deeplab import BlockSpec, DeepLabConfig, DeepLabV3Plus
from sempix.slimseg.layers import SlimConv2d, SwitchableBatchNorm2d, set_width
from sempix.slimseg.losses import (
    boundary_band,
    kd_loss,
    ohem_ce,
    teacher_targets,
)
from sempix.slimseg.model import (
    SlimDeepLab,
    SlimSegConfig,
    calibrate_bn,
    channel_order,
    count_flops,
    from_deeplab,
    load_slimseg,
)
from sempix.slimseg.train import TrainOptions, build_model, slimseg_step, train_slimseg

WIDTHS = (0.25, 0.5, 0.75, 1.0)


def tiny_arch(num_classes: int = 3) -> DeepLabConfig:
    blocks = (BlockSpec(1, 8), BlockSpec(2, 8, 2), BlockSpec(2, 8), BlockSpec(2, 16, 2),
              BlockSpec(2, 16, 1, 2))
    return DeepLabConfig(num_classes=num_classes, stem_channels=8, blocks=blocks,
                         aspp_channels=16, low_level_block=2, low_level_channels=8,
                         decoder_channels=16)


def tiny_model(seed: int = 0, boundary: bool = True) -> SlimDeepLab:
    torch.manual_seed(seed)
    return SlimDeepLab(SlimSegConfig(tiny_arch(), WIDTHS, boundary))


def test_nested_parameters_narrow_is_a_slice():
    torch.manual_seed(0)
    conv = SlimConv2d((8, 4), 16, 3)  # input = concat of two groups
    conv.width = 0.5
    w, _, groups = conv.active_weight()
    assert groups == 1 and w.shape == (8, 6, 3, 3)
    full = conv.weight.detach()
    want = torch.cat([full[:8, :4], full[:8, 8:10]], dim=1)
    assert torch.equal(w.detach(), want)
    # gradients of a narrow forward reach only the narrow slice
    conv(torch.rand(1, 6, 5, 5)).sum().backward()
    g = conv.weight.grad
    assert g[8:].abs().sum() == 0 and g[:8, 4:8].abs().sum() == 0 and g[:8, 10:].abs().sum() == 0
    assert g[:8, :4].abs().sum() > 0
    dw = SlimConv2d(16, 16, 3, depthwise=True)
    dw.width = 0.25
    w, _, groups = dw.active_weight()
    assert groups == 4 and torch.equal(w.detach(), dw.weight.detach()[:4])


def test_narrow_model_ignores_wide_only_weights():
    model = tiny_model().eval()
    x = torch.rand(2, 3, 33, 41)
    set_width(model, 0.5)
    with torch.no_grad():
        before = model(x).logits.clone()
        # change every weight entry that only x1.0 uses: the x0.5 output must not move
        for m in model.modules():
            if isinstance(m, SlimConv2d) and m.slim_out:
                m.weight[-1:] += 5.0
        after = model(x).logits
        assert torch.allclose(before, after)
        set_width(model, 1.0)
        assert not torch.allclose(model(x).logits[:, :, :5, :5], after[:, :, :5, :5])


def test_switchable_batch_norm_statistics_independent():
    model = tiny_model().train()
    sbns = [m for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]
    snap = [[bn.running_mean.clone() for bn in s.bn] for s in sbns]
    set_width(model, 0.5)
    model(torch.rand(2, 3, 32, 32), boundary=True)
    k = WIDTHS.index(0.5)
    for s, old in zip(sbns, snap):
        for j, bn in enumerate(s.bn):
            moved = not torch.equal(bn.running_mean, old[j])
            assert moved == (j == k)
    assert sbns[0].bn[0].num_features == 2 and sbns[0].bn[-1].num_features == 8
    with pytest.raises(ValueError, match="widths"):
        set_width(model, 0.3)


def test_kd_gradient_does_not_reach_teacher():
    torch.manual_seed(0)
    student = torch.randn(2, 5, 4, 4, requires_grad=True)
    teacher_logits = torch.randn(2, 5, 4, 4, requires_grad=True)
    probs = torch.softmax(teacher_logits, 1)
    for mode in ("prev", "largest", "mean", "larger"):
        ts = teacher_targets([probs, probs * 0.5 + 0.1], mode)
        loss = torch.stack([kd_loss(student, t) for t in ts]).mean()
        loss.backward()
        assert teacher_logits.grad is None
        assert student.grad is not None and student.grad.abs().sum() > 0
        student.grad = None
    # KD to itself: minimum at the teacher, gradient zero
    s = teacher_logits.detach().clone().requires_grad_(True)
    kd_loss(s, torch.softmax(teacher_logits, 1)).backward()
    assert s.grad.abs().max() < 1e-6
    assert len(teacher_targets([probs, probs], "larger")) == 2
    with pytest.raises(ValueError):
        teacher_targets([probs], "best")


def test_teacher_modes_pick_the_right_widths():
    a, b, c = (torch.full((1, 2, 1, 1), v) for v in (0.1, 0.2, 0.3))  # nearest wider first
    assert teacher_targets([a, b, c], "prev")[0] is not None
    assert torch.equal(teacher_targets([a, b, c], "prev")[0], a)
    assert torch.equal(teacher_targets([a, b, c], "largest")[0], c)
    assert torch.allclose(teacher_targets([a, b, c], "mean")[0], b)


def test_boundary_band_is_three_pixels_wide():
    lab = torch.zeros(20, 24, dtype=torch.long)
    lab[:, 10:] = 1
    band = boundary_band(lab, radius=3)
    cols = torch.nonzero(band.any(0)).flatten().tolist()
    assert cols == [7, 8, 9, 10, 11, 12]
    assert bool(band[:, 7:13].all())
    # void next to a class is no boundary; void pixels are never in the band
    lab2 = torch.zeros(20, 24, dtype=torch.long)
    lab2[:, 10:] = 255
    assert not bool(boundary_band(lab2).any())
    lab3 = lab.clone()
    lab3[:, 9:11] = 255  # a 2-px void strip between classes 0 and 1
    b3 = boundary_band(lab3)
    assert not bool(b3[:, 9:11].any())
    # a window must hold both classes: across a void strip the band shrinks by the strip width
    assert torch.nonzero(b3.any(0)).flatten().tolist() == [8, 11]
    # batched input gives the same per image
    assert torch.equal(boundary_band(torch.stack([lab, lab3]))[1], b3)


def test_ohem_keeps_hard_pixels():
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 0] = 5.0  # confident class 0 everywhere
    y = torch.zeros(1, 4, 4, dtype=torch.long)
    y[0, 0, 0] = 1  # one hard pixel
    y[0, 3, 3] = 255
    hard = ohem_ce(logits, y, min_kept=1 / 16)
    ce = torch.nn.functional.cross_entropy(logits, y, ignore_index=255)
    assert hard > ce and torch.isclose(hard, torch.log1p(torch.exp(torch.tensor(5.0))), atol=1e-4)


def test_from_deeplab_x1_equals_the_source_and_orders_channels():
    torch.manual_seed(1)
    src = DeepLabV3Plus(tiny_arch(num_classes=4)).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.mul_(torch.rand_like(p) * 2)  # unequal channel norms
    slim = from_deeplab(src, widths=WIDTHS).eval()
    x = torch.rand(2, 3, 37, 29)
    with torch.no_grad():
        ref = src(x).logits
        assert torch.allclose(slim(x).logits, ref, atol=1e-4)
        calibrate_bn(slim, x)
        assert torch.allclose(slim(x).logits, ref, atol=1e-3)
        slim.train()
        assert torch.allclose(slim(x, boundary=False).logits, ref, atol=1e-3)
    orders = channel_order(src.state_dict(), src.config)
    for sp in orders:
        s = sp["score"][sp["perm"]]
        assert bool((s[:-1] >= s[1:]).all())
    # another class count: classifier replaced, the rest kept
    slim3 = from_deeplab(src, num_classes=3, widths=(0.5, 1.0), boundary_head=False)
    assert slim3.classifier.weight.shape[0] == 3 and slim3.boundary is None


def test_flops_and_params_grow_with_width():
    model = tiny_model()
    rows = [count_flops(model, w, (64, 64)) for w in WIDTHS]
    macs = [r["macs"] for r in rows]
    assert macs == sorted(macs) and macs[0] < 0.25 * macs[-1]
    full = rows[-1]["params"]
    conv = sum(p.numel() for n, p in model.named_parameters()
               if not n.startswith("boundary") and ".bn." not in n)
    bn1 = sum(2 * s.bn[-1].num_features for s in model.modules()
              if isinstance(s, SwitchableBatchNorm2d) and s not in set(model.boundary.modules()))
    assert full == conv + bn1


def test_two_iterations_lower_the_loss():
    torch.manual_seed(0)
    opts = TrainOptions(widths=WIDTHS, pretrained="none", arch=tiny_arch().to_dict(),
                        ohem=False).validate()
    model = build_model(opts, 3).train()
    x = torch.rand(4, 3, 32, 32)
    y = (x[:, 0] > 0.5).long() + (x[:, 1] > 0.7).long()
    y[:, :2] = 255
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        logs = slimseg_step(model, x, y, opts)
        losses.append(logs["loss"])
        if len(losses) < 3:
            opt.step()
    assert losses[2] < losses[0]
    assert {f"seg_{w:g}" for w in WIDTHS} <= set(logs) and "b_0.25" in logs


def _tiny_folder(root, n=6, size=(24, 32)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, k in (("train", n), ("val", 3)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(k):
            lab = np.zeros(size, np.uint8)
            c = int(rng.integers(8, size[1] - 8))
            lab[:, c:] = 1
            lab[: size[0] // 3] = 2
            lab[0, 0] = 11  # void
            img = np.stack([lab * 100, 255 - lab * 100, rng.integers(0, 60, size)], -1)
            Image.fromarray(img.astype(np.uint8)).save(root / split / f"f{i}.png")
            Image.fromarray(lab).save(root / f"{split}annot" / f"f{i}.png")


def test_train_checkpoint_resume_and_eval(tmp_path):
    from sempix.slimseg.data import LabelledFolder
    from sempix.slimseg.evaluate import evaluate_slimseg

    _tiny_folder(tmp_path / "d")
    data = LabelledFolder(tmp_path / "d", "train")
    assert data.num_classes == 11 and data.labels[0, 0, 0] == 255
    opts = TrainOptions(widths=(0.5, 1.0), steps=2, batch=2, size=(24, 32), crop=(16, 16),
                        pretrained="none", arch=tiny_arch(11).to_dict(), threads=1,
                        checkpoint_every=1)
    ck = tmp_path / "c.pt"
    r = train_slimseg(tmp_path / "d", ck, opts)
    assert r["step"] == 2 and ck.is_file()
    model, ckd = load_slimseg(ck)
    assert model.widths == (0.5, 1.0) and ckd["config"]["model"]["options"]["steps"] == 2
    assert any(".bn.bn.0." in k for k in ckd["state_dicts"]["model"])
    opts.steps = 3
    assert train_slimseg(tmp_path / "d", ck, opts, resume=True)["step"] == 3
    ev = evaluate_slimseg(tmp_path / "d", ck, speed=True)
    assert [row["width"] for row in ev["widths"]] == [0.5, 1.0]
    for row in ev["widths"]:
        assert 0 <= row["miou"] <= 1 and 0 <= row["band_acc"] <= 1 and row["seconds"] > 0


def test_cli_errors(tmp_path):
    from sempix.cli import main

    _tiny_folder(tmp_path / "d", n=2)
    (tmp_path / "c.pt").write_bytes(b"x")
    with pytest.raises(SystemExit) as e:
        main(["slimseg", "train", str(tmp_path / "d"), "-o", str(tmp_path / "c.pt")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["slimseg", "eval", str(tmp_path / "d"), str(tmp_path / "c.pt")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["slimseg", "train", str(tmp_path / "d"), "-o", str(tmp_path / "n.pt"),
              "--widths", "0,2"])
    assert e.value.code == 2
