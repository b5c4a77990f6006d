"""Seam carving: numba kernels against a slow, obviously-correct reference; API behaviour."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sempix.carve import MAX_ENLARGE, carve
from sempix.carve import _kernels as K
from sempix.carve.core import _buffers
from sempix.errors import InputError

# ----------------------------------------------------------------------------------------------
# reference implementation: recompute everything for every seam, plain Python loops
# ----------------------------------------------------------------------------------------------


def ref_dist(img, feat, p, q, wr, ws):
    s = 0.0
    for k in range(img.shape[2]):
        s += abs(float(img[p][k]) - float(img[q][k]))
    r = wr * s
    if ws != 0.0:
        t = 0.0
        for k in range(feat.shape[2]):
            t += abs(float(feat[p][k]) - float(feat[q][k]))
        r += ws * t
    return r


def ref_grad(img, feat, i, j, wr, ws):
    """Gradient energy with numpy.gradient differences (central inside, one-sided at borders)."""
    H, W = img.shape[:2]
    e = 0.0
    if W > 1:
        if j == 0:
            e += ref_dist(img, feat, (i, 0), (i, 1), wr, ws)
        elif j == W - 1:
            e += ref_dist(img, feat, (i, W - 2), (i, W - 1), wr, ws)
        else:
            e += 0.5 * ref_dist(img, feat, (i, j - 1), (i, j + 1), wr, ws)
    if H > 1:
        if i == 0:
            e += ref_dist(img, feat, (0, j), (1, j), wr, ws)
        elif i == H - 1:
            e += ref_dist(img, feat, (H - 2, j), (H - 1, j), wr, ws)
        else:
            e += 0.5 * ref_dist(img, feat, (i - 1, j), (i + 1, j), wr, ws)
    return e


def ref_costs(img, feat, wr, ws, mode):
    """(CU, CL, CR) float32 planes of the current (already carved) arrays.

    mode 0 backward, 1 forward with the combined distance, 2 forward colour + semantic gradient.
    """
    H, W = img.shape[:2]
    CU = np.zeros((H, W), np.float32)
    CL = np.zeros((H, W), np.float32)
    CR = np.zeros((H, W), np.float32)
    cl = lambda j: min(max(j, 0), W - 1)
    for i in range(H):
        for j in range(W):
            if mode:
                wsf = ws if mode == 1 else 0.0
                cu = ref_dist(img, feat, (i, cl(j - 1)), (i, cl(j + 1)), wr, wsf)
                cu = 2.0 * cu if j in (0, W - 1) else cu  # borders: one-pixel difference x 2
                if mode == 2 and ws != 0.0:
                    cu += ref_grad(img, feat, i, j, 0.0, ws)
                CU[i, j] = cu
                if i > 0:
                    CL[i, j] = ref_dist(img, feat, (i - 1, j), (i, cl(j - 1)), wr, wsf)
                    CR[i, j] = ref_dist(img, feat, (i - 1, j), (i, cl(j + 1)), wr, wsf)
            else:  # numpy.gradient differences
                CU[i, j] = ref_grad(img, feat, i, j, wr, ws)
    return CU, CL, CR


def ref_seam(CU, CL, CR, E):
    """Dynamic programme with the documented tie-breaking (straight, then left, then right)."""
    H, W = CU.shape
    M = np.zeros((H, W))
    D = np.zeros((H, W), int)
    for j in range(W):
        M[0, j] = float(CU[0, j]) + float(E[0, j])
    for i in range(1, H):
        for j in range(W):
            best, d = M[i - 1, j], 0
            if j > 0 and M[i - 1, j - 1] + float(CL[i, j]) < best:
                best, d = M[i - 1, j - 1] + float(CL[i, j]), -1
            if j < W - 1 and M[i - 1, j + 1] + float(CR[i, j]) < best:
                best, d = M[i - 1, j + 1] + float(CR[i, j]), 1
            M[i, j] = best + float(CU[i, j]) + float(E[i, j])
            D[i, j] = d
    j = int(np.argmin(M[-1]))
    seam = [j]
    for i in range(H - 1, 0, -1):
        j += D[i, j]
        seam.append(j)
    return seam[::-1]


def ref_remove(img, feat, n, wr, ws, mode, E=None):
    """Remove n vertical seams; returns (image, seams as input columns)."""
    H, W = img.shape[:2]
    cols = np.tile(np.arange(W), (H, 1))
    E = np.zeros((H, W), np.float32) if E is None else E.astype(np.float32)
    seams = []
    for _ in range(n):
        CU, CL, CR = ref_costs(img, feat, wr, ws, mode)
        s = ref_seam(CU, CL, CR, E)
        seams.append([int(cols[i, s[i]]) for i in range(H)])
        keep = np.ones(img.shape[:2], bool)
        keep[np.arange(H), s] = False
        w = img.shape[1] - 1
        img = img[keep].reshape(H, w, -1)
        feat = feat[keep].reshape(H, w, -1)
        E = E[keep].reshape(H, w)
        cols = cols[keep].reshape(H, w)
    return img, np.array(seams)


def ref_insert(img, seams):
    """Avidan-Shamir insertion: after every seam pixel c insert the average of c and c+1."""
    H, W = img.shape[:2]
    rows = []
    for i in range(H):
        row = []
        dup = {int(s) for s in seams[:, i]}
        for c in range(W):
            row.append(img[i, c])
            if c in dup:
                row.append((img[i, c] + img[i, min(c + 1, W - 1)]) * np.float32(0.5))
        rows.append(row)
    return np.array(rows, dtype=np.float32)


def _norm(img, feat, lam):
    er, es = K.energy_maps(img, feat)
    s_rgb = float(er.mean(dtype=np.float64))
    if feat.shape[2] == 0:
        return 1.0 / s_rgb, 0.0
    return (1 - lam) / s_rgb, lam / float(es.mean(dtype=np.float64))


def _data(rng, H=11, W=14, D=4):
    img = rng.random((H, W, 3), dtype=np.float32)
    feat = rng.random((H, W, D), dtype=np.float32)
    return img, feat


# ----------------------------------------------------------------------------------------------
# kernels vs reference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("with_feat", [False, True])
def test_reduction_matches_reference(rng, mode, with_feat):
    img, feat = _data(rng)
    lam = 0.3
    f = feat if with_feat else np.zeros(img.shape[:2] + (0,), np.float32)
    wr, ws = _norm(img, f, lam)
    n = 5
    ref_img, ref_seams = ref_remove(img, f, n, wr, ws, mode)
    res = carve(img, width=img.shape[1] - n, features=feat if with_feat else None, lam=lam,
                energy="forward" if mode else "backward", feature_dim=None,
                semantic_energy="forward" if mode == 1 else "gradient")
    np.testing.assert_array_equal(res.image, ref_img)
    expect = np.zeros(img.shape[:2], np.uint8)
    for s in ref_seams:
        expect[np.arange(img.shape[0]), s] = 1
    np.testing.assert_array_equal(res.seam_map, expect)


def test_input_semantic_energy_matches_reference(rng):
    """Default mode: forward colour costs + the input's semantic gradient energy carried with the
    pixels."""
    img, feat = _data(rng)
    wr, ws = _norm(img, feat, 0.2)
    _, es = K.energy_maps(img, feat)
    E = (np.float32(ws) * es).astype(np.float32)
    ref_img, _ref_seams = ref_remove(
        img, np.zeros(img.shape[:2] + (0,), np.float32), 5, wr, 0.0, 1, E
    )
    res = carve(img, width=img.shape[1] - 5, features=feat, lam=0.2, feature_dim=None)
    assert res.info["semantic_energy"] == "input"
    np.testing.assert_array_equal(res.image, ref_img)


def test_height_reduction_matches_reference(rng):
    img, feat = _data(rng, H=13, W=9)
    wr, ws = _norm(img, feat, 0.2)
    t_img = np.ascontiguousarray(img.swapaxes(0, 1))
    t_feat = np.ascontiguousarray(feat.swapaxes(0, 1))
    ref_img, _ = ref_remove(t_img, t_feat, 4, wr, ws, 2)
    res = carve(img, height=9, features=feat, lam=0.2, feature_dim=None, semantic_energy="gradient")
    np.testing.assert_array_equal(res.image, ref_img.swapaxes(0, 1))


def test_keep_penalty_matches_reference(rng):
    img, _feat = _data(rng)
    keep = np.zeros(img.shape[:2], bool)
    keep[2:9, 5:8] = True
    wr, _ = _norm(img, np.zeros(img.shape[:2] + (0,), np.float32), 0)
    E = np.where(keep, K.KEEP_PENALTY, 0).astype(np.float32)
    ref_img, _ = ref_remove(img, np.zeros(img.shape[:2] + (0,), np.float32), 4, wr, 0.0, 1, E)
    res = carve(img, width=img.shape[1] - 4, keep=keep)
    np.testing.assert_array_equal(res.image, ref_img)


@pytest.mark.parametrize("forward", [True, False])
def test_enlargement_matches_reference(rng, forward):
    img, _ = _data(rng, H=9, W=12)
    f = np.zeros(img.shape[:2] + (0,), np.float32)
    wr, _ = _norm(img, f, 0)
    _, seams = ref_remove(img, f, 4, wr, 0.0, int(forward))
    expect = ref_insert(img, seams)
    res = carve(img, width=16, energy="forward" if forward else "backward")
    np.testing.assert_allclose(res.image, expect, rtol=0, atol=1e-7)
    assert (res.seam_map == 3).sum() == 4 * img.shape[0]


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_incremental_update_equals_full_recomputation(rng, mode):
    """Local cost updates after each removal equal costs
    computed from scratch on the carved grid."""
    H, W, D = 17, 23, 3
    img = rng.random((H, W, 3), dtype=np.float32)
    feat = rng.random((H, W, D), dtype=np.float32)
    idx, C = _buffers(H, W)
    K.init_costs_identity(img, feat, C, 0.7, 0.4, mode)
    w = W
    for _ in range(15):
        seam = np.empty(H, np.int64)  # random connected seam, including borders
        seam[0] = rng.integers(0, w)
        for i in range(1, H):
            seam[i] = np.clip(seam[i - 1] + rng.integers(-1, 2), 0, w - 1)
        if rng.random() < 0.3:
            seam[:] = 0 if rng.random() < 0.5 else w - 1
        K.remove_seam(img, feat, idx, C, seam, w, 0.7, 0.4, mode, False)
        w -= 1
        full = C.copy()
        K.init_costs(img, feat, idx, full, w, 0.7, 0.4, mode)
        np.testing.assert_array_equal(C[:3, :, :w], full[:3, :, :w])
        cur_img = np.take_along_axis(img, idx[:, :w, None].astype(np.int64), axis=1)
        cur_feat = np.take_along_axis(feat, idx[:, :w, None].astype(np.int64), axis=1)
        CU, CL, CR = ref_costs(cur_img, cur_feat, 0.7, 0.4, mode)
        np.testing.assert_array_equal(C[0, :, :w], CU)
        np.testing.assert_array_equal(C[1, :, :w], CL)
        np.testing.assert_array_equal(C[2, :, :w], CR)


def test_seams_are_connected(rng):
    img = rng.random((30, 25, 3), dtype=np.float32)
    idx, C = _buffers(30, 25)
    K.init_costs_identity(img, np.zeros((30, 25, 0), np.float32), C, 1.0, 0.0, 1)
    w = 25
    for _ in range(10):
        seam = np.empty(30, np.int64)
        K.find_seam(C, w, np.empty(25), np.empty(25), np.zeros((30, 25), np.int8), seam, False)
        assert seam.min() >= 0 and seam.max() < w
        assert np.abs(np.diff(seam)).max() <= 1
        K.remove_seam(img, np.zeros((30, 25, 0), np.float32), idx, C, seam, w, 1.0, 0.0, 1, False)
        w -= 1
    # every row lost exactly 10 pixels
    res = carve(img, width=15)
    assert ((res.seam_map == 1).sum(axis=1) == 10).all()


# ----------------------------------------------------------------------------------------------
# API behaviour
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "width,height,expect",
    [
        (10, None, (20, 10)),
        ("50%", "150%", (30, 15)),
        (1, 1, (1, 1)),
        (45, 41, (41, 45)),
        (None, None, (20, 30)),
    ],
)
def test_exact_sizes(rng, width, height, expect):
    img = rng.random((20, 30, 3), dtype=np.float32)
    feat = rng.random((20, 30, 5), dtype=np.float32)
    res = carve(img, width, height, features=feat, also=[img[..., 0]])
    assert res.image.shape == expect + (3,)
    assert res.also[0].shape == expect
    assert res.image.dtype == np.float32


def test_large_enlargement_in_steps(rng):
    img = rng.random((8, 10, 3), dtype=np.float32)
    res = carve(img, width=28)
    assert res.image.shape == (8, 28, 3)
    assert res.info["inserted"] == 18
    # every original pixel is still there, in order, in every row
    for i in range(8):
        row = [tuple(p) for p in res.image[i]]
        pos = [row.index(tuple(p)) for p in img[i]]
        assert pos == sorted(pos)


def test_keep_never_cut_when_avoidable(rng):
    img = rng.random((40, 50, 3), dtype=np.float32)
    keep = np.zeros((40, 50), bool)
    keep[5:35, 10:30] = True
    img[keep] *= 0.01  # smooth region: cheapest to carve without protection
    res = carve(img, width=30, keep=keep, also=[keep.astype(np.float32)])
    assert res.also[0].sum() == keep.sum()
    assert not (res.seam_map[keep]).any()
    assert res.keep.sum() == keep.sum()


def test_keep_blocking_every_seam(rng):
    img = rng.random((20, 20, 3), dtype=np.float32)
    keep = np.zeros((20, 20), bool)
    keep[:, 8:12] = True  # spans the whole height: only 16 seams can avoid it
    with pytest.raises(InputError, match="keep mask"):
        carve(img, width=2, keep=keep)
    res = carve(img, width=2, keep=keep, keep_strict=False)
    assert res.image.shape == (20, 2, 3)
    assert res.info["keep_pixels_cut"] > 0
    assert carve(img, width=5, keep=keep).image.shape == (20, 5, 3)


@pytest.mark.parametrize("shape", [(6, 14), (14, 6)])
def test_drop_fully_removed_and_size_restored(rng, shape):
    img = rng.random((30, 32, 3), dtype=np.float32)
    drop = np.zeros((30, 32), bool)
    drop[8 : 8 + shape[0], 9 : 9 + shape[1]] = True
    keep = np.zeros((30, 32), bool)
    keep[0:5, :] = True
    res = carve(
        img,
        features=rng.random((30, 32, 4), dtype=np.float32),
        drop=drop,
        keep=keep,
        also=[drop.astype(np.float32), drop.astype(np.uint8)],
    )
    assert res.image.shape == img.shape
    assert res.also[0].max() == 0 and res.also[1].max() == 0
    assert (res.seam_map[drop] == 4).all()
    res2 = carve(img, width=20, drop=drop, also=[drop])
    assert res2.image.shape == (30, 20, 3) and not res2.also[0].any()


def test_also_aligned_with_output(rng):
    img = rng.random((25, 30, 3), dtype=np.float32)
    alpha = rng.random((25, 30), dtype=np.float32)
    depth = img.astype(np.float64) * 7
    labels = (img[..., 0] * 10).astype(np.int32)
    rgba = np.dstack([img, alpha])
    for w, h in [(20, 18), (40, 30), (22, 33)]:
        res = carve(
            rgba,
            w,
            h,
            features=rng.random((25, 30, 3), dtype=np.float32),
            also=[img, depth, labels, alpha],
        )
        np.testing.assert_array_equal(res.also[0], res.image[..., :3])
        np.testing.assert_allclose(res.also[1], res.image[..., :3] * 7, rtol=1e-6)
        np.testing.assert_array_equal(res.also[3], res.image[..., 3])
        assert res.also[2].dtype == np.int32 and res.also[2].shape == (h, w)
        # integer arrays are carried by nearest copy: every value is one of the row's inputs
        assert set(np.unique(res.also[2])) <= set(np.unique(labels))


def test_alpha_and_energy_channels(rng):
    img = rng.random((15, 20, 3), dtype=np.float32)
    a1 = np.dstack([img, np.zeros((15, 20), np.float32)])
    a2 = np.dstack([img, rng.random((15, 20), dtype=np.float32)])
    # alpha does not change the seams
    np.testing.assert_array_equal(carve(a1, 12).seam_map, carve(a2, 12).seam_map)
    assert carve(a2, 12).image.shape == (15, 12, 4)
    g = carve(img[..., 0], 12).image
    assert g.shape == (15, 12)


def test_energy_matches_distance_module(rng):
    distance = pytest.importorskip("sempix.distance")
    img = rng.random((20, 24, 3), dtype=np.float32)
    feat = rng.random((20, 24, 6), dtype=np.float32)
    res = carve(img, 20, features=feat, lam=0.2, feature_dim=None)
    ref = distance.energy_combined(img, feat, 0.2)
    np.testing.assert_allclose(res.energy, ref, rtol=1e-5, atol=1e-6)


def test_seams_vis(rng):
    img = rng.random((20, 24, 3), dtype=np.float32)
    res = carve(img, 20, 18)
    vis = res.seams_vis(img)
    assert vis.shape == img.shape
    marked = res.seam_map > 0
    assert marked.sum() == 4 * 20 + 2 * 20
    assert np.array_equal(vis[~marked], img[~marked])
    with pytest.raises(InputError):
        res.seams_vis(img[:5])


def test_orders(rng):
    img = rng.random((24, 30, 3), dtype=np.float32)
    for order in ("width-first", "height-first", "optimal"):
        res = carve(img, 20, 16, order=order)
        assert res.image.shape == (16, 20, 3)
        assert (res.seam_map == 1).sum() + (res.seam_map == 2).sum() == 24 * 30 - 16 * 20
    assert "order_blocks" in carve(img, 20, 16, order="optimal").info


def test_feature_reduction(rng):
    img = rng.random((20, 24, 3), dtype=np.float32)
    feat = rng.random((20, 24, 64), dtype=np.float32)
    res = carve(img, 18, features=feat, feature_dim=8)
    assert res.info["feature_dim"] == 8 and res.features.shape == (20, 18, 8)


@pytest.mark.parametrize(
    "kw",
    [
        {"width": 0},
        {"height": -3},
        {"width": int(MAX_ENLARGE * 20) + 1},
        {"width": "abc%"},
        {"width": 10, "lam": 1.5},
        {"width": 10, "energy": "sideways"},
        {"width": 10, "order": "random"},
        {"width": 10, "semantic_energy": "both"},
        {"width": 10, "bias": np.zeros((3, 3))},
        {"width": 10, "keep": np.zeros((3, 3), bool)},
        {"width": 10, "features": np.zeros((5, 5, 3), np.float32)},
        {"width": 10, "also": [np.zeros((4, 20))]},
    ],
)
def test_bad_requests_raise_input_error(rng, kw):
    img = rng.random((15, 20, 3), dtype=np.float32)
    with pytest.raises(InputError):
        carve(img, **kw)


def test_constant_image_and_tiny(rng):
    img = np.full((10, 12, 3), 0.5, np.float32)
    assert carve(img, 6, 5).image.shape == (5, 6, 3)
    one = rng.random((1, 1, 3), dtype=np.float32)
    assert carve(one, 3, 2).image.shape == (2, 3, 3)
    strip = rng.random((1, 9, 3), dtype=np.float32)
    assert carve(strip, 4).image.shape == (1, 4, 3)


def test_progress_reports(rng):
    img = rng.random((20, 30, 3), dtype=np.float32)
    seen = []
    carve(img, 20, 25, progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(seen))


def test_bias_protects(rng):
    img = rng.random((20, 30, 3), dtype=np.float32)
    bias = np.zeros((20, 30), np.float32)
    bias[:, 10:20] = 50.0
    res = carve(img, 22, bias=bias)
    assert not res.seam_map[:, 10:20].any()


def test_carried_mode_features_gathered_equal_carved_features(rng):
    """Default (carried) mode gathers the carved features by origin; they equal carving them."""
    img = rng.random((22, 26, 3), dtype=np.float32)
    feat = rng.random((22, 26, 6), dtype=np.float32)
    fast = carve(img, 20, 18, features=feat, feature_dim=None)  # reduction: gathered at the end
    slow = carve(img, 20, 18, features=feat, feature_dim=None, also=[feat])  # carried as an extra
    assert fast.features.shape == (18, 20, 6)
    np.testing.assert_array_equal(fast.image, slow.image)
    np.testing.assert_allclose(fast.features, slow.also[0], atol=0)
