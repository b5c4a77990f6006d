"""Tests of sempix.recolor on small synthetic collections (plus one real-data check)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sempix.color import delta_e, lab_to_srgb, linear_to_srgb, srgb_to_linear
from sempix.errors import InputError
from sempix.palette import NAMES, extract_palette, name_probabilities, srgb_to_lab
from sempix.recolor.core import (
    palette_distance,
    parse_palette,
    parse_wb,
    recolor_collection,
    render,
    solve_collection,
)
from sempix.recolor.lut import apply_lut, build_lut
from sempix.recolor.solver import (
    assign_image,
    default_group_size,
    solution_energy,
    solve_group_palette,
)
from sempix.recolor.whitebalance import estimate_illuminant, white_balance

from reference.recolor import apply_lut_reference


def scene(seed: int, cells: int = 16, cell: int = 8) -> np.ndarray:
    """Random flat patches, channels i.i.d. (so the scene is grey on average)."""
    r = np.random.default_rng(seed)
    c = r.random((cells, cells, 3)).astype(np.float32)
    img = np.kron(c, np.ones((cell, cell, 1), np.float32)) * 0.9 + 0.05
    return np.clip(img + r.normal(0, 0.01, img.shape).astype(np.float32), 0, 1)


def add_cast(img: np.ndarray, gains=(1.0, 0.6, 0.3)) -> np.ndarray:
    return linear_to_srgb(srgb_to_linear(img) * np.asarray(gains, np.float32))


def flat_image(colours, shares, h: int = 60, w: int = 100, seed: int = 0) -> np.ndarray:
    """Vertical stripes of flat colours with the given pixel shares (+ a little noise)."""
    r = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    edges = np.round(np.cumsum([0, *shares]) / np.sum(shares) * w).astype(int)
    for c, a, b in zip(colours, edges[:-1], edges[1:]):
        img[:, a:b] = c
    return np.clip(img + r.normal(0, 0.004, img.shape).astype(np.float32), 0, 1)


# ------------------------------------------------------------------------------------- colour
def test_lab_round_trip(rng):
    x = rng.random((500, 3)).astype(np.float32)
    assert np.abs(lab_to_srgb(srgb_to_lab(x), gamut="clip") - x).max() < 1e-4
    white = srgb_to_lab(np.ones(3, np.float32))
    assert abs(white[0] - 100) < 0.05 and abs(white[1]) < 0.05 and abs(white[2]) < 0.05


def test_lab_to_rgb_clips_out_of_gamut_per_channel():
    from sempix.palette import lab_to_srgb

    lab = np.array([[60.0, 90.0, 60.0], [30.0, -80.0, -90.0]], np.float32)  # far outside sRGB
    clipped, mapped = lab_to_srgb(lab, gamut="clip"), lab_to_srgb(lab)
    assert clipped.dtype == np.float32 and clipped.min() >= 0 and clipped.max() <= 1
    assert ((clipped == 0) | (clipped == 1)).any(axis=1).all()
    # per-channel clipping is not palette's hue-keeping gamut mapping (recolor keeps its own)
    assert np.abs(clipped - mapped).max() > 0.01


# ------------------------------------------------------------------------------------- white
# balance
def test_wb_removes_cast_only_from_the_cast_image():
    clean = [scene(s) for s in range(3)]
    cast = add_cast(clean[0])
    imgs = [cast, clean[1], clean[2]]
    res = [white_balance(im) for im in imgs]
    assert res[0].applied and res[0].delta_e > 20
    assert not res[1].applied and not res[2].applied
    assert res[1].delta_e < 20 and res[2].delta_e < 20
    before = float(np.mean(delta_e(srgb_to_lab(cast), srgb_to_lab(clean[0]))))
    after = float(np.mean(delta_e(srgb_to_lab(res[0].image), srgb_to_lab(clean[0]))))
    assert after < 0.5 * before
    # not applied -> untouched
    np.testing.assert_array_equal(res[1].image, imgs[1])
    # the illuminant of the cast image points towards red/yellow
    e = res[0].illuminant
    assert e[0] > e[1] > e[2]


def test_wb_in_collection_and_manual_modes():
    clean = [scene(s, cells=12) for s in range(3)]
    imgs = [add_cast(clean[0]), clean[1], clean[2]]
    sol = solve_collection(imgs, saliency="off", features="none", names=None)
    assert sol.stats["wb_applied"] == [True, False, False]
    out = render(sol, imgs)
    d_cast = float(np.mean(delta_e(srgb_to_lab(out[0]), srgb_to_lab(imgs[0]))))
    assert d_cast > 10  # the cast image was corrected
    sol_off = solve_collection(imgs, wb="off", saliency="off", features="none", names=None)
    assert sol_off.stats["wb_applied"] == [False, False, False]
    sol_idx = solve_collection(imgs, wb="1", saliency="off", features="none", names=None)
    assert sol_idx.stats["wb_applied"] == [False, True, False]
    assert parse_wb("0,2", 3) == ["on", "off", "on"]
    with pytest.raises(InputError):
        parse_wb("5", 3)
    with pytest.raises(InputError):
        parse_wb("sometimes", 3)


def test_grey_edge_and_grey_world_estimate_a_cast():
    img = add_cast(scene(3), (0.4, 0.7, 1.0))  # blue cast
    for m in ("grey-world", "grey-edge", "shades-of-grey"):
        e = estimate_illuminant(img, m)
        assert abs(np.linalg.norm(e) - 1) < 1e-5
        assert e[2] > e[0], m


# ------------------------------------------------------------------------------------- solver
def _three_cluster_collection(rng, n_img=4):
    centres = np.array([[50, 60, 40], [70, -50, 40], [40, 10, -50]], np.float64)
    pals, ws = [], []
    for _ in range(n_img):
        pals.append(centres + rng.normal(0, 3, centres.shape))
        ws.append(rng.random(3) + 0.5)
    return centres, pals, ws


def test_solver_recovers_shared_colours(rng):
    centres, pals, ws = _three_cluster_collection(rng)
    sol = solve_group_palette(pals, ws)
    assert sol.k == 3 == default_group_size(pals)
    assert sol.converged
    # every centre has a group colour within a few Delta-E
    d = np.linalg.norm(centres[:, None] - sol.lab[None], axis=-1)
    assert d.min(1).max() < 5
    for a in sol.assignments:
        assert sorted(a.tolist()) == [0, 1, 2]  # one-to-one in every image
    # group colours are the weighted means of their associated colours (update step at convergence)
    allc, allw = np.concatenate(pals), np.concatenate([w / w.sum() for w in ws])
    flat = np.concatenate(sol.assignments)
    for g in range(sol.k):
        m = flat == g
        np.testing.assert_allclose(sol.lab[g], np.average(allc[m], 0, weights=allw[m]), atol=1e-3)
    assert abs(sol.cost - solution_energy(pals, ws, sol.lab, sol.assignments)) < 1e-6 * max(
        1, sol.cost
    )


def test_assignment_is_exact_against_brute_force(rng):
    for trial in range(5):
        n, K = 4, 3
        src = rng.normal(0, 30, (n, 3))
        w = rng.random(n) + 0.1
        w /= w.sum()
        group = rng.normal(0, 30, (K, 3))
        rho, tau = 15.0, 35.0
        a, cost = assign_image(src, w, group, rho=rho, tau=tau)
        best = min(
            solution_energy([src], [w], group, [np.array(c)], rho=rho, tau=tau)
            for c in itertools.product(range(-1, K), repeat=n)
        )
        assert cost == pytest.approx(best, rel=1e-9, abs=1e-9), trial
        assert solution_energy([src], [w], group, [a], rho=rho, tau=tau) == pytest.approx(best)


def test_palette_reduction_term():
    # two similar colours of one image: with rho = 0 both go to the nearest group colour, with a
    # large rho the second one takes the other group colour (or stays unmapped)
    group = np.array([[50, 0, 0], [50, 12, 0]], np.float64)
    src = np.array([[50, 1, 0], [50, 3, 0]], np.float64)
    w = np.array([0.5, 0.5])
    a0, _ = assign_image(src, w, group, rho=0.0, tau=100)
    assert a0.tolist() == [0, 0]
    a1, _ = assign_image(src, w, group, rho=30.0, tau=100)
    assert sorted(a1.tolist()) == [0, 1]


def test_unassociated_colour_term():
    group = np.array([[50, 0, 0]], np.float64)
    src = np.array([[50, 2, 0], [50, 80, 60]], np.float64)
    a, _ = assign_image(src, np.array([0.5, 0.5]), group, rho=0, tau=40)
    assert a.tolist() == [0, -1]
    a, _ = assign_image(src, np.array([0.5, 0.5]), group, rho=0, tau=np.inf)
    assert a.tolist() == [0, 0]


def test_solver_outlier_does_not_drag_group_colour(rng):
    centres, pals, ws = _three_cluster_collection(rng)
    pals[0] = np.vstack([pals[0], [[90, 0, 90]]])  # an isolated yellow in one image only
    ws[0] = np.append(ws[0], 0.05)
    sol = solve_group_palette(pals, ws, k=3)
    d = np.linalg.norm(centres[:, None] - sol.lab[None], axis=-1)
    assert d.min(1).max() < 6
    assert sol.assignments[0][-1] == -1


def test_fixed_external_palette_is_kept(rng):
    _, pals, ws = _three_cluster_collection(rng)
    fixed = np.array([[50, 60, 40], [40, 10, -50]], np.float64)
    sol = solve_group_palette(pals, ws, fixed=fixed)
    np.testing.assert_allclose(sol.lab, fixed, atol=1e-4)
    assert sol.iterations == 1


def test_solver_forbid_constraint(rng):
    _, pals, ws = _three_cluster_collection(rng)

    def forbid(src, group):  # nothing may go to a group colour with b > 0
        return np.repeat((group[:, 2] > 0)[None], len(src), 0)

    sol = solve_group_palette(pals, ws, forbid=forbid)
    for a in sol.assignments:
        for g in a[a >= 0]:
            assert sol.lab[g, 2] <= 0


# ------------------------------------------------------------------------------------- naming
RED, GREEN, GREY = (0.8, 0.1, 0.1), (0.15, 0.6, 0.15), (0.5, 0.5, 0.5)


@pytest.fixture
def w2c(model_dir):
    if not (model_dir / "w2c_vandeweijer2009.mat").is_file():
        pytest.skip("w2c colour-naming model not found")
    return model_dir


def test_red_green_not_linked_with_naming(w2c):
    imgs = [flat_image([RED, GREY], [0.7, 0.3]), flat_image([GREEN, GREY], [0.7, 0.3], seed=1)]
    # tau large: every colour must be associated unless the naming rule forbids it
    kw = {"group_size": 1, "saliency": "off", "features": "none", "wb": "off", "tau": 200.0}
    off = solve_collection(imgs, names=None, **kw)
    on = solve_collection(imgs, names=0.8, **kw)

    def chroma_idx(sol, i):
        return int(
            np.argmax(np.hypot(sol.analyses[i].src_lab[:, 1], sol.analyses[i].src_lab[:, 2]))
        )

    a_red_off = off.assignments[0][chroma_idx(off, 0)]
    a_green_off = off.assignments[1][chroma_idx(off, 1)]
    assert a_red_off >= 0 and a_red_off == a_green_off  # without naming: red and green are linked
    a_red = on.assignments[0][chroma_idx(on, 0)]
    a_green = on.assignments[1][chroma_idx(on, 1)]
    assert a_red < 0 or a_green < 0 or a_red != a_green
    assert on.stats["broken_by_names"] >= 1
    # and the rendered colours keep their names
    out = render(on, imgs)
    for img, o in zip(imgs, out):
        n0 = np.argmax(name_probabilities(img[30, :60]), -1)
        n1 = np.argmax(name_probabilities(o[30, :60]), -1)
        assert (n0 == n1).mean() > 0.99
    # without naming the red stripe changes its name
    out_off = render(off, imgs)
    n_off = np.argmax(name_probabilities(out_off[0][30, 10:60]), -1)
    assert (n_off != NAMES.index("red")).mean() > 0.5


def test_naming_forbid_matrix(w2c):
    from sempix.recolor.core import naming_forbid

    src = srgb_to_lab(np.array([RED, GREY], np.float32))
    grp = srgb_to_lab(np.array([GREEN, (0.75, 0.15, 0.12)], np.float32))
    f = naming_forbid(0.8)(src, grp)
    assert f.shape == (2, 2)
    assert f[0, 0] and not f[0, 1]


# ------------------------------------------------------------------------------------- LUT / render
def test_lut_matches_reference(rng):
    lut = build_lut(lambda x: np.clip(x**2 + 0.1 * x[..., ::-1], 0, 1))
    img = rng.random((20, 30, 3)).astype(np.float32)
    np.testing.assert_allclose(apply_lut(img, lut), apply_lut_reference(img, lut), atol=1e-5)
    ident = build_lut(lambda x: x)
    np.testing.assert_allclose(apply_lut(img, ident), img, atol=1e-5)


def test_external_palette_and_group_edit(w2c):
    imgs = [flat_image([(0.7, 0.3, 0.2), (0.3, 0.4, 0.7)], [0.5, 0.5], seed=s) for s in range(2)]
    pal = parse_palette("#c0392b,#2e64c8")
    res = recolor_collection(imgs, palette=pal, saliency="off", features="none", wb="off")
    sol = res.solution
    np.testing.assert_allclose(sol.group_rgb, pal, atol=2 / 255)
    assert all((a >= 0).all() for a in sol.assignments)
    # moving towards the external palette brings both images closer to it
    for img, out in zip(imgs, res.images):
        before = palette_distance(
            srgb_to_lab(img.reshape(-1, 3)[::50]), np.ones(120), srgb_to_lab(pal), np.ones(2)
        )
        after = palette_distance(
            srgb_to_lab(out.reshape(-1, 3)[::50]), np.ones(120), srgb_to_lab(pal), np.ones(2)
        )
        assert after < before
    # each source colour lands on its target (L kept, group a/b) through the LUT render
    for img, out, an, tgt in zip(imgs, res.images, sol.analyses, sol.targets()):
        for j in range(len(an.src_lab)):
            stripe = slice(5, 45) if j == int(np.argmax(an.src_lab[:, 1])) else slice(55, 95)
            got = srgb_to_lab(out[10:50, stripe].reshape(-1, 3)).mean(0)
            src_px = srgb_to_lab(img[10:50, stripe].reshape(-1, 3)).mean(0)
            nearest = int(np.argmin(np.linalg.norm(an.src_lab - src_px, axis=1)))
            assert np.linalg.norm(got[1:] - tgt[nearest, 1:]) < 3.0
            assert abs(got[0] - src_px[0]) < 1.0
    # editing a group colour changes every image that uses it
    g = sol.group_lab.copy()
    g[0, 1:] += [0, -40]
    edited = render(sol, imgs, group_lab=g)
    for a, b in zip(res.images, edited):
        assert np.abs(a - b).max() > 0.05
    with pytest.raises(InputError):
        render(sol, imgs, group_lab=g[:1])
    with pytest.raises(InputError):
        parse_palette("#12345g")


def test_consistency_improves_on_a_synthetic_collection(w2c):
    # same scene content with different tints: group recolouring makes the palettes closer
    base = flat_image([(0.8, 0.5, 0.2), (0.2, 0.5, 0.8), (0.4, 0.7, 0.3)], [0.4, 0.35, 0.25])
    tints = [(1.0, 1.0, 1.0), (1.0, 0.85, 0.75), (0.8, 0.9, 1.0)]
    imgs = [np.clip(base * np.array(t, np.float32), 0, 1) for t in tints]
    res = recolor_collection(imgs, saliency="off", features="none", wb="off")

    def mean_pairwise(ims):
        pals = [extract_palette(i, k=3) for i in ims]
        return np.mean(
            [
                palette_distance(a.lab, a.weights, b.lab, b.weights)
                for a, b in itertools.combinations(pals, 2)
            ]
        )

    assert mean_pairwise(res.images) < 0.7 * mean_pairwise(imgs)
    # L is never changed by the recolouring (white balance off)
    for a, b in zip(imgs, res.images):
        assert np.abs(srgb_to_lab(a)[..., 0] - srgb_to_lab(b)[..., 0]).mean() < 1.0


def test_bad_options():
    imgs = [scene(0, cells=4)]
    with pytest.raises(InputError):
        solve_collection(imgs, saliency="sometimes", features="none")
    with pytest.raises(InputError):
        solve_collection([np.zeros((4, 4), np.float32)], features="none")
    with pytest.raises(InputError):
        solve_collection([], features="none")


# ------------------------------------------------------------------------------------- CLI
def _run(args, env_extra=None, cwd=None):
    import os

    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", "from sempix.cli import main; main()", "recolor", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_cli_end_to_end(tmp_path, w2c):
    from sempix.image import write_image

    paths = []
    for i, t in enumerate([(1, 1, 1), (1, 0.8, 0.7), (0.8, 0.9, 1)]):
        img = np.clip(
            flat_image([(0.8, 0.5, 0.2), (0.2, 0.5, 0.8)], [0.6, 0.4], seed=i) * np.array(t), 0, 1
        )
        paths.append(str(write_image(tmp_path / f"im{i}.png", img.astype(np.float32))))
    out = tmp_path / "out"
    r = _run([*paths, "-o", str(out), "--preview", "--json", "--features", "none", "-q"])
    assert r.returncode == 0, r.stderr
    for i in range(3):
        assert (out / f"im{i}.png").is_file()
    assert (out / "preview.png").is_file()
    doc = json.loads((out / "recolor.json").read_text())
    assert len(doc["images"]) == 3 and doc["group_palette"]
    # bad input: one line, exit 2, nothing written (in-process for speed)
    from click.testing import CliRunner

    from sempix.cli import cli

    def run_inproc(args):
        res = CliRunner().invoke(cli, ["recolor", *args])
        return res.exit_code, res.output

    bad = tmp_path / "bad"
    code, msg = run_inproc([*paths, "-o", str(bad), "--palette", "#zzzzzz", "--features", "none"])
    assert code == 2 and msg.strip().startswith("error:") and "Traceback" not in msg
    code, msg = run_inproc([*paths, "-o", str(bad), "--wb", "7", "--features", "none"])
    assert code == 2 and "out of range" in msg
    code, msg = run_inproc([str(tmp_path / "missing.png"), "-o", str(bad), "--features", "none"])
    assert code == 2 and "no such file" in msg
    code, msg = run_inproc([*paths, "-o", str(bad), "--names", "maybe", "--features", "none"])
    assert code == 2 and "--names" in msg
    assert not bad.exists()
    # external palette from an image
    code, msg = run_inproc(
        [
            *paths,
            "-o",
            str(tmp_path / "ext"),
            "--palette-from",
            paths[0],
            "--features",
            "none",
            "-q",
        ]
    )
    assert code == 0, msg
    assert len(list((tmp_path / "ext").glob("im*.png"))) == 3


# ------------------------------------------------------------------------------------- real data
def test_real_collection_consistency_improves(data_dir, w2c):
    from sempix.image import load_rgb

    files = sorted((data_dir / "groups" / "collection01").iterdir())[:4]
    if len(files) < 2:
        pytest.skip("collection01 not found")
    imgs = [load_rgb(f) for f in files]
    res = recolor_collection(imgs, features="none")

    def mean_pairwise(ims):
        pals = [extract_palette(i) for i in ims]
        return np.mean(
            [
                palette_distance(a.lab, a.weights, b.lab, b.weights)
                for a, b in itertools.combinations(pals, 2)
            ]
        )

    assert mean_pairwise(res.images) < mean_pairwise(imgs)


# ------------------------------------------------------------------------------------- modules
def _blob_collection(seed: int, bg, fg):
    r = np.random.default_rng(seed)
    img = np.empty((90, 120, 3), np.float32)
    img[:] = bg
    yy, xx = np.mgrid[:90, :120]
    blob = (yy - 45) ** 2 + (xx - 60) ** 2 < 18**2
    img[blob] = fg
    return np.clip(img + r.normal(0, 0.01, img.shape).astype(np.float32), 0, 1), blob


def test_saliency_background_mode_keeps_salient_colours(w2c):
    data = [
        _blob_collection(0, (0.3, 0.5, 0.75), (0.85, 0.2, 0.15)),
        _blob_collection(1, (0.35, 0.45, 0.85), (0.8, 0.3, 0.1)),
    ]
    imgs = [d[0] for d in data]
    both = solve_collection(imgs, saliency="both", features="none", wb="off")
    bg = solve_collection(imgs, saliency="background", features="none", wb="off")
    for sol in (both, bg):
        for an in sol.analyses:
            red = int(np.argmax(an.src_lab[:, 1]))  # the most red colour is the blob's
            assert an.groups[red] == "salient"
            assert an.salient_share[red, 0] > an.salient_share[red, 1]
    assert "salient" in both.group_names and "salient" not in bg.group_names
    out = render(bg, imgs)
    for (img, blob), o, an, a in zip(data, out, bg.analyses, bg.assignments):
        red = int(np.argmax(an.src_lab[:, 1]))
        assert a[red] == -1
        # the blob interior keeps its colour (IDW: the unmapped colour stays fixed)
        assert np.abs(o[blob] - img[blob]).mean() < 0.02


def test_harmonize_moves_group_colours_and_keeps_names(w2c):
    imgs = [
        flat_image([(0.55, 0.35, 0.3), (0.35, 0.4, 0.55)], [0.5, 0.5], seed=s) for s in range(2)
    ]
    plain = solve_collection(imgs, saliency="off", features="none", wb="off")
    harm = solve_collection(imgs, saliency="off", features="none", wb="off", harmonize=True)
    assert plain.group_lab.shape == harm.group_lab.shape
    chroma = lambda lab: np.hypot(lab[:, 1], lab[:, 2]).mean()
    assert chroma(harm.group_lab) > chroma(plain.group_lab)
    for an, t in zip(harm.analyses, harm.targets()):
        a = np.argmax(name_probabilities(an.src_rgb), -1)
        b = np.argmax(name_probabilities(lab_to_srgb(t, gamut="clip")), -1)
        assert (a == b).all()


def test_semantic_grouping_real_model(data_dir, ade20k_available, w2c):
    from sempix.image import load_rgb
    from sempix.recolor.core import SEMANTIC_GROUPS

    files = sorted((data_dir / "groups" / "collection01").iterdir())
    imgs = [load_rgb(f)[::3, ::3] for f in files[2:4]]  # two landscape photos (field, beach)
    sol = solve_collection(imgs, semantic=True, features="ade20k")
    allowed = set(SEMANTIC_GROUPS) | {"other"}
    assert set(sol.group_names) <= allowed
    assert "sky" in {g for an in sol.analyses for g in an.groups}
    # a colour is only ever mapped to a group colour of its own semantic group
    for an, a in zip(sol.analyses, sol.assignments):
        for j, k in enumerate(a):
            if k >= 0:
                assert sol.group_names[k] == an.groups[j]
    with pytest.raises(InputError):
        solve_collection(imgs, semantic=True, features="none")


def test_name_guard_keeps_names(w2c, rng):
    from sempix.recolor.core import name_guard

    before = rng.random((2000, 3)).astype(np.float32)
    after = np.clip(before + rng.normal(0, 0.15, before.shape), 0, 1).astype(np.float32)
    out = name_guard(before, after)
    n0 = np.argmax(name_probabilities(before), -1)
    assert (np.argmax(name_probabilities(out), -1) == n0).all()
    kept = np.argmax(name_probabilities(after), -1) == n0
    np.testing.assert_array_equal(
        out[kept], after[kept]
    )  # colours that keep their name are untouched
    # the others moved towards `before` along their displacement
    d_after = np.linalg.norm(after - before, axis=1)
    d_out = np.linalg.norm(out - before, axis=1)
    assert (d_out[~kept] < d_after[~kept]).all()


# ------------------------------------------------------------------------------------- per-pixel
# naming guard
def _smooth_image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth random colour field (many name boundaries crossed by gradients)."""
    from scipy import ndimage

    r = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(r.random((h, w, 3)), (6, 6, 0))
    img = (img - img.min((0, 1))) / (np.ptp(img, axis=(0, 1)) + 1e-9)
    return (0.05 + 0.9 * img).astype(np.float32)


