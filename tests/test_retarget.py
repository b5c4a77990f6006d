"""Tests of sempix.retarget (Deep Network Resizing): VGG loading, deep seams, warp, reconstruction,
CLI."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sempix.errors import InputError
from sempix.retarget import deep, retarget, scale_image
from sempix.retarget.reconstruct import (
    feature_loss,
    high_pass,
    reconstruct,
    refine,
    ycbcr_to_rgb,
)
from sempix.retarget.seams import carve_mask
from sempix.retarget.vgg import (
    OPS,
    VGG19Features,
    canonical_layer,
    load_vgg,
    relative_receptive_field,
    resolve_layers,
    to_tensor,
)

from reference.retarget import carve_mask_reference

# -------------------------------------------------------------------------------------------
# fixtures


def _random_torchvision_state(depth: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-format VGG-19 state dict (features.N.*) with random weights up to ``depth``."""
    g = torch.Generator().manual_seed(seed)
    state, idx = {}, 0
    for op in OPS:
        if op.kind == "conv":
            std = (2.0 / (9 * op.in_ch)) ** 0.5
            state[f"features.{idx}.weight"] = (
                torch.randn(op.out_ch, op.in_ch, 3, 3, generator=g) * std
            )
            state[f"features.{idx}.bias"] = torch.randn(op.out_ch, generator=g) * 0.01
            idx += 2
        else:
            idx += 1
        if op.name == depth:
            break
    state["classifier.0.weight"] = torch.zeros(1)  # extra keys of the real file are ignored
    return state


@pytest.fixture(scope="module")
def tv_weights(tmp_path_factory):
    p = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(_random_torchvision_state("relu3_1"), p)
    return p


@pytest.fixture(scope="module")
def net(tv_weights):
    return load_vgg(str(tv_weights))


@pytest.fixture
def small_image(rng):
    """A 32x40 image with smooth background and two coloured objects."""
    h, w = 32, 40
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = np.stack([0.4 + 0.2 * xx, 0.5 + 0.1 * yy, 0.6 - 0.2 * xx], -1)
    img[6:16, 5:13] = (0.9, 0.1, 0.1)
    img[18:29, 24:34] = (0.1, 0.2, 0.9)
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------- VGG


def test_torchvision_key_mapping_matches_manual_forward(tv_weights, rng):
    state = torch.load(tv_weights, weights_only=True)
    net = load_vgg(str(tv_weights))
    assert net.fmt == "vgg19" and net.depth == "relu3_1"
    img = rng.random((20, 24, 3), dtype=np.float32)
    x = to_tensor(img)
    # torchvision layout by hand: 0 conv 2 conv 4 pool 5 conv 7 conv 9 pool 10 conv
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    y = (x - mean) / std
    for i in (0, 2):
        y = F.relu(
            F.conv2d(y, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1)
        )
    y = F.max_pool2d(y, 2)
    for i in (5, 7):
        y = F.relu(
            F.conv2d(y, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1)
        )
    relu2_2 = y
    y = F.relu(
        F.conv2d(
            F.max_pool2d(y, 2), state["features.10.weight"], state["features.10.bias"], padding=1
        )
    )
    with torch.no_grad():
        out = net(x, ["relu2_2", "relu3_1"])
    torch.testing.assert_close(out["relu2_2"], relu2_2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["relu3_1"], y, rtol=1e-4, atol=1e-5)


def test_missing_layers_warn_once_and_use_deepest(caplog):
    from sempix._runtime import reset_warnings

    reset_warnings()  # other tests of the session may have emitted it already
    with caplog.at_level(logging.WARNING):
        used = resolve_layers(
            ["block1_conv2", "block2_conv2", "block3_conv4", "block4_conv5", "block5_pool"],
            "relu3_1",
        )
        used2 = resolve_layers(
            ["block1_conv2", "block2_conv2", "block3_conv4", "block4_conv5", "block5_pool"],
            "relu3_1",
        )
    assert used == used2 == ["relu1_2", "relu2_2", "relu3_1"]
    msgs = [r.getMessage() for r in caplog.records if "relu3_1" in r.getMessage()]
    assert len(msgs) == 1 and "relu4_4" in msgs[0]
    assert canonical_layer("conv3_1") == "relu3_1" and canonical_layer("block5_pool") == "pool5"
    with pytest.raises(InputError):
        canonical_layer("relu9_9")


