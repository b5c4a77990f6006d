"""Burst toolkit: synthesis statistics, alignment, classical merge, P-D curves / AUR, toy model,
metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sempix.burst.align import align, estimate_translation, translations
from sempix.burst.classical import estimate_noise, restore_classical, sharpen
from sempix.burst.metrics import imresize_matlab, psnr, rmse, ssim
from sempix.burst.pd import Bounds, aur, common_bounds, envelope
from sempix.burst.synth import BurstParams, add_noise, sample_frame, sample_shifts, synthesize
from sempix.burst.toy import compare, monte_carlo, spectrum, toy_curve
from sempix.errors import InputError


def _texture(rng, h=64, w=64):
    """Smooth random texture in [0.2, 0.8] (band-limited, so sub-pixel shifts are well defined)."""
    from scipy import ndimage

    x = ndimage.gaussian_filter(rng.random((h, w, 3)), (2.0, 2.0, 0))
    x = (x - x.min()) / (x.max() - x.min())
    return (0.2 + 0.6 * x).astype(np.float32)


# ------------------------------------------------------------------------------------- synthesis


def test_noise_variance_matches_parameters(rng):
    flat = np.full((64, 64, 3), 0.5, np.float32)
    y = np.stack([add_noise(flat, 2.0, 10.0, rng, clip=False) for _ in range(20)])
    var255 = np.var(y * 255.0)
    expected = 2.0 * 127.5 + 10.0**2  # shot: lambda_p * x, read: sigma_g^2 (8-bit scale)
    assert var255 == pytest.approx(expected, rel=0.03)
    assert np.mean(y) == pytest.approx(0.5, abs=2e-3)
    p = BurstParams(shot=2.0, read=10.0)
    assert float(p.noise_std(0.5)) * 255 == pytest.approx(np.sqrt(expected))


def test_shift_distribution_random_and_correlated():
    rng = np.random.default_rng(1)
    v = sample_shifts(20000, 2.0, "random", rng)
    assert np.all(v[0] == 0)
    assert np.std(v[1:], axis=0) == pytest.approx([2.0, 2.0], rel=0.03)
    assert np.abs(np.mean(v[1:], axis=0)).max() < 0.05
    w = sample_shifts(20000, 1.5, "correlated", rng)
    steps = np.diff(w, axis=0)
    assert np.std(steps, axis=0) == pytest.approx([1.5, 1.5], rel=0.03)
    assert np.all(w[0] == 0)


def test_synthesis_is_seeded_and_shapes(rng):
    x = _texture(rng, 66, 70)  # cropped to a multiple of the scale
    a = synthesize(x, n=4, scale=2, shake=1.0, read=5.0, seed=3)
    b = synthesize(x, n=4, scale=2, shake=1.0, read=5.0, seed=3)
    c = synthesize(x, n=4, scale=2, shake=1.0, read=5.0, seed=4)
    assert a.frames.shape == (4, 33, 35, 3) and a.hr.shape == (66, 70, 3)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.shifts, b.shifts)
    assert not np.array_equal(a.frames, c.frames)
    assert np.all(a.shifts[0] == 0)


def test_sample_frame_is_the_formation_model(rng):
    x = _texture(rng)
    f = sample_frame(x, (0.0, 0.0), 2)
    # no shift: LR pixel u sits at HR coordinate 2u + 0.5, the average of two HR pixels per axis
    expect = 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
    np.testing.assert_allclose(f, expect, atol=1e-5)
    g = sample_frame(x, (2.0, 0.0), 2)  # a 2-HR-pixel shift is one LR row
    np.testing.assert_allclose(g[:-2], f[1:-1], atol=1e-5)


def test_bad_parameters_raise():
    with pytest.raises(InputError):
        BurstParams(n=0).validate()
    with pytest.raises(InputError):
        BurstParams(read=-1).validate()
    with pytest.raises(InputError):
        BurstParams(motion="zigzag").validate()


# ------------------------------------------------------------------------------------- alignment


def test_phase_correlation_recovers_known_shifts(rng):
    x = _texture(rng, 128, 128)
    true = np.array([[0, 0], [1.5, -2.25], [-3.0, 0.75], [0.5, 2.0]])
    b = synthesize(x, n=4, scale=1, shifts=true, seed=0)
    for i in range(1, 4):
        d = estimate_translation(b.frames[0], b.frames[i])
        np.testing.assert_allclose(d, true[i], atol=0.15)
    est = translations(align(b.frames, "phase"))
    np.testing.assert_allclose(est, true, atol=0.15)


def test_flow_alignment_is_close_to_the_translation(rng):
    x = _texture(rng, 64, 64)
    true = np.array([[0, 0], [1.0, -1.0]])
    b = synthesize(x, n=2, scale=1, shifts=true, seed=0)
    est = translations(align(b.frames, "flow"))
    np.testing.assert_allclose(est[1], true[1], atol=0.3)


# -------------------------------------------------------------------------------------- restorers


def test_more_frames_reduce_error_without_shake(rng):
    x = _texture(rng, 64, 64)
    b = synthesize(x, n=8, scale=2, shake=0.0, read=20.0, seed=0)
    errs = [
        rmse(restore_classical(b.frames[:n], 2, align="none", upsample="bicubic"), b.hr)
        for n in (1, 2, 8)
    ]
    assert errs[0] > errs[1] > errs[2]


def test_alignment_helps_with_shake_and_robust_merge_runs(rng):
    x = _texture(rng, 96, 96)
    b = synthesize(x, n=6, scale=2, shake=3.0, read=5.0, seed=2)
    e_none = rmse(restore_classical(b.frames, 2, align="none"), b.hr)
    e_phase = rmse(restore_classical(b.frames, 2, align="phase"), b.hr)
    e_rob = rmse(restore_classical(b.frames, 2, align="phase", merge="robust"), b.hr)
    assert e_phase < e_none
    assert e_rob < e_none
    out = restore_classical(b.frames, 1, align="phase")
    assert out.shape == b.frames.shape[1:]


def test_noise_estimate(rng):
    x = np.full((128, 128, 3), 0.5, np.float32)
    y = add_noise(x, 0.0, 10.0, rng, clip=False)
    assert estimate_noise(y) * 255 == pytest.approx(10.0, rel=0.08)


def test_sharpen_zero_is_identity(rng):
    x = _texture(rng)
    np.testing.assert_allclose(sharpen(x, 0.0), x, atol=1e-6)


# ------------------------------------------------------------------------------------ P-D and AUR


@pytest.mark.parametrize(
    "f, area",
    [(lambda d: 1 - d, 0.5), (lambda d: (1 - d) ** 2, 1 / 3), (lambda d: 1 - np.sqrt(d), 1 / 3)],
)
def test_aur_of_analytic_curves_equals_the_integral(f, area):
    d = np.linspace(0, 1, 2001)
    pts = np.stack([d, f(d)], axis=1)
    assert aur(pts, Bounds(0, 1, 0, 1)) == pytest.approx(area, abs=1e-5)


def test_aur_clamps_and_normalises():
    # curve P = 1 - D on [0.5, 1] x [0, 0.5] in a box [0, 2] x [0, 1]: left of D=0.5 nothing is
    # attainable (area 0.25 in normalised units), then the line, then flat at P=0
    d = np.linspace(0.5, 1.0, 501)
    pts = np.stack([d, 1 - d], axis=1)
    b = Bounds(0.0, 2.0, 0.0, 1.0)
    # normalised: D' = D/2 in [0.25, 0.5], P' = P in [0.5, 0]
    expected = 0.25 + 0.25 * 0.25
    assert aur(pts, b) == pytest.approx(expected, abs=1e-4)
    # points outside the box are clamped
    assert 0 <= aur(np.array([[-1.0, 5.0], [3.0, -2.0]]), b) <= 1


def test_envelope_removes_inflection_points():
    pts = np.array([[0.1, 1.0], [0.2, 0.6], [0.3, 0.8], [0.4, 0.3], [0.5, 0.35], [0.6, 0.1]])
    env = envelope(pts, "monotone")
    np.testing.assert_allclose(env, [[0.1, 1.0], [0.2, 0.6], [0.4, 0.3], [0.6, 0.1]])
    assert np.all(np.diff(env[:, 1]) < 0)
    conv = envelope(np.array([[0, 1.0], [0.5, 0.9], [1.0, 0.0]]), "convex")
    np.testing.assert_allclose(conv, [[0, 1.0], [1.0, 0.0]])  # the bump above the chord is removed
    # the removed points do not change the AUR
    b = common_bounds([pts])
    assert aur(pts, b) == pytest.approx(aur(env, b))


def test_better_curve_has_lower_aur():
    d = np.linspace(0.1, 1, 50)
    worse = np.stack([d, 1 / d], 1)
    better = np.stack([d, 0.5 / d], 1)
    b = common_bounds([worse, better])
    assert aur(better, b) < aur(worse, b)


# ------------------------------------------------------------------------------------------- toy


def test_toy_closed_form_scalar_case():
    # one frequency, white signal, no shake: P(D) = rho^2 - 1 - 2 ln rho, rho = k + sqrt(k^2 - 1 +
    # D)
    c = toy_curve(4, 0.5, 0.0, spectrum("white", 1))
    kappa = 1 / np.sqrt(1 + 0.5 / 4)
    assert c.d_min == pytest.approx(1 - kappa**2)
    assert c.d_max == pytest.approx(2 * (1 - kappa))
    D = np.linspace(c.d_min, c.d_max, 7)
    rho = kappa + np.sqrt(kappa**2 - 1 + D)
    np.testing.assert_allclose(c.P_of_D(D), rho**2 - 1 - 2 * np.log(rho), rtol=1e-6, atol=1e-12)
    assert c.P_of_D(c.d_max + 1) == pytest.approx(0.0, abs=1e-12)
    assert np.isinf(c.P_of_D(c.d_min - 1e-3))


@pytest.mark.parametrize("n, noise, shake", [(3, 0.3, 0.0), (5, 0.2, 1.0)])
def test_toy_closed_form_matches_monte_carlo(n, noise, shake):
    sp = spectrum("power", 4)
    cmp = compare(
        toy_curve(n, noise, shake, sp), monte_carlo(n, noise, shake, sp, samples=40_000, seed=1)
    )
    assert cmp["rel_D"] < 0.02
    assert cmp["rel_V"] < 0.02 and cmp["rel_Q"] < 0.02
    assert cmp["abs_P_small"] < 0.005
    # and a wrong model (noise variance off by 10 %) is detected
    wrong = compare(
        toy_curve(n, noise * 1.1, shake, sp),
        monte_carlo(n, noise, shake, sp, samples=40_000, seed=1),
    )
    assert wrong["rel_D"] > 0.02


def test_toy_conclusions():
    sp = spectrum("power", 8)
    # no shake: more frames always lower the minimum distortion, with diminishing returns
    d = [toy_curve(n, 0.3, 0.0, sp).d_min for n in (1, 2, 4, 8, 16)]
    assert all(a > b for a, b in itertools.pairwise(d))
    gains = -np.diff(d)
    assert all(a > b for a, b in itertools.pairwise(gains))
    # with shake: an interior optimum of the AUR that moves to longer bursts at higher noise
    from sempix.burst.toy import best_burst_length

    lo, _ = best_burst_length(0.1, 1.0, sp, 30, "aur")
    hi, _ = best_burst_length(1.0, 1.0, sp, 30, "aur")
    assert hi > lo and 1 < hi < 30


# ----------------------------------------------------------------------------------------- metrics


def test_full_reference_metrics(rng):
    x = _texture(rng)
    y = np.clip(x + 0.01, 0, 1)
    assert rmse(x, y) == pytest.approx(0.01, rel=1e-3)
    assert psnr(x, y) == pytest.approx(40.0, abs=0.01)
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, y) < 1.0
    with pytest.raises(InputError):
        rmse(x, y[:10])


def test_imresize_matlab_properties():
    ramp = np.tile(np.arange(16, dtype=np.float64), (16, 1))
    half = imresize_matlab(ramp, 0.5)
    assert half.shape == (8, 8)
    # interior of a linear ramp stays linear with slope 2 (antialiased cubic kernel is symmetric)
    np.testing.assert_allclose(np.diff(half[4, 2:6]), 2.0, atol=1e-9)
    np.testing.assert_allclose(imresize_matlab(np.full((9, 7), 3.0), 0.5), 3.0)
    assert imresize_matlab(np.zeros((9, 7)), 0.5).shape == (5, 4)


@pytest.fixture
def test_image(data_dir):
    from sempix.image import load_rgb

    p = data_dir / "kodak24" / "kodim05.png"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return load_rgb(p)[:288, :288]


def test_niqe_reproducible_and_monotone(test_image):
    from scipy import ndimage

    from sempix.burst.metrics import niqe
    from sempix.models import is_available

    if not is_available("niqe-pris-params"):
        pytest.skip("niqe_pris_params.npz not in the model store (SEMPIX_MODEL_DIR)")

    base = niqe(test_image)
    assert base == niqe(test_image)
    blurred = [
        niqe(np.stack([ndimage.gaussian_filter(test_image[..., c], s) for c in range(3)], -1))
        for s in (1.0, 2.0)
    ]
    noisy = [
        niqe(np.clip(test_image + np.random.default_rng(0).normal(0, s, test_image.shape), 0, 1))
        for s in (0.03, 0.1)
    ]
    assert base < blurred[0] < blurred[1]
    assert base < noisy[0] < noisy[1]


def test_brisque_reproducible_and_monotone(test_image):
    from scipy import ndimage

    from sempix.burst.metrics import brisque
    from sempix.models import is_available

    if not (is_available("brisque-svm") and is_available("brisque-range")):
        pytest.skip("BRISQUE model files (brisque-svm, brisque-range) not in the model store")
    base = brisque(test_image)
    assert base == brisque(test_image)
    blurred = [
        brisque(np.stack([ndimage.gaussian_filter(test_image[..., c], s) for c in range(3)], -1))
        for s in (1.0, 2.0)
    ]
    noisy = [
        brisque(np.clip(test_image + np.random.default_rng(0).normal(0, s, test_image.shape), 0, 1))
        for s in (0.03, 0.1)
    ]
    assert base < blurred[0] < blurred[1]
    assert base < noisy[0] < noisy[1]


def test_brisque_features_shape(rng):
    from sempix.burst.metrics import brisque_features, parse_libsvm_model

    f = brisque_features(_texture(rng, 64, 64))
    assert f.shape == (36,) and np.all(np.isfinite(f))
    sv, coef, g, rho = parse_libsvm_model(
        "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nrho -1.5\nSV\n2 1:0.5 3:-1\n-1 2:1\n", 3
    )
    np.testing.assert_allclose(sv, [[0.5, 0, -1], [0, 1, 0]])
    assert coef.tolist() == [2, -1] and g == 0.5 and rho == -1.5