def test_guard_names_numba_matches_reference(w2c, rng):
    from sempix.palette.naming import name_index
    from sempix.recolor.core import name_table
    from sempix.recolor.lut import guard_names

    from reference.recolor import guard_names_reference

    ref = rng.random((12, 20, 3)).astype(np.float32)
    out = np.clip(ref + rng.normal(0, 0.12, ref.shape), 0, 1).astype(np.float32)
    out[0, :5] = ref[0, :5]  # unmoved pixels
    out[1] = np.clip(ref[1] + rng.normal(0, 0.006, ref[1].shape), 0, 1)  # small moves (fast path)
    for soft in (0.0, 0.5):
        fast, n = guard_names(ref, out, name_table(), soft=soft)
        slow = guard_names_reference(ref, out, soft=soft)
        np.testing.assert_array_equal(fast, slow)
        assert (name_index(fast) == name_index(ref)).all()
        assert n == int(np.any(fast != out, axis=-1).sum()) > 0
    with pytest.raises(ValueError):
        guard_names(ref, out[:5], name_table())


def test_guard_names_properties(w2c, rng):
    from sempix.palette.naming import name_index
    from sempix.recolor.core import name_table
    from sempix.recolor.lut import guard_names

    ref = _smooth_image(3, 120, 160)
    out = np.clip(ref + np.array([0.06, -0.04, 0.03], np.float32), 0, 1)
    changed = name_index(out) != name_index(ref)
    assert changed.mean() > 0.05  # the raw transform changes many names
    for soft in (0.0, 0.5):
        g, n = guard_names(ref, out, name_table(), soft=soft)
        assert (name_index(g) == name_index(ref)).all()  # every pixel keeps its name
        # every result lies on the segment from the reference to the transformed colour
        d = out - ref
        s = np.sum((g - ref) * d, -1) / np.maximum(np.sum(d * d, -1), 1e-12)
        assert s.min() >= -1e-5 and s.max() <= 1 + 1e-5
        np.testing.assert_allclose(g, ref + s[..., None] * d, atol=1e-5)
        # all pixels whose name changed were moved back; most others keep their full displacement
        assert n >= int(changed.sum()) and n == int(np.any(g != out, axis=-1).sum())
        assert (s > 0.999).mean() > 0.3