# the normalised VGG (real file): activation of relu2_1 / relu3_1 on a seeded 32x32 image, recorded
# once
_REC_RELU2_1_MEAN = 1.2011713023208586
_REC_RELU3_1_MEAN = 1.6679119811381042
_REC_RELU3_1_AT_5_7 = (4.62777042388916, 2.790816068649292, 2.5177056789398193)


def test_normalised_vgg_reproduces_recorded_activation(model_dir):
    from sempix.models import get_model_path

    path = get_model_path("vgg19-normalised-relu3_1")
    net = load_vgg("vgg19-normalised-relu3_1")
    assert path.is_file() and net.fmt == "vgg19-normalised-relu3_1" and net.depth == "relu3_1"
    img = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    with torch.no_grad():
        o = net(to_tensor(img), ["relu2_1", "relu3_1"])
    assert o["relu2_1"].shape == (1, 128, 16, 16) and o["relu3_1"].shape == (1, 256, 8, 8)
    assert float(o["relu2_1"].double().mean()) == pytest.approx(_REC_RELU2_1_MEAN, rel=1e-4)
    assert float(o["relu3_1"].double().mean()) == pytest.approx(_REC_RELU3_1_MEAN, rel=1e-4)
    got = [float(o["relu3_1"][0, c, 5, 7]) for c in range(3)]
    assert got == pytest.approx(_REC_RELU3_1_AT_5_7, rel=1e-4)


# ------------------------------------------------------------------------------------------- seams
# / RF


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_carve_mask_matches_reference(seed):
    r = np.random.default_rng(seed)
    e = r.random((9, 13))
    if seed == 2:
        e = np.round(e * 3) / 3  # many ties
    got, n = carve_mask(e, 5)
    ref = carve_mask_reference(e, 5)
    assert n == 5
    np.testing.assert_array_equal(got, ref)
    assert (got.sum(axis=1) == 5).all()


def test_carve_mask_threshold_stops_after_min_seams():
    e = np.ones((6, 10))
    e[:, 3] = 0.0
    removed, n = carve_mask(e, 5, thresh=0.5, min_n=1)
    assert n == 1 and removed[:, 3].all()
    removed, n = carve_mask(
        e, 5, thresh=-1.0, min_n=1
    )  # at least one seam even above the threshold
    assert n == 1


@pytest.mark.parametrize("deep_layer", ["relu1_2", "relu2_1", "relu2_2", "relu3_1", "pool3"])
def test_receptive_field_matches_autograd(deep_layer, monkeypatch):
    """(jump, start, size) of the image-level receptive field = support of the input gradient.

    Max-pooling routes gradients to one element per window, so it is replaced by average pooling
    (same
    geometry) to make the gradient support the full receptive field.
    """
    monkeypatch.setattr(
        F, "max_pool2d", lambda x, k, s, ceil_mode=False: F.avg_pool2d(x, k, s, ceil_mode=ceil_mode)
    )
    torch.manual_seed(0)
    net = VGG19Features("vgg19", depth=deep_layer)
    for (
        conv
    ) in net.convs.values():  # positive weights: no cancellation, so the support is the full RF
        conv.weight.data = conv.weight.data.abs() + 0.01
        conv.bias.data.fill_(0.1)
    x = torch.rand(1, 3, 96, 96, requires_grad=True)
    out = net(x, [deep_layer])[deep_layer]
    jump, start, size = relative_receptive_field(None, deep_layer)
    for pos in (3, 5):
        x.grad = None
        out[0, :, pos, pos].sum().backward(retain_graph=True)
        cols = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1)) > 0).flatten()
        assert int(cols.min()) == pos * jump + start
        assert int(cols.max()) == pos * jump + start + size - 1


