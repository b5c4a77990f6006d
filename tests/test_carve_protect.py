"""Default semantic protection of ``carve`` (people/animals/vehicles, shared with ``retarget``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.carve import carve
from sempix.errors import InputError
from sempix.features import PROTECT_CLASSES, FeatureMap, protect_mask


def _scene(rng, H=40, W=60):
    """Textured noise except a flat 'person' stripe: the cheapest seams cross the person."""
    img = rng.uniform(0, 1, (H, W, 3)).astype(np.float32)
    person = np.zeros((H, W), bool)
    person[:, 24:34] = True
    img[person] = (0.8, 0.6, 0.5)
    labels = np.where(person, 1, 2).astype(np.int32)
    feats = np.stack([person, ~person], axis=2).astype(np.float32)
    fm = FeatureMap(
        features=feats,
        backend="ade20k",
        semantic=True,
        labels=labels,
        class_names=["others", "person", "wall"],
    )
    return img, fm, person


def test_protect_classes_shared_with_retarget():
    import sempix.retarget as rt

    assert rt.PROTECT_CLASSES is PROTECT_CLASSES
    assert {"person", "animal", "car"} <= set(PROTECT_CLASSES)


def test_protect_auto_keeps_people_none_cuts_them(rng):
    img, fm, person = _scene(rng)
    off = carve(img, 45, features=fm, protect="none", also=[person.astype(np.float32)])
    assert off.info["protect"]["classes"] == []
    assert off.also[0].sum() < person.sum()  # without protection the flat person goes first
    on = carve(img, 45, features=fm, also=[person.astype(np.float32)])  # default: "auto"
    assert on.info["protect"]["present"] == ["person"]
    assert on.info["protect"]["pixels_cut"] == 0
    assert on.also[0].sum() == person.sum()
    # explicit class names and an explicit map do the same
    named = carve(img, 45, features=fm, protect="person")
    assert named.info["protect"]["pixels_cut"] == 0
    mapped = carve(img, 45, features=fm.features, protect=person)
    assert mapped.info["protect"]["pixels_cut"] == 0


def test_protect_is_best_effort_not_an_error(rng):
    img, fm, _ = _scene(rng)
    res = carve(img, 5, features=fm)  # 55 seams, only 50 unprotected columns: some must cut
    assert res.image.shape == (40, 5, 3)
    assert res.info["protect"]["pixels_cut"] > 0
    assert res.info["keep_pixels_cut"] == 0


def test_protect_without_labels(rng):
    img, fm, _ = _scene(rng)
    res = carve(img, 50, features=fm.features)  # a bare array: "auto" cannot protect anything
    assert res.info["protect"]["classes"] == [] and res.info["protect"]["unavailable"]
    with pytest.raises(InputError, match="labels"):
        carve(img, 50, features=fm.features, protect="person")
    with pytest.raises(InputError, match="unknown class"):
        carve(img, 50, features=fm, protect="persn")
    with pytest.raises(InputError, match="shape"):
        carve(img, 50, features=fm, protect=np.ones((3, 3)))


def test_protect_mask_auto_lists_present_classes(rng):
    _, fm, person = _scene(rng)
    m, info = protect_mask(fm, "auto")
    assert np.array_equal(m, person) and info["present"] == ["person"]
    assert protect_mask(fm, "none")[0] is None


def test_cli_carve_protect_and_json(tmp_path, rng):
    from sempix.cli import cli

    img = rng.uniform(0, 1, (30, 40, 3))
    p = tmp_path / "in.png"
    Image.fromarray((img * 255).astype(np.uint8)).save(p)
    out = tmp_path / "o.png"
    r = CliRunner().invoke(
        cli,
        [
            "carve",
            str(p),
            "-o",
            str(out),
            "-W",
            "75%",
            "--features",
            "lowlevel",
            "--seams",
            str(tmp_path / "s.png"),
            "--json",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (
        doc["command"] == "carve"
        and doc["input_size"] == [40, 30]
        and doc["output_size"] == [30, 30]
    )
    assert doc["outputs"] == {"image": str(out), "seams": str(tmp_path / "s.png")}
    assert doc["seams"]["removed"] == 10 and doc["protect"].get(
        "unavailable"
    )  # lowlevel: no labels
    assert set(doc["timings"]) == {"features", "carve", "total"}
    r = CliRunner().invoke(
        cli,
        [
            "carve",
            str(p),
            "-o",
            str(out),
            "-W",
            "75%",
            "--features",
            "none",
            "--protect",
            "person",
            "--force",
        ],
    )
    assert r.exit_code == 2 and "semantic labels" in r.output


def test_real_kodim12_people_kept_by_default(ade20k_available, data_dir):
    """The issue's case: seams cut the man's face on kodim12 (lam 0.2) unless protected."""
    from sempix.features import compute_features
    from sempix.image import load_rgb

    src = data_dir / "kodak24" / "kodim12.png"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    rgb = load_rgb(src)[::2, ::2].copy()
    fm = compute_features(rgb, "ade20k", dim=16)
    people, _ = protect_mask(fm, "auto")
    assert people is not None and people.mean() > 0.05
    before = carve(rgb, "80%", features=fm.features, lam=0.2, also=[people.astype(np.float32)])
    after = carve(rgb, "80%", features=fm, lam=0.2, also=[people.astype(np.float32)])
    removed_before = 1 - before.also[0].sum() / people.sum()
    removed_after = 1 - after.also[0].sum() / people.sum()
    assert removed_before > 0.02 and removed_after == 0.0