def test_guard_output_is_monotone_and_smooth_along_ramps(w2c):
    """Along a ramp of the input, transformed by a shift along the ramp, the guarded output stays
    monotone; the soft guard replaces the steps at name boundaries by ramps."""
    from sempix.palette.naming import name_index
    from sempix.recolor.core import name_table
    from sempix.recolor.lut import guard_names

    u = np.linspace(0, 1, 800, dtype=np.float32)[:, None]
    ramps = [
        ((0.75, 0.1, 0.1), (0.95, 0.9, 0.2)),  # red -> orange -> yellow
        ((0.1, 0.15, 0.7), (0.15, 0.75, 0.3)),  # blue -> green
        ((0.35, 0.35, 0.35), (0.95, 0.65, 0.5)),
    ]  # grey -> brown/skin
    for c0, c1 in ramps:
        c0, c1 = np.array(c0, np.float32), np.array(c1, np.float32)
        v = c1 - c0
        ref = (c0 + u * v)[None]  # (1, 800, 3)
        out = np.clip(ref + 0.12 * v, 0, 1)  # moves colours along the ramp, across name boundaries
        assert (name_index(out) != name_index(ref)).any()
        steps = {}
        for soft in (0.0, 0.5):
            g, _ = guard_names(ref, out, name_table(), soft=soft)
            assert (name_index(g) == name_index(ref)).all()
            proj = (g[0] - c0) @ v / (v @ v)
            assert np.diff(proj).min() > -2e-3, (
                c0,
                soft,
            )  # monotone (up to the bisection tolerance)
            steps[soft] = float(np.linalg.norm(np.diff(srgb_to_lab(g[0]), axis=0), axis=1).max())
        in_step = float(np.linalg.norm(np.diff(srgb_to_lab(ref[0]), axis=0), axis=1).max())
        assert steps[0.0] > 10 * in_step  # the hard guard jumps at name boundaries ...
        assert (
            steps[0.5] < 0.5 * steps[0.0] and steps[0.5] < 12 * in_step
        )  # ... the soft guard ramps