def test_relative_receptive_fields_compose():
    for a, b, c in [
        (None, "relu1_2", "relu3_1"),
        ("relu1_2", "relu2_2", "relu3_1"),
        (None, "relu2_1", "pool5"),
    ]:
        j1, s1, r1 = relative_receptive_field(a, b)
        j2, s2, r2 = relative_receptive_field(b, c)
        assert relative_receptive_field(a, c) == (j1 * j2, s1 + s2 * j1, r1 + (r2 - 1) * j1)


def _synthetic_features(alpha_band_col=5, decoy_col=25, seed=0):
    """Deep relu3_1 (8x16) with a cheap column; shallow relu2_2 (16x32) with a slightly cheaper
    decoy elsewhere."""
    r = np.random.default_rng(seed)
    deep_f = 1.0 + 0.2 * r.random((1, 4, 8, 16))
    deep_f[..., alpha_band_col] = 0.05
    shallow = 0.8 + 0.2 * r.random((1, 4, 16, 32))
    shallow[..., decoy_col] = 0.7  # cheapest column of the shallow layer when unguided
    return {
        "relu3_1": torch.tensor(deep_f, dtype=torch.float32),
        "relu2_2": torch.tensor(shallow, dtype=torch.float32),
    }


def test_deep_seams_consistent_across_layers():
    feats = _synthetic_features()
    tw = {"relu3_1": 12, "relu2_2": 24}
    # 8 of the 128 deep positions are cheap: with the 5th percentile the second seam is too
    # expensive
    p = deep.plan(feats, (32, 64), 48, tw, alpha=0.5, percentile=5)
    d, s, im = p.levels["relu3_1"], p.levels["relu2_2"], p.levels[deep.IMAGE]
    assert d.n_removed == 1 and d.removed[:, 5].all()
    # same ratio of removed columns in every level
    assert s.n_removed == 2 and im.n_removed == 4
    # shallow seams inside the receptive field of the deep seam (columns 5*2-2 .. 5*2+3)
    jump, start, size = relative_receptive_field("relu2_2", "relu3_1")
    lo, hi = 5 * jump + start, 5 * jump + start + size - 1
    cols = np.nonzero(s.removed)[1]
    assert ((cols >= lo) & (cols <= hi)).all()
    rf = deep.receptive_field_mask(d.removed, "relu3_1", "relu2_2", (16, 32))
    assert rf[s.removed].all()
    # image seams inside the receptive fields of the relu2_2 seams
    rf_img = deep.receptive_field_mask(s.removed, "relu2_2", None, (32, 64))
    assert rf_img[im.removed].all()
    # without the guidance (alpha = 1) the shallow layer takes its own cheaper decoy column instead
    p1 = deep.plan(feats, (32, 64), 48, tw, alpha=1.0, percentile=5)
    assert p1.levels["relu2_2"].removed[:, 25].all()
    assert not rf[p1.levels["relu2_2"].removed].all()


# ------------------------------------------------------------------------------------------- warp


@pytest.mark.parametrize("width,target", [(100, 75), (57, 20), (64, 64), (40, 61), (33, 99)])
def test_warp_widths_sum_to_target(width, target, rng):
    imp = rng.random(16) + 0.01
    widths = deep.warp_cell_widths(width, target, imp)
    assert widths.sum() == target and (widths >= 0).all()
    s = deep.cell_scales(imp, target / width)
    assert s.mean() == pytest.approx(target / width, rel=1e-9)
    if target < width:  # important cells shrink least
        assert s[np.argmax(imp)] >= s[np.argmin(imp)] and (s <= 1 + 1e-9).all()
    if target > width:  # unimportant cells stretch most
        assert s[np.argmin(imp)] >= s[np.argmax(imp)] and (s >= 1 - 1e-9).all()


