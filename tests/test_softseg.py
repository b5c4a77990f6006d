"""Tests of semantic soft segmentation (sempix.softseg). Small synthetic images; < 1 min."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from PIL import Image

from sempix.softseg import (
    SoftSegParams,
    combined_laplacian,
    constrained_sparsification,
    drop_and_group,
    matting_laplacian,
    relaxed_sparsification,
    smallest_eigenvectors,
    soft_segment,
)
from sempix.softseg.affinity import (
    adjacent_pairs,
    centroid_pixels,
    window_counts,
)
from sempix.softseg.export import ora_bytes, stack_alphas
from sempix.softseg.sparsify import block_jacobi_pcg

from reference.softseg import centroid_pixels_reference


def two_region(h=24, w=40, ramp=10, seed=0):
    """Left red / right blue with a linear blend over ``ramp`` columns (+ slight noise).

    Returns image (H, W, 3), true left-alpha (H, W), stand-in features (H, W, 3)
    (two distinct feature vectors switching at the middle of the ramp: a simple test-only stand-in
    for semantic features)."""
    x = np.arange(w)
    a = np.clip((w / 2 + ramp / 2 - x) / ramp, 0, 1)  # 1 on the left, 0 on the right
    alpha = np.repeat(a[None, :], h, axis=0)
    red, blue = np.array([0.85, 0.2, 0.15]), np.array([0.15, 0.25, 0.8])
    rng = np.random.default_rng(seed)
    img = alpha[..., None] * red + (1 - alpha[..., None]) * blue
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    f1, f2 = np.array([0.9, 0.1, 0.5]), np.array([0.1, 0.8, 0.5])
    hard = (alpha >= 0.5)[..., None]  # one object's feature per pixel, like a semantic network
    feats = np.where(hard, f1, f2).astype(np.float32)
    return img, alpha.astype(np.float32), feats


def textured(h=20, w=24, seed=1):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.random((h, w, 3)) * 0.3 + np.linspace(0, 0.6, w)[None, :, None], 0, 1)
    feats = np.clip(img + 0.05 * rng.random(img.shape), 0, 1)
    return img.astype(np.float64), feats


# ---------------------------------------------------------------- Laplacian
def test_matting_laplacian_symmetric_null_constant_psd():
    img, _ = textured()
    L = matting_laplacian(img)
    n = img.shape[0] * img.shape[1]
    assert abs(L - L.T).max() < 1e-9
    assert np.abs(L @ np.ones(n)).max() < 1e-8  # constant null vector (L = D - W)
    ev = np.linalg.eigvalsh(L.toarray())
    assert ev[0] > -1e-8 * ev[-1]


def test_window_counts_are_affinity_row_sums():
    # row sums of W_L (diagonal included) = number of windows containing the pixel; check against
    # the diagonal identity L_ii = D_ii - W_ii for a constant image where W_ii = 1/9 per window
    h, w = 7, 9
    c = window_counts(h, w)
    assert c.reshape(h, w)[3, 4] == 9 and c.reshape(h, w)[0, 0] == 1 and c.reshape(h, w)[0, 4] == 3
    img = np.full((h, w, 3), 0.5)
    L = matting_laplacian(img, epsilon=1e-3)
    np.testing.assert_allclose(L.diagonal(), c - c / 9.0, atol=1e-9)


@pytest.mark.parametrize("matting_only", [False, True])
def test_combined_laplacian_symmetric_psd_and_null_vector(matting_only):
    img, _ = textured()
    # features close together -> all semantic affinities positive -> L is PSD
    feats = 0.5 + 0.01 * np.random.default_rng(3).random(img.shape)
    params = SoftSegParams(n_superpixels=30)
    L, spx, deg = combined_laplacian(img, feats, params, matting_only=matting_only)
    assert abs(L - L.T).max() < 1e-12
    # the normalised Laplacian's null vector is D^1/2 1 (i.e. constant before normalisation)
    v = np.sqrt(deg)
    assert np.abs(L @ v).max() < 1e-8 * np.abs(v).max()
    ev = np.linalg.eigvalsh(L.toarray())
    assert ev[0] > -1e-9  # the semantic affinities here are positive (similar features)
    assert ev[-1] < 2.0 + 1e-6
    if not matting_only:
        assert spx.n >= 3 and (spx.centre_pixel >= 0).all()
        # superpixel edges really are in the matrix (between centroid pixels)
        Lm, _, _ = combined_laplacian(img, feats, params, matting_only=True)
        assert abs(L - Lm).max() > 1e-6


def test_negative_semantic_affinity_keeps_laplacian_nearly_psd():
    img, _, feats = two_region(16, 20, ramp=2)
    L, _, _ = combined_laplacian(
        img.astype(np.float64), feats.astype(np.float64), SoftSegParams(n_superpixels=12)
    )
    ev = np.linalg.eigvalsh(L.toarray())
    assert (
        ev[0] > -1e-3
    )  # documented: negative semantic affinities may give tiny negative eigenvalues


def test_centroid_pixels_match_reference(rng):
    labels = rng.integers(0, 7, (15, 17))
    labels[0, 0] = 6
    np.testing.assert_array_equal(centroid_pixels(labels), centroid_pixels_reference(labels))
    # centroid pixel belongs to its superpixel
    idx = centroid_pixels(labels)
    assert (labels.ravel()[idx] == np.arange(7)).all()


def test_adjacent_pairs():
    labels = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]])
    pairs = {tuple(p) for p in adjacent_pairs(labels)}
    assert pairs == {(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)}


def test_smallest_eigenvectors_match_dense():
    img, feats = textured(12, 14)
    L, _, _ = combined_laplacian(img, feats, SoftSegParams(n_superpixels=10))
    vals, vecs = smallest_eigenvectors(L, 8, tol=1e-12)
    ref_vals, ref_vecs = np.linalg.eigh(L.toarray())
    np.testing.assert_allclose(vals, ref_vals[:8], atol=1e-9)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(8), atol=1e-6)
    assert np.abs(L @ vecs - vecs * vals).max() < 1e-6
    # default (looser) tolerance: same subspace when the 8th and 9th eigenvalues are separated
    _, v2 = smallest_eigenvectors(L, 8)
    if ref_vals[8] - ref_vals[7] > 1e-3:
        cos = np.linalg.svd(ref_vecs[:, :8].T @ v2, compute_uv=False)
        assert cos.min() > 0.999


# ---------------------------------------------------------------- sparsification
def test_block_jacobi_pcg_matches_direct_solve(rng):
    img, feats = textured(8, 9)
    L, _, _ = combined_laplacian(img, feats, SoftSegParams(n_superpixels=6))
    n, K = L.shape[0], 3
    w = rng.random((n, K)) * 5 + 1
    b = rng.random((n, K))
    x, it = block_jacobi_pcg(L, w, 100.0, b, np.zeros((n, K)), max_iter=500, tol=1e-12)
    A = sp.kron(sp.eye(K), L) + sp.diags(w.T.ravel()) + 100.0 * sp.kron(np.ones((K, K)), sp.eye(n))
    ref = sla.spsolve(A.tocsc(), b.T.ravel()).reshape(K, n).T
    np.testing.assert_allclose(x, ref, atol=1e-8)
    assert it < 200


def test_constrained_sparsification_sums_to_one_and_groups():
    img, _, feats = two_region(16, 24)
    L, _, _ = combined_laplacian(
        img.astype(np.float64), feats.astype(np.float64), SoftSegParams(n_superpixels=12)
    )
    vals, vecs = smallest_eigenvectors(L, 10)
    a = constrained_sparsification(
        vecs, vals, feats.reshape(-1, 3), n_layers=6, n_iter=5, samples=None
    )
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-8)
    g, kept, _ = drop_and_group(a, feats.reshape(-1, 3), 2)
    assert g.shape[1] <= 2 and kept.shape[1] >= g.shape[1]
    np.testing.assert_allclose(g.sum(axis=1), 1.0, atol=1e-6)
    assert g.min() >= 0 and g.max() <= 1 + 1e-9


def test_relaxed_sparsification_outputs_valid_alphas(rng):
    img, alpha, feats = two_region(12, 16)
    L, _, _ = combined_laplacian(
        img.astype(np.float64), feats.astype(np.float64), SoftSegParams(n_superpixels=8)
    )
    init = np.stack([alpha.ravel(), 1 - alpha.ravel()], 1) + rng.normal(0, 0.1, (alpha.size, 2))
    a = relaxed_sparsification(L, init, 0.9, n_iter=5)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-6)
    assert a.min() >= 0 and a.max() <= 1
    assert np.abs(a[:, 0] - alpha.ravel()).mean() < np.abs(init[:, 0] - alpha.ravel()).mean()


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def two_region_result():
    img, alpha, feats = two_region(24, 40, ramp=10)
    res = soft_segment(
        img,
        features=feats,
        n_layers=2,
        n_initial=8,
        n_eigvecs=20,
        work_pixels=None,
        affinity=SoftSegParams(n_superpixels=40),
        keep_intermediate=True,
    )
    return img, alpha, res


def test_two_region_gives_two_layers_with_the_right_ramp(two_region_result):
    img, alpha, res = two_region_result
    A = res.alphas
    assert A.shape == img.shape[:2] + (2,)
    assert A.min() >= 0 and A.max() <= 1
    np.testing.assert_allclose(A.sum(axis=2), 1.0, atol=1e-5)
    k = int(np.argmax([np.corrcoef(A[..., i].ravel(), alpha.ravel())[0, 1] for i in range(2)]))
    err = np.abs(A[..., k] - alpha)
    assert err.mean() < 0.05, err.mean()
    # the soft transition is preserved: the profile across the boundary is a ramp, not a step
    prof = A[:, :, k].mean(axis=0)
    true = alpha.mean(axis=0)
    mid = (true > 0.2) & (true < 0.8)
    assert mid.sum() >= 4
    assert np.abs(prof[mid] - true[mid]).max() < 0.25  # a hard step would be off by 0.5
    assert ((prof > 0.15) & (prof < 0.85)).sum() >= 4  # several fractional columns
    assert np.all(np.diff(prof[5:-5]) < 0.02)  # monotone (left layer decreases to the right)


def test_recomposition_reproduces_input(two_region_result):
    img, _, res = two_region_result
    rec = res.recompose()
    assert res.colors.shape == (2,) + img.shape
    assert np.abs(rec - img).mean() < 2e-3
    assert np.abs(rec - img).max() < 0.05
    # layer colours are pure-ish: the left layer is red where it has weight
    k = int(np.argmax(res.alphas[:, :5, :].mean(axis=(0, 1))))
    assert res.colors[k][:, :5, 0].mean() > 0.7


def test_work_resolution_path_and_intermediates():
    img, alpha, feats = two_region(40, 60, ramp=12)
    res = soft_segment(
        img,
        features=feats,
        n_layers=2,
        n_initial=6,
        n_eigvecs=12,
        work_pixels=800,
        affinity=SoftSegParams(n_superpixels=40),
        keep_intermediate=True,
        relaxed_iter=10,
    )
    assert res.meta["work_shape"][0] * res.meta["work_shape"][1] <= 900
    assert res.eigvecs.shape[2] == 12 and res.initial.ndim == 3
    k = int(
        np.argmax([np.corrcoef(res.alphas[..., i].ravel(), alpha.ravel())[0, 1] for i in range(2)])
    )
    assert np.abs(res.alphas[..., k] - alpha).mean() < 0.08


def test_bad_input_raises_input_error():
    from sempix.errors import InputError

    with pytest.raises(InputError):
        soft_segment(np.zeros((4, 4, 3), np.float32), features=np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError):
        soft_segment(np.zeros((20, 20), np.float32))
    with pytest.raises(InputError):
        soft_segment(np.zeros((20, 20, 3), np.float32), features=np.zeros((10, 20, 3), np.float32))


# ---------------------------------------------------------------- files
def _over(stack):
    out = np.zeros(stack[0].shape[:2] + (3,))
    for layer in stack:  # bottom to top
        a = layer[..., 3:4]
        out = layer[..., :3] * a + out * (1 - a)
    return out


def test_stack_alphas_over_compositing_recomposes(rng):
    a = rng.random((6, 7, 4))
    a /= a.sum(axis=2, keepdims=True)
    F = rng.random((4, 6, 7, 3))
    beta = stack_alphas(a)
    stack = [np.dstack([F[k], beta[..., k]]) for k in range(4)]
    np.testing.assert_allclose(_over(stack), np.einsum("hwk,khwc->hwc", a, F), atol=1e-6)


def test_ora_reopens_with_zipfile_xml_and_pyora(tmp_path, two_region_result):
    from sempix.softseg import save_result

    img, _, res = two_region_result
    files = save_result(res, tmp_path, preview=True)
    ora = files["ora"]
    with zipfile.ZipFile(ora) as z:
        infos = z.infolist()
        assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
        assert z.read("mimetype") == b"image/openraster"
        root = ET.fromstring(z.read("stack.xml"))
        assert (
            root.tag == "image"
            and int(root.get("w")) == img.shape[1]
            and int(root.get("h")) == img.shape[0]
        )
        layers = root.find("stack").findall("layer")
        assert len(layers) == 2
        pngs = [
            np.asarray(Image.open(io.BytesIO(z.read(el.get("src")))), np.float64) / 255
            for el in layers
        ]
        merged = np.asarray(Image.open(io.BytesIO(z.read("mergedimage.png"))), np.float64) / 255
        assert Image.open(io.BytesIO(z.read("Thumbnails/thumbnail.png"))).size[0] <= 256
    assert all(p.shape == img.shape[:2] + (4,) for p in pngs)
    comp = _over(pngs[::-1])  # stack.xml lists the top first
    assert np.abs(comp - merged).mean() < 3 / 255
    assert np.abs(merged - img).mean() < 3 / 255
    # an independent reader (pyora, if installed)
    pyora = pytest.importorskip("pyora")
    proj = pyora.Project.load(str(ora))
    assert tuple(proj.dimensions) == (img.shape[1], img.shape[0])
    assert [c.name for c in proj.children] == ["layer 1", "layer 0"]
    layer_img = np.asarray(proj.children[-1].get_image_data(), np.float64) / 255
    assert layer_img.shape == img.shape[:2] + (4,)
    # the other written files
    a16 = np.asarray(Image.open(files["alpha_0"]))
    assert a16.dtype in (np.uint16, np.int32) and a16.max() > 255
    np.testing.assert_allclose(np.load(files["alphas"]), res.alphas)
    rgba = np.asarray(Image.open(files["layer_0"]))
    assert rgba.shape == img.shape[:2] + (4,)
    for name in ("vis", "preview_eigenvectors", "preview_initial_layers", "preview_grouped_layers"):
        assert files[name].is_file()


def test_ora_bytes_layer_names_are_escaped():
    z = zipfile.ZipFile(
        io.BytesIO(ora_bytes([np.zeros((3, 4, 4))], ['a "b" <c>'], np.zeros((3, 4, 3))))
    )
    assert ET.fromstring(z.read("stack.xml")).find("stack/layer").get("name") == 'a "b" <c>'


# ---------------------------------------------------------------- grouping (issue 19)
def four_region(h=24, w=32, seed=0):
    """An object (left half) and a background (right half), each with a light top and a dark
    bottom. The 3-d stand-in features are dominated by brightness (dark object near dark
    background, as the 3-d PCA features on alphamatting GT05); the class posteriors separate
    object from background. Returns image, object mask, features, sqrt-posteriors."""
    rng = np.random.default_rng(seed)
    obj = np.zeros((h, w), bool)
    obj[:, : w // 2] = True
    top = np.zeros((h, w), bool)
    top[: h // 2] = True
    cols = {
        (True, True): [0.9, 0.7, 0.3], (True, False): [0.25, 0.15, 0.1],
        (False, True): [0.55, 0.7, 0.9], (False, False): [0.15, 0.2, 0.25],
    }
    feat_of = {
        (True, True): [0.9, 0.5, 0.6], (True, False): [0.1, 0.5, 0.6],
        (False, True): [0.9, 0.5, 0.4], (False, False): [0.1, 0.5, 0.4],
    }
    img = np.zeros((h, w, 3))
    feats = np.zeros((h, w, 3))
    for key in cols:
        m = (obj == key[0]) & (top == key[1])
        img[m] = cols[key]
        feats[m] = feat_of[key]
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    post = np.where(obj[..., None], [0.9, 0.1], [0.1, 0.9])
    return img, obj, feats.astype(np.float32), np.sqrt(post).astype(np.float32)


@pytest.mark.parametrize("by", ["posteriors", "features"])
def test_grouping_by_posteriors_keeps_dark_object_apart_from_dark_background(by):
    img, obj, feats, post = four_region()
    res = soft_segment(
        img, features=feats, group_features=post if by == "posteriors" else None,
        n_layers=2, n_initial=8, n_eigvecs=16, work_pixels=None, relaxed_iter=5,
        affinity=SoftSegParams(n_superpixels=48), colors=False, seed=0,
    )
    assert res.meta["group_by"] == ("given" if by == "posteriors" else "features")
    # best layer against the object mask
    err = min(np.abs(res.alphas[..., k] - obj).mean() for k in range(res.n_layers))
    if by == "posteriors":
        assert err < 0.05, err
    else:  # the 3-d features group by brightness: dark object merged with dark background
        assert err > 0.3, err


def test_weighted_kmeans_finds_the_weighted_optimum(rng):
    import itertools

    from sempix.softseg.sparsify import weighted_kmeans

    X = rng.random((7, 3))
    w = rng.random(7) * 10

    def inertia(lab):
        return sum(
            (w[lab == j, None] * (X[lab == j] - np.average(X[lab == j], axis=0,
                                                           weights=w[lab == j])) ** 2).sum()
            for j in np.unique(lab)
        )

    best = min(inertia(np.array(lab)) for lab in itertools.product(range(3), repeat=7)
               if len(set(lab)) == 3)
    lab = weighted_kmeans(X, 3, w, restarts=20, seed=0)
    assert len(np.unique(lab)) == 3
    assert inertia(lab) <= best + 1e-9
    # a heavy point pulls its cluster: with weights the two-point split changes
    P = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert weighted_kmeans(P, 2, np.array([1, 1, 100, 1]), restarts=5)[2] != \
        weighted_kmeans(P, 2, np.array([1, 1, 100, 1]), restarts=5)[3]


def test_grouping_features_unit_vectors_on_the_grid(ade20k_available):
    from sempix.softseg import grouping_features

    img, _, _ = two_region(48, 64)
    assert grouping_features(img, "lowlevel", (6, 8)) is None
    g = grouping_features(img, "ade20k", (6, 8))
    assert g.shape == (6, 8, 256) and g.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(g, axis=2), 1.0, atol=1e-4)


def test_private_pymatting_modules_use_pymattings_own_names():
    """numba pickles the kernel's module name into its cache entry and imports it on load: under a
    private name, an entry written by sempix broke a later plain ``import pymatting``."""
    import sys

    from sempix.softseg import _pymatting

    for sub, fn in _pymatting.FUNCTIONS.items():
        mod = _pymatting.module(sub)
        assert sys.modules[f"pymatting.{sub}"] is mod
        # entries written under the old private name still load
        assert sys.modules[f"sempix.softseg._pymatting.{sub.replace('.', '_')}"] is mod
        assert getattr(mod, fn).__module__ == f"pymatting.{sub}"
    kernel = _pymatting.module("laplacian.cf_laplacian")._cf_laplacian
    assert kernel.py_func.__module__ == "pymatting.laplacian.cf_laplacian"