def test_render_keeps_every_pixel_name(w2c):
    from sempix.palette.naming import name_index
    from sempix.recolor.core import color_transforms
    from sempix.recolor.whitebalance import apply_gains

    tints = [(1.0, 1.0, 1.0), (1.0, 0.8, 0.65), (0.7, 0.85, 1.0)]
    imgs = [
        np.clip(_smooth_image(s) * np.array(t, np.float32), 0, 1) for s, t in zip(range(3), tints)
    ]
    imgs[2] = add_cast(imgs[2], (1.0, 0.55, 0.3))
    kw = {"saliency": "off", "features": "none", "wb": "2"}
    on = recolor_collection(imgs, **kw)
    off = recolor_collection(imgs, names=None, **kw)
    sol = on.solution
    assert sol.stats["wb_applied"] == [False, False, True]
    lut_only = [
        apply_lut(i, build_lut(f)) if f is not None else i
        for i, f in zip(imgs, color_transforms(sol))
    ]
    n_lut = n_off = 0
    for img, an, o, o_off, lo in zip(imgs, sol.analyses, on.images, off.images, lut_only):
        ref = (
            apply_gains(img, an.wb_gains) if an.wb_applied else img
        )  # compared with the white-balanced input
        assert (name_index(o) == name_index(ref)).all()
        n_off += int((name_index(o_off) != name_index(ref)).sum())
        n_lut += int((name_index(lo) != name_index(ref)).sum())
    assert n_off > 0 and n_lut > 0  # without naming / with the grid guard only, pixel names change
    assert sol.stats["guarded_pixels"] > 0
    # user-edited group colours are rendered as they are (no guard)
    g = sol.group_lab.copy()
    g[:, 1:] = -g[:, 1:]
    edited = render(sol, imgs, group_lab=g)
    assert any((name_index(e) != name_index(i)).any() for e, i in zip(edited[:2], imgs[:2]))