def test_resample_columns_identity_and_torch_numpy_agree(rng):
    a = rng.random((3, 5, 11)).astype(np.float32)
    xs = np.arange(11, dtype=np.float64)
    np.testing.assert_allclose(deep.resample_columns(a, xs), a, atol=1e-6)
    xs = np.linspace(0, 10, 7)
    np.testing.assert_allclose(
        deep.resample_columns(torch.from_numpy(a), xs).numpy(),
        deep.resample_columns(a, xs),
        atol=1e-5,
    )


# -------------------------------------------------------------------------------------------
# retarget API


@pytest.mark.parametrize("method", ["scale", "multiop", "warp", "dnr"])
@pytest.mark.parametrize("size", [(29, None), (None, 23), (50, None), (35, 27)])
def test_output_sizes_exact(method, size, small_image, tv_weights):
    w, h = size
    res = retarget(
        small_image,
        w,
        h,
        method=method,
        weights=str(tv_weights),
        iterations=1,
        refine_iterations=1,
        extra=small_image[..., 0],
    )
    H, W = small_image.shape[:2]
    assert res.image.shape == (h or H, w or W, 3)
    assert res.image.dtype == np.float32 and res.image.min() >= 0 and res.image.max() <= 1
    assert res.extra.shape == (h or H, w or W)


@pytest.mark.parametrize("method", ["seam", "semantic-seam"])
def test_seam_methods_sizes(method, small_image):
    pytest.importorskip("sempix.carve")
    res = retarget(small_image, 36, 34, method=method, features="lowlevel")
    assert res.image.shape == (34, 36, 3)


def test_reconstruction_decreases_loss_and_refinement_never_increases(small_image, tv_weights):
    res = retarget(
        small_image,
        30,
        method="dnr",
        weights=str(tv_weights),
        iterations=8,
        refine_iterations=3,
        lambdas=[1, 0.5, 0.5],
    )
    assert len(res.losses) == 9
    assert res.losses[-1] < 0.8 * res.losses[0]
    assert min(res.refine_losses) <= res.refine_losses[0]
    # the returned image is never worse than the unrefined reconstruction
    from sempix.retarget.pipeline import loss_of

    net = load_vgg(str(tv_weights))
    final = loss_of(res.image, small_image, res, net)
    assert final <= res.refine_losses[0] * (1 + 1e-4)


def test_refine_alone_does_not_increase_loss(net, small_image, rng):
    x = to_tensor(small_image)
    with torch.no_grad():
        targets = {"relu1_2": net(torch.roll(x, 1, dims=3), ["relu1_2"])["relu1_2"]}
    lam = {"relu1_2": 1.0}
    out, losses = refine(net, targets, x, lam, iterations=6, lr=0.3)
    with torch.no_grad():
        after = float(feature_loss(net, out, targets, lam))
    assert after <= losses[0] * (1 + 1e-5)
    assert after < losses[0]  # a 1-pixel shift is exactly what a sampling grid can undo
    out2, losses2 = refine(
        net, targets, x, lam, iterations=3, lr=1e3
    )  # absurd step: must fall back
    with torch.no_grad():
        assert float(feature_loss(net, out2, targets, lam)) <= losses2[0] * (1 + 1e-5)


def test_reconstruct_recovers_target(net, small_image):
    x = to_tensor(small_image)
    with torch.no_grad():
        targets = {"relu1_2": net(x, ["relu1_2"])["relu1_2"]}
    start = torch.full_like(x, 0.5)
    out, losses = reconstruct(net, targets, start, {"relu1_2": 1.0}, iterations=20, lr=0.05)
    assert losses[-1] < 0.5 * losses[0]
    assert float((out - x).abs().mean()) < float((start - x).abs().mean())


