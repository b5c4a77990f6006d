"""Class selection (``--class sky``) and mask combination (union / intersection / subtract)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.errors import InputError
from sempix.features import FeatureMap
from sempix.mask import (
    DEFAULT_SPACE,
    class_select,
    combine_masks,
    mask_intersection,
    mask_subtract,
    mask_union,
)


def _scene(H=40, W=60, h=10, w=15):
    """Sky (top 40 %) over grass, a person box; probabilities at a 4x lower 'network' resolution."""
    img = np.zeros((H, W, 3), np.float32)
    img[: int(0.4 * H)] = (0.5, 0.7, 0.95)
    img[int(0.4 * H) :] = (0.2, 0.6, 0.2)
    img[20:36, 25:35] = (0.8, 0.5, 0.4)
    yy, xx = (np.mgrid[0:h, 0:w] + 0.5) * (H / h)
    sky = (yy < 0.4 * H).astype(np.float32)
    person = ((yy >= 20) & (yy < 36) & (xx >= 25) & (xx < 35)).astype(np.float32)
    grass = 1 - sky - person
    logits = np.stack([np.zeros_like(sky), sky, grass, person], axis=2) * 6.0
    p = np.exp(logits - logits.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    labels_hi = np.zeros((H, W), np.int32)
    labels_hi[: int(0.4 * H)] = 1
    labels_hi[int(0.4 * H) :] = 2
    labels_hi[20:36, 25:35] = 3
    fm = FeatureMap(
        features=np.zeros((H, W, 2), np.float32),
        backend="ade20k",
        semantic=True,
        labels=labels_hi,
        class_names=["others", "sky", "grass", "person"],
        probs_lowres=p.astype(np.float32),
    )
    return img, fm, labels_hi


def test_combine_masks_are_fuzzy_set_operators(rng):
    a = rng.uniform(0, 1, (8, 9)).astype(np.float32)
    b = rng.uniform(0, 1, (8, 9)).astype(np.float32)
    np.testing.assert_array_equal(mask_union(a, b), np.maximum(a, b))
    np.testing.assert_array_equal(mask_intersection(a, b), np.minimum(a, b))
    np.testing.assert_allclose(mask_subtract(a, b), np.minimum(a, 1 - b))
    # on hard masks they are the set operations
    A, B = a > 0.5, b > 0.5
    assert np.array_equal(combine_masks(A, B, "union") > 0.5, A | B)
    assert np.array_equal(combine_masks(A, B, "intersection") > 0.5, A & B)
    assert np.array_equal(combine_masks(A, B, "subtract") > 0.5, A & ~B)
    with pytest.raises(InputError, match="operation"):
        combine_masks(a, b, "xor")
    with pytest.raises(InputError, match="same size"):
        mask_union(a, b[:4])


def test_class_select_soft_edges_hard_labels_and_errors():
    img, fm, labels = _scene()
    hard = class_select(img, fm, "sky", soft=False, refine=False)
    assert np.array_equal(hard > 0.5, labels == 1)
    soft = class_select(img, fm, "SKY", refine=False)
    assert soft.shape == labels.shape and soft.dtype == np.float32
    assert soft[:10].min() > 0.95 and soft[22:].max() < 0.05  # inside / outside
    edge = soft[13:19]
    assert ((edge > 0.05) & (edge < 0.95)).any()  # a soft transition at the boundary
    refined = class_select(img, fm, "sky")
    assert np.abs(refined - (labels == 1)).mean() < np.abs(soft - (labels == 1)).mean() + 0.02
    both = class_select(img, fm, ["person", "sky"], refine=False)
    assert both[28, 30] > 0.9 and both[5, 5] > 0.9 and both[38, 5] < 0.1
    with pytest.raises(InputError, match="unknown class"):
        class_select(img, fm, "skyy")
    bare = FeatureMap(features=fm.features, backend="lowlevel", semantic=False)
    with pytest.raises(InputError, match="labels"):
        class_select(img, bare, "sky")


def test_default_space_is_lab():
    from sempix.mask import range_mask

    assert DEFAULT_SPACE == "lab"
    img, _, _ = _scene()
    assert range_mask(img, [(5, 5)], lam=0.0).settings["space"] == "lab"


def _cli(monkeypatch, tmp_path):
    import sempix.mask as mask_pkg

    img, fm, labels = _scene()
    monkeypatch.setattr(mask_pkg, "mask_features", lambda *a, **k: fm)
    p = tmp_path / "in.png"
    Image.fromarray((img * 255).round().astype(np.uint8)).save(p)
    return p, labels


def test_cli_mask_class_combination_and_json(monkeypatch, tmp_path):
    from sempix.cli import cli

    src, labels = _cli(monkeypatch, tmp_path)
    run = CliRunner().invoke
    sky = tmp_path / "sky.png"
    r = run(cli, ["mask", str(src), "--class", "sky", "-o", str(sky), "--json", "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "mask" and doc["input_size"] == [60, 40] and doc["classes"] == ["sky"]
    assert (
        doc["outputs"] == {"mask": str(sky)} and abs(doc["coverage"] - (labels == 1).mean()) < 0.05
    )
    m = np.asarray(Image.open(sky)) / 255
    assert m[:10].min() > 0.9 and m[22:].max() < 0.1
    # union of two classes minus the person, intersected with the left half
    left = tmp_path / "left.png"
    Image.fromarray(
        np.where(np.arange(60)[None, :] < 30, 255, 0).repeat(40, 0).astype(np.uint8)
    ).save(left)
    person = tmp_path / "person.png"
    assert (
        run(
            cli, ["mask", str(src), "--class", "person", "--hard-class", "-o", str(person), "-q"]
        ).exit_code
        == 0
    )
    out = tmp_path / "o.png"
    r = run(
        cli,
        [
            "mask",
            str(src),
            "--class",
            "sky,grass",
            "--hard-class",
            "--subtract",
            str(person),
            "--intersect",
            str(left),
            "-o",
            str(out),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(out)) > 127
    want = (labels != 3) & (np.arange(60)[None, :] < 30)
    assert np.array_equal(got, want)
    # --at and --class together: the union
    r = run(
        cli,
        [
            "mask",
            str(src),
            "--class",
            "person",
            "--at",
            "5,5",
            "--tau",
            "0.05",
            "--features",
            "ade20k",
            "--lambda",
            "0",
            "-o",
            str(out),
            "--force",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(out)) > 127
    assert got[5, 5] and got[28, 30] and not got[38, 5]


@pytest.mark.parametrize(
    "args,word",
    [
        (["-o", "{m}"], "--class"),
        (["--class", "sky", "--features", "none", "-o", "{m}"], "semantic labels"),
        (["--class", "sky", "--save-distance", "{d}"], "--at"),
        (["--class", "sky", "--add", "{src}", "-o", "{src}"], "overwrite"),
    ],
)
def test_cli_mask_class_bad_input(monkeypatch, tmp_path, args, word):
    from sempix.cli import cli

    src, _ = _cli(monkeypatch, tmp_path)
    args = [a.format(m=tmp_path / "m.png", d=tmp_path / "d.npy", src=src) for a in args]
    r = CliRunner().invoke(cli, ["mask", str(src), *args])
    assert r.exit_code == 2 and word in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "m.png").exists()


def test_real_kodim12_select_sky_and_person(ade20k_available, data_dir, tmp_path):
    from sempix.cli import cli

    src = data_dir / "kodak24" / "kodim12.png"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    out = tmp_path / "sky.png"
    r = CliRunner().invoke(
        cli, ["mask", str(src), "--class", "sky", "-o", str(out), "--json", "-q"]
    )
    assert r.exit_code == 0, r.output
    m = np.asarray(Image.open(out)) / 255
    assert (
        m[:40].mean() > 0.8 and m[-100:].mean() < 0.05
    )  # kodim12: clouds on top, sand at the bottom
    r = CliRunner().invoke(
        cli, ["mask", str(src), "--class", "person", "-o", str(tmp_path / "p.png"), "-q"]
    )
    assert r.exit_code == 0, r.output
    p = np.asarray(Image.open(tmp_path / "p.png")) / 255
    assert 0.05 < p.mean() < 0.3