def test_cli_outputs_keep_pixel_names(tmp_path, w2c):
    from click.testing import CliRunner

    from sempix.cli import cli
    from sempix.image import load_rgb, write_image
    from sempix.palette.naming import name_index

    tints = [(1.0, 1.0, 1.0), (1.0, 0.8, 0.65), (0.7, 0.85, 1.0)]
    paths = [
        str(
            write_image(
                tmp_path / f"g{i}.png", np.clip(_smooth_image(i) * np.array(t, np.float32), 0, 1)
            )
        )
        for i, t in enumerate(tints)
    ]
    res = CliRunner().invoke(
        cli,
        [
            "recolor",
            *paths,
            "-o",
            str(tmp_path / "o"),
            "--wb",
            "off",
            "--saliency",
            "off",
            "--features",
            "none",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    moved = 0
    for p in paths:
        a, b = load_rgb(p), load_rgb(tmp_path / "o" / p.split("/")[-1])
        assert (name_index(a) == name_index(b)).all()
        moved += int(np.abs(a - b).max() > 0.02)
    assert moved >= 2


# ------------------------------------------------------------------------------------- WB safeguard
def lawn(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """Textured, mostly green scene without a cast (a lawn with a few patches of soil)."""
    from scipy import ndimage

    from sempix.palette import lab_to_srgb

    r = np.random.default_rng(seed)
    n = ndimage.gaussian_filter(r.normal(0, 1, (h, w)), 1.5)
    hue = ndimage.gaussian_filter(r.normal(0, 1, (h, w)), 4)
    n, hue = n / n.std(), hue / hue.std()
    lab = np.stack([50 + 12 * n, -40 + 6 * hue, 45 + 6 * np.roll(hue, 7, 0)], -1).astype(np.float32)
    img = lab_to_srgb(lab).astype(np.float32)
    soil = ndimage.gaussian_filter(r.normal(0, 1, (h, w)), 3)
    soil = soil > 1.5 * soil.std()  # a few dark-brown patches
    img[soil] = (0.3, 0.22, 0.15)
    return img


def test_wb_safeguard_leaves_single_colour_scene_alone(w2c):
    from sempix.recolor.whitebalance import colour_dominance

    green = lawn(0)
    plain = white_balance(green, safeguard=False)
    assert plain.applied and plain.delta_e > 20  # shades-of-grey alone "corrects" the lawn to grey
    auto = white_balance(green)
    assert not auto.applied and auto.delta_e < 20 and auto.dominance > 2 and auto.strength == 0.0
    np.testing.assert_array_equal(auto.image, green)
    forced = white_balance(green, mode="on")  # the user can still force the full correction
    assert forced.applied and forced.strength == 1.0 and forced.delta_e > 20
    # a neutral-ish varied scene with a cast is still corrected (the cast keeps the spread)
    for seed, gains in ((0, (1.0, 0.6, 0.3)), (1, (0.5, 1.0, 0.5))):
        cast = add_cast(scene(seed), gains)
        wb = white_balance(cast)
        assert wb.applied and wb.strength == 1.0 and wb.dominance < 1.0
    assert colour_dominance(np.full((20, 20, 3), 0.5, np.float32)) < 0.1
    # in a collection: the lawn is not white-balanced, the cast scene is
    sol = solve_collection(
        [green, add_cast(scene(0, cells=12)), scene(1, cells=12)],
        saliency="off",
        features="none",
        names=None,
    )
    assert sol.stats["wb_applied"] == [False, True, False]
    sol_on = solve_collection(
        [green, scene(1, cells=12)], wb="0", saliency="off", features="none", names=None
    )
    assert sol_on.stats["wb_applied"] == [True, False]


# ------------------------------------------------------------------------------------- saliency
# backend
# The learned backend is exercised with the tiny ONNX stand-in of tests/test_saliency.py (relu of
# the
# normalised red channel, so a red blob on blue is "salient"); the real u2netp.onnx cannot be
# downloaded on the test machine.


def _onnx_net(path, **kw):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install onnxruntime)")
    from test_saliency import _tiny_u2netp

    path.write_bytes(_tiny_u2netp(**kw))
    return path


@pytest.fixture
def tiny_u2netp(tmp_path):
    return _onnx_net(tmp_path / "tiny_u2netp.onnx")


@pytest.fixture
def saliency_spy(monkeypatch):
    """Record (backend, model, labels given) of every compute_saliency call made by the core; count
    labels."""
    from sempix.recolor import core

    calls, label_calls = [], []
    real = core.compute_saliency

    def spy(image, **kw):
        calls.append(
            (
                kw.get("backend"),
                None if kw.get("model") is None else str(kw["model"]),
                kw.get("labels") is not None,
            )
        )
        return real(image, **kw)

    def labels(image, backend="ade20k"):  # stands in for ADE20K labels: all "others" (no prior)
        label_calls.append(backend)
        return np.zeros(image.shape[:2], np.int32), ["others"]

    monkeypatch.setattr(core, "compute_saliency", spy)
    monkeypatch.setattr(core, "semantic_labels", labels)
    return calls, label_calls


def _red_blobs():
    """Two noise-free images: a saturated red disc on blue (the tiny network's map is 1 on the
    disc)."""
    out = []
    for bg in ((0.3, 0.5, 0.75), (0.35, 0.45, 0.85)):
        img = np.empty((90, 120, 3), np.float32)
        img[:] = bg
        yy, xx = np.mgrid[:90, :120]
        img[(yy - 45) ** 2 + (xx - 60) ** 2 < 18**2] = (1.0, 0.2, 0.15)
        out.append(img)
    return out


def test_saliency_backend_reaches_compute_saliency(saliency_spy, tiny_u2netp):
    from sempix.recolor import saliency as sal
    from sempix.recolor.core import downsize

    calls, label_calls = saliency_spy
    imgs = _red_blobs()
    kw = {"saliency": "both", "features": "ade20k", "wb": "off", "names": None}
    # default: rbd with the semantic prior (labels computed for it)
    a = solve_collection(imgs, **kw)
    assert calls == [("rbd", None, True)] * 2 and len(label_calls) == 2
    assert a.options["saliency_backend"] == "rbd" and a.options["saliency_model_file"] is None
    # explicit u2netp: the network runs, and no labels are computed just for saliency
    calls.clear()
    label_calls.clear()
    b = solve_collection(imgs, saliency_backend="u2netp", saliency_model=tiny_u2netp, **kw)
    assert calls == [("u2netp", str(tiny_u2netp), False)] * 2 and label_calls == []
    assert b.options["saliency_backend"] == "u2netp"
    assert b.options["saliency_model_file"] == str(tiny_u2netp)
    for img, an in zip(imgs, b.analyses):
        net = sal.compute_saliency(downsize(img), backend="u2netp", model=tiny_u2netp).saliency
        assert np.array_equal(an.saliency, net)
        red = int(np.argmax(an.src_lab[:, 1]))
        assert (
            an.groups[red] == "salient"
            and an.groups[int(np.argmax(-an.src_lab[:, 2]))] != "salient"
        )
    # through recolor_collection (keyword forwarding) and the use_backend() context (library users)
    calls.clear()
    with sal.use_backend("u2netp", tiny_u2netp):
        res = recolor_collection(imgs, **kw)
        assert res.solution.options["saliency_backend"] == "u2netp"
        solve_collection(imgs, saliency_backend="rbd", **kw)  # explicit beats the context default
    assert [c[0] for c in calls] == ["u2netp", "u2netp", "rbd", "rbd"]
    # semantic grouping still needs labels, and uses no saliency model at all
    calls.clear()
    label_calls.clear()
    s = solve_collection(
        imgs,
        semantic=True,
        saliency_backend="u2netp",
        saliency_model=tiny_u2netp,
        **{**kw, "saliency": "both"},
    )
    assert calls == [] and len(label_calls) == 2 and s.options["saliency_backend"] is None
    # saliency off: the backend is not even resolved (a missing model is no error)
    off = solve_collection(
        imgs,
        saliency_backend="u2netp",
        saliency_model=tiny_u2netp.with_name("gone.onnx"),
        **{**kw, "saliency": "off"},
    )
    assert calls == [] and off.options["saliency_backend"] is None


def test_saliency_cache_is_per_backend_and_model(saliency_spy, tiny_u2netp, tmp_path):
    calls, label_calls = saliency_spy
    imgs = _red_blobs()
    caches = [{}, {}]
    kw = {"saliency": "both", "features": "none", "wb": "off", "names": None, "caches": caches}
    # the inverted network (background salient) gives a map nothing like rbd's (disc salient)
    inv = _onnx_net(tmp_path / "inv.onnx", weights=(-1.0, 0.0, 0.0), bias=10.0)
    a = solve_collection(imgs, saliency_backend="rbd", **kw)
    assert len(calls) == 2
    b = solve_collection(imgs, saliency_backend="u2netp", saliency_model=inv, **kw)
    assert (
        len(calls) == 4 and calls[2:] == [("u2netp", str(inv), False)] * 2
    )  # not the cached rbd map
    for x, y in zip(a.analyses, b.analyses):
        assert np.abs(x.saliency - y.saliency).mean() > 0.3
    # back to rbd / same u2netp file: cached maps are reused
    c = solve_collection(imgs, saliency_backend="rbd", **kw)
    d = solve_collection(imgs, saliency_backend="u2netp", saliency_model=inv, **kw)
    assert len(calls) == 4
    assert all(np.array_equal(x.saliency, y.saliency) for x, y in zip(a.analyses, c.analyses))
    assert all(np.array_equal(x.saliency, y.saliency) for x, y in zip(b.analyses, d.analyses))
    # another model file: recomputed; the old file's maps are dropped
    e = solve_collection(imgs, saliency_backend="u2netp", saliency_model=tiny_u2netp, **kw)
    assert len(calls) == 6 and {c[1] for c in calls[4:]} == {str(tiny_u2netp)}
    for x, y in zip(b.analyses, e.analyses):
        assert np.abs(x.saliency - y.saliency).mean() > 0.3
    for cache in caches:
        keys = [k for k in cache if isinstance(k, tuple) and k[0] == "saliency"]
        assert sorted(k[1] for k in keys) == ["rbd", "u2netp"]
    # the same path rewritten with other weights (new mtime/size): not reused either
    _onnx_net(tiny_u2netp, weights=(-1.0, 0.0, 0.0), bias=10.0)
    st = tiny_u2netp.stat()
    os.utime(tiny_u2netp, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    f = solve_collection(imgs, saliency_backend="u2netp", saliency_model=tiny_u2netp, **kw)
    assert len(calls) == 8
    assert all(
        np.allclose(x.saliency, y.saliency, atol=1e-6) for x, y in zip(b.analyses, f.analyses)
    )
    assert label_calls == []  # features="none": no labels anywhere


def test_cli_passes_saliency_backend_explicitly(tmp_path, tiny_u2netp, monkeypatch):
    from click.testing import CliRunner

    from sempix.cli import cli
    from sempix.image import write_image
    from sempix.recolor import core
    from sempix.recolor import saliency as sal

    seen = []
    real = core.solve_collection

    def spy(images, **kw):
        seen.append((kw.get("saliency_backend"), kw.get("saliency_model"), sal.default_backend()))
        return real(images, **kw)

    monkeypatch.setattr(core, "solve_collection", spy)
    paths = [str(write_image(tmp_path / f"b{i}.png", im)) for i, im in enumerate(_red_blobs())]
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli,
        [
            "recolor",
            *paths,
            "-o",
            str(out),
            "--features",
            "none",
            "--names",
            "off",
            "-q",
            "--json",
            "--saliency-model",
            str(tiny_u2netp),
        ],
    )
    assert r.exit_code == 0, r.output
    # passed as arguments; the context default is left alone
    assert len(seen) == 1 and seen[0][0] == "u2netp" and str(seen[0][1]) == str(tiny_u2netp)
    assert seen[0][2] == ("rbd", None)
    doc = json.loads((out / "recolor.json").read_text())
    assert (
        doc["options"]["saliency_model"] == "u2netp"
        and doc["options"]["saliency_backend"] == "u2netp"
    )
    im0 = doc["images"][0]
    assert set(im0) >= {"wb_dominance", "wb_strength"} and 0 <= im0["wb_strength"] <= 1
    r = CliRunner().invoke(
        cli,
        [
            "recolor",
            *paths,
            "-o",
            str(tmp_path / "o2"),
            "--features",
            "none",
            "--names",
            "off",
            "-q",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert seen[1][:2] == ("rbd", None)
    assert (
        json.loads((tmp_path / "o2" / "recolor.json").read_text())["options"]["saliency_model"]
        == "rbd"
    )