def _textured_target_case(net, small_image):
    """Targets = relu1_2 features of the image plus noise; start = the clean image. Matching the
    targets needs fine texture, which the plain pixel reconstruction invents."""
    x = to_tensor(small_image)
    g = torch.Generator().manual_seed(0)
    tex = (x + 0.15 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        targets = {"relu1_2": net(tex, ["relu1_2"])["relu1_2"]}
    return x, targets, {"relu1_2": 1.0}


def test_reconstruct_default_unchanged(net, small_image):
    # regression value of the reconstruction before hf_weight / residual_scale existed (the same
    # value was obtained with the earlier code on this case)
    x, targets, lam = _textured_target_case(net, small_image)
    _, losses = reconstruct(net, targets, x, lam, iterations=15, lr=0.05)
    out, losses2 = reconstruct(
        net, targets, x, lam, iterations=15, lr=0.05, hf_weight=0.0, residual_scale=1
    )
    assert losses[0] == pytest.approx(152.7629, rel=1e-3)
    assert losses[-1] == pytest.approx(22.8886, rel=1e-3)
    assert losses2 == losses


def test_hf_penalty_and_low_res_residual_reduce_high_frequencies(net, small_image):
    x, targets, lam = _textured_target_case(net, small_image)

    def detail(o: torch.Tensor) -> float:
        return float(torch.linalg.vector_norm(high_pass(o)))

    plain, _ = reconstruct(net, targets, x, lam, iterations=15, lr=0.05)
    assert detail(plain) > 2 * detail(x)  # the plain reconstruction invents texture
    soft, _ = reconstruct(net, targets, x, lam, iterations=15, lr=0.05, hf_weight=0.3)
    strong, _ = reconstruct(net, targets, x, lam, iterations=15, lr=0.05, hf_weight=1.0)
    half, half_losses = reconstruct(
        net, targets, x, lam, iterations=15, lr=0.05, residual_scale=2
    )
    assert detail(strong) < detail(soft) < 0.97 * detail(plain)
    assert detail(strong) <= 1.05 * detail(x)
    assert detail(half) < 0.7 * detail(plain)
    assert half_losses[-1] < half_losses[0]  # the low-resolution residual still reduces the loss
    # the residual is smooth: its own detail is small next to the plain reconstruction's change
    assert detail(half - x) < 0.5 * detail(plain - x)
    assert half.shape == x.shape and float(half.min()) >= 0 and float(half.max()) <= 1


def _chroma_detail(o: torch.Tensor) -> float:
    r, g, b = o[:, 0:1], o[:, 1:2], o[:, 2:3]
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return float(torch.linalg.vector_norm(high_pass(torch.cat([cb, cr], 1))))


def test_ycbcr_to_rgb_inverts_jpeg_transform():
    rgb = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    assert torch.allclose(ycbcr_to_rgb(torch.cat([y, cb, cr], 1)), rgb, atol=1e-4)


def test_chroma_scale_limits_invented_colour_detail(net, small_image):
    x, targets, lam = _textured_target_case(net, small_image)
    plain, _ = reconstruct(net, targets, x, lam, iterations=15, lr=0.05)
    cs2, losses = reconstruct(net, targets, x, lam, iterations=15, lr=0.05, chroma_scale=2)
    assert losses[-1] < 0.8 * losses[0]
    # the chroma of the change is smooth, its luma is not constrained
    assert _chroma_detail(cs2 - x) < 0.5 * _chroma_detail(plain - x)
    assert float(torch.linalg.vector_norm(high_pass(cs2 - x))) > 0.3 * float(
        torch.linalg.vector_norm(high_pass(plain - x))
    )
    # regression values of this case
    assert losses[-1] == pytest.approx(107.96, rel=1e-3)


def test_hf_options_validated_and_passed_through(small_image, tv_weights):
    for kw in ({"hf_weight": -1.0}, {"hf_weight": float("nan")}, {"residual_scale": 0},
               {"residual_scale": 1.5}, {"residual_scale": True}, {"chroma_scale": 0}):
        with pytest.raises(InputError):
            retarget(small_image, 30, method="dnr", weights=str(tv_weights), **kw)
    with pytest.raises(ValueError):
        reconstruct(None, {}, torch.zeros(1, 3, 4, 4), {}, hf_weight=-1)
    with pytest.raises(ValueError):
        reconstruct(None, {}, torch.zeros(1, 3, 4, 4), {}, residual_scale=0)
    with pytest.raises(ValueError):
        reconstruct(None, {}, torch.zeros(1, 3, 4, 4), {}, chroma_scale=2.5)
    kw = dict(method="dnr", weights=str(tv_weights), iterations=4, refine_iterations=0)
    base = retarget(small_image, 30, **kw)
    for extra in ({"hf_weight": 1.0}, {"residual_scale": 3}, {"chroma_scale": 2}):
        res = retarget(small_image, 30, **kw, **extra)
        assert res.image.shape == (32, 30, 3)
        assert not np.array_equal(res.image, base.image)


def test_bad_inputs(small_image, tv_weights):
    with pytest.raises(InputError):
        retarget(small_image, 30, method="nope")
    with pytest.raises(InputError):
        retarget(small_image, 0, method="scale")
    with pytest.raises(InputError):
        retarget(small_image[..., :2], 30, method="scale")
    with pytest.raises(InputError):
        retarget(small_image, 30, method="dnr", weights=str(tv_weights), lambdas=[0, 0, 0])


def test_semantic_score_identity_and_shrink(small_image, tv_weights):
    from sempix.retarget import semantic_score

    net = load_vgg(str(tv_weights))
    assert semantic_score(small_image, small_image, net=net) == pytest.approx(1.0)
    half = scale_image(small_image, 20, 32)
    assert semantic_score(small_image, half, net=net) < 1.0


def test_semantic_score_ade20k(ade20k_available, small_image):
    from sempix.retarget import semantic_score

    half = scale_image(small_image, 20, 32)
    ss = semantic_score(small_image, half, kind="ade20k")
    assert 0.3 < ss < 1.0


# ------------------------------------------------------------------------------------------- CLI


def _cli(args):
    from click.testing import CliRunner

    from sempix.cli import cli

    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.fixture
def image_file(tmp_path, small_image):
    from sempix.image import write_image

    return write_image(tmp_path / "in.png", small_image)


def test_cli_dnr_with_preview(image_file, tmp_path, tv_weights):
    from sempix.image import load_rgb

    out = tmp_path / "out.png"
    r = _cli(
        [
            "retarget",
            str(image_file),
            "-o",
            str(out),
            "--width",
            "75%",
            "--method",
            "dnr",
            "--iterations",
            "2",
            "--refine-iterations",
            "1",
            "--weights",
            str(tv_weights),
            "--preview",
            "-q",
        ]
    )
    assert r.exit_code == 0, r.output
    assert load_rgb(out).shape == (32, 30, 3)
    prev = load_rgb(tmp_path / "out.preview.png")
    assert prev.shape[0] > 32 and prev.shape[1] > 60  # importance maps + snapshots side by side


def test_cli_height_multiop(image_file, tmp_path, tv_weights):
    from sempix.image import load_rgb

    out = tmp_path / "o.jpg"
    r = _cli(
        [
            "retarget",
            str(image_file),
            "-o",
            str(out),
            "--height",
            "20",
            "--method",
            "multiop",
            "--weights",
            str(tv_weights),
            "-q",
        ]
    )
    assert r.exit_code == 0, r.output
    assert load_rgb(out).shape == (20, 40, 3)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--width", "-5"], "--width"),
        (["--width", "abc"], "--width"),
        ([], "give --width"),
        (["--width", "50%", "--lambdas", "x"], "--lambdas"),
    ],
)
def test_cli_bad_input_exit_2(image_file, tmp_path, args, needle):
    out = tmp_path / "bad.png"
    r = _cli(["retarget", str(image_file), "-o", str(out), "--method", "scale", *args])
    assert r.exit_code == 2
    assert needle in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_cli_refuses_to_overwrite_input(image_file):
    r = _cli(
        ["retarget", str(image_file), "-o", str(image_file), "--width", "50%", "--method", "scale"]
    )
    assert r.exit_code == 2 and "overwrite" in r.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_input_error(small_image, tv_weights):
    with pytest.raises(InputError, match="cuda"):
        retarget(small_image, 30, method="dnr", weights=str(tv_weights), device="cuda")


def test_dnr_init_seam_and_multiop(small_image, tv_weights):
    pytest.importorskip("sempix.carve")
    for init in ("seam", "multiop"):
        res = retarget(
            small_image,
            28,
            method="dnr",
            init=init,
            weights=str(tv_weights),
            iterations=2,
            refine_iterations=0,
            snapshot_every=1,
        )
        assert res.image.shape == (32, 28, 3)
        assert res.snapshots[0][1].shape == (32, 28, 3) and len(res.snapshots) >= 2


def test_energy_lambda_norm_makes_terms_relative(small_image, tv_weights):
    from sempix.retarget.pipeline import _energy_lambdas

    used = ["relu1_2", "relu2_2", "relu3_1"]
    g = torch.Generator().manual_seed(0)
    targets = {
        "relu1_2": torch.randn(1, 4, 8, 8, generator=g) * 3.0,
        "relu2_2": torch.randn(1, 4, 4, 4, generator=g) * 10.0,
        "relu3_1": torch.randn(1, 4, 2, 2, generator=g) * 0.5,
    }
    lam = _energy_lambdas({"relu1_2": 1.0, "relu2_2": 1.0, "relu3_1": 2.0}, targets, used)
    norms = {n: float(torch.linalg.vector_norm(t)) for n, t in targets.items()}
    assert lam["relu1_2"] == pytest.approx(1.0)
    # every weighted term lambda_i * ||F'_i|| equals lambda_i(given) * ||F'_1||
    assert lam["relu2_2"] * norms["relu2_2"] == pytest.approx(norms["relu1_2"])
    assert lam["relu3_1"] * norms["relu3_1"] == pytest.approx(2.0 * norms["relu1_2"])
    # zero weights stay zero; a single-layer loss is unchanged
    assert _energy_lambdas({"relu1_2": 0.0, "relu2_2": 0.0, "relu3_1": 1.0}, targets, used) == {
        "relu1_2": 0.0,
        "relu2_2": 0.0,
        "relu3_1": 1.0,
    }
    res = retarget(
        small_image,
        30,
        method="dnr",
        weights=str(tv_weights),
        iterations=3,
        refine_iterations=1,
        lambdas=[1, 1, 1],
        lambda_norm="energy",
    )
    assert res.image.shape == (32, 30, 3)
    assert len(res.meta["effective_lambdas"]) == 1 and res.losses[-1] < res.losses[0]
    with pytest.raises(InputError):
        retarget(small_image, 30, method="dnr", weights=str(tv_weights), lambda_norm="bogus")


def test_default_percentile_depends_on_depth():
    from sempix.retarget import default_percentile

    assert (
        default_percentile(["relu1_2", "relu2_2", "relu3_4", "relu4_4", "pool5"]) == 20.0
    )  # the paper's
    assert default_percentile(["relu1_2", "relu2_2", "relu3_1"]) == 50.0  # weights stop at relu3_1
    assert default_percentile(["relu4_4", "relu1_2"]) == 50.0  # stride 8; the order does not matter
    assert default_percentile(["relu5_1", "relu1_2"]) == 20.0  # stride 16


def test_percentile_default_recorded_and_more_deep_seams(small_image, tv_weights):
    # the random test weights stop at relu3_1 -> default 50; 50 never removes fewer deep seams than
    # 20
    r50 = retarget(small_image, 24, method="multiop", weights=str(tv_weights))
    r20 = retarget(small_image, 24, method="multiop", weights=str(tv_weights), percentile=20)
    assert r50.meta["percentile"] == 50.0 and r20.meta["percentile"] == 20.0
    deep = r50.meta["deepest"]
    assert r50.plans[0].levels[deep].n_removed >= r20.plans[0].levels[deep].n_removed
    with pytest.raises(InputError):
        retarget(small_image, 24, method="multiop", weights=str(tv_weights), percentile=120)


# ------------------------------------------------------------------------------ semantic protection


def test_protected_importance_adds_scaled_area_average():
    from sempix.retarget.deep import protected_importance

    imp = np.ones((4, 6), np.float32)
    imp[0, 0] = 3.0
    prot = np.zeros((16, 24), np.float32)
    prot[:, 12:16] = 1.0  # covers exactly column 3 of the 4x6 grid (stride 4)
    prot[:, 16:18] = 1.0  # half of column 4
    out = protected_importance(imp, prot, weight=0.5)
    assert out.shape == imp.shape
    np.testing.assert_allclose(out[:, 3], imp[:, 3] + 0.5 * 3.0)
    np.testing.assert_allclose(out[:, 4], imp[:, 4] + 0.25 * 3.0)
    np.testing.assert_allclose(out[:, :3], imp[:, :3])


def test_plan_seams_avoid_protected_region(rng):
    # deep features with a cheap vertical band at columns 8-11; protecting it sends the seams
    # elsewhere
    feats = {"relu1_2": torch.from_numpy(rng.uniform(1.0, 2.0, (1, 4, 16, 32)).astype(np.float32))}
    feats["relu1_2"][..., 8:12] *= 0.05
    tw = {"relu1_2": 28}
    free = deep.plan(feats, (16, 32), 28, tw, percentile=100)
    assert free.levels["relu1_2"].removed[:, 8:12].sum() == 4 * 16
    prot = np.zeros((16, 32), np.float32)
    prot[:, 8:12] = 1.0
    kept = deep.plan(feats, (16, 32), 28, tw, percentile=100, protect=prot)
    assert kept.levels["relu1_2"].removed[:, 8:12].sum() == 0
    assert kept.levels[deep.IMAGE].removed[:, 8:12].sum() == 0


def test_retarget_protect_map_and_errors(small_image, tv_weights):
    h, w = small_image.shape[:2]
    prot = np.zeros((h, w), np.float32)
    prot[18:29, 24:34] = 1.0  # the blue object
    res = retarget(
        small_image, 26, method="multiop", weights=str(tv_weights), protect=prot, extra=prot
    )
    assert res.meta["protect"]["share"] == pytest.approx(prot.mean())
    # the protected object keeps (almost) all of its columns: its carried mask keeps its area
    assert res.extra.sum() >= 0.9 * prot.sum()
    off = retarget(small_image, 26, method="multiop", weights=str(tv_weights), protect="none")
    assert off.meta["protect"] is None
    with pytest.raises(InputError):
        retarget(small_image, 26, method="multiop", weights=str(tv_weights), protect=prot[:-1])
    with pytest.raises(InputError):
        retarget(
            small_image,
            26,
            method="multiop",
            weights=str(tv_weights),
            protect="person",
            features="lowlevel",
        )


def test_protect_auto_keeps_the_astronaut(ade20k_available, model_dir, monkeypatch):
    import skimage.data

    from sempix.features import class_mask, compute_features

    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(model_dir))
    img = (
        skimage.data.astronaut()[::2, ::2].astype(np.float32) / 255.0
    )  # 256x256, a person at the centre
    person = class_mask(compute_features(img, "ade20k"), "person").astype(np.float32)
    assert person.mean() > 0.2
    on = retarget(img, 160, method="multiop", extra=person)
    off = retarget(img, 160, method="multiop", extra=person, protect="none")
    assert "person" in on.meta["protect"]["classes"] and on.meta["protect"]["share"] > 0.2
    # with protection more of the person survives the 62.5 % width (area of the carried mask)
    assert on.extra.sum() > off.extra.sum() * 1.05


def test_preview_shows_protection_tile(small_image, tv_weights):
    from sempix.retarget.preview import preview

    prot = np.zeros(small_image.shape[:2], np.float32)
    prot[18:29, 24:34] = 1.0
    on = retarget(small_image, 26, method="multiop", weights=str(tv_weights), protect=prot)
    off = retarget(small_image, 26, method="multiop", weights=str(tv_weights), protect="none")
    assert on.plans[0].meta["protect"] is not None and off.plans[0].meta["protect"] is None
    assert preview(small_image, on).shape[1] > preview(small_image, off).shape[1]
