"""SlimSeg distillation, export and the ``slimseg`` feature backend (tiny random networks only)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sempix.errors import InputError, ModelUnavailableError  # noqa: E402
from sempix.image import write_image  # noqa: E402
from sempix.nets.deeplab import BlockSpec, DeepLabConfig, DeepLabV3Plus  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny networks gain nothing from more, and the CI machine is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


NAMES = ["others", "sky", "tree", "road", "wall", "person", "car"]
WIDTHS = (0.25, 0.5, 1.0)


def tiny_config() -> DeepLabConfig:
    return DeepLabConfig(
        num_classes=len(NAMES),
        stem_channels=8,
        blocks=(BlockSpec(1, 8, 1, 1), BlockSpec(6, 8, 2, 1), BlockSpec(6, 16, 2, 1),
                BlockSpec(6, 16, 1, 2)),
        aspp_channels=16,
        low_level_block=1,
        low_level_channels=8,
        decoder_channels=16,
    )


def tiny_teacher(seed: int = 0) -> DeepLabV3Plus:
    torch.manual_seed(seed)
    return DeepLabV3Plus(tiny_config()).eval()


def tiny_student(teacher):
    from sempix.slimseg.model import from_deeplab

    return from_deeplab(teacher, widths=WIDTHS, boundary_head=False)


def photos(folder, n=2, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        y, x = np.mgrid[0:48, 0:72] / 72.0
        img = np.stack([y, x, 0.5 + 0.5 * np.sin(6 * x + i)], -1) + 0.1 * rng.random((48, 72, 3))
        p = folder / f"p{i}.png"
        write_image(p, np.clip(img, 0, 1).astype(np.float32))
        out.append(p)
    return out


def small_options(**kw):
    from sempix.slimseg.distill import DistillOptions

    base = dict(widths=WIDTHS, steps=2, batch=2, crop=65, size=97, topk=3, lr=0.05,
                checkpoint_every=0)
    base.update(kw)
    return DistillOptions(**base)


@pytest.fixture
def tiny_ckpt(tmp_path):
    """A distilled (2 steps) tiny slimmable checkpoint in a temporary folder."""
    from sempix.slimseg.distill import distill

    teacher = tiny_teacher()
    ckpt = tmp_path / "slim.pt"
    distill(photos(tmp_path / "photos"), ckpt, small_options(), teacher=teacher,
            teacher_id="tiny", student=tiny_student(teacher), class_names=NAMES)
    return ckpt


def test_export_is_the_slim_network_at_each_width():
    from sempix.slimseg.distill import export_width
    from sempix.slimseg.model import calibrate_bn

    model = tiny_student(tiny_teacher())
    calibrate_bn(model, torch.rand(3, 3, 65, 65))
    model.eval()
    x = torch.rand(2, 3, 65, 81)
    for w in WIDTHS:
        e = export_width(model, w)
        net = DeepLabV3Plus(DeepLabConfig.from_dict(e["config"]))
        net.load_state_dict(e["state_dict"])
        model.set_width(w)
        with torch.no_grad():
            a, b = model(x), net.eval()(x)
        assert b.features.shape[1] == max(1, round(16 * w))
        assert torch.allclose(a.logits, b.logits, atol=1e-5)
        assert torch.allclose(a.features, b.features, atol=1e-5)


def test_teacher_targets_cached_per_photo(tmp_path):
    from sempix.slimseg.distill import cache_teacher_targets, load_targets

    files = photos(tmp_path / "ph")
    teacher = tiny_teacher()
    paths = cache_teacher_targets(files, tmp_path / "c", teacher=teacher, size=97, topk=3)
    t = load_targets(paths[0])
    # 72x48 letterboxed to 97x65: grid (65-1)//4+1 = 17 rows, (97-1)//4+1 = 25 columns
    assert t.image.shape == (65, 97, 3) and t.index.shape == (17, 25, 3)
    assert np.all(np.diff(t.prob.astype(np.float32), axis=-1) <= 1e-3)  # most probable first
    mtimes = [p.stat().st_mtime_ns for p in paths]

    class Boom(torch.nn.Module):
        def forward(self, x):  # pragma: no cover - must not run: the cache answers
            raise AssertionError("teacher ran again")

    again = cache_teacher_targets(files, tmp_path / "c", teacher=Boom(), size=97, topk=3)
    assert again == paths and [p.stat().st_mtime_ns for p in again] == mtimes


def test_distill_two_steps_lowers_the_loss_and_resumes(tmp_path):
    from sempix.slimseg.distill import (
        distill,
        distill_losses,
        load_targets,
        sample_batch,
    )
    from sempix.slimseg.model import calibrate_bn

    teacher = tiny_teacher()
    student = tiny_student(teacher)
    files = photos(tmp_path / "photos")
    ckpt = tmp_path / "slim.pt"
    res = distill(files, ckpt, small_options(steps=1), teacher=teacher, teacher_id="tiny",
                  student=student, class_names=NAMES, cache_root=tmp_path / "tc")
    targets = [load_targets(p) for p in sorted((res.teacher_cache).glob("*.npz"))]
    batch = sample_batch(targets, 4, 65, rng=np.random.RandomState(3))

    def loss(model):  # batch norm as in training: frozen, calibrated statistics
        model.eval()
        with torch.no_grad():
            return float(sum(distill_losses(model, batch, WIDTHS).values()))

    fresh = tiny_student(teacher)
    calibrate_bn(fresh, batch[0])
    before = loss(fresh)
    from sempix.slimseg.model import load_slimseg

    res2 = distill(files, ckpt, small_options(steps=3), teacher=teacher, teacher_id="tiny",
                   class_names=NAMES, cache_root=tmp_path / "tc")
    assert res.step == 1 and res2.step == 3  # resumed from step 1
    after = loss(load_slimseg(ckpt)[0])
    assert after < before
    ck = torch.load(ckpt, weights_only=True)
    assert sorted(ck["export"]["nets"]) == ["0.25", "0.5", "1"]
    assert ck["export"]["class_names"] == NAMES


def test_crop_must_fit_the_grid():
    from sempix.slimseg.distill import check_crop

    assert check_crop(257) == 257
    with pytest.raises(InputError, match="4 k"):
        check_crop(256)


def test_backend_round_trip(tiny_ckpt, rng):
    from sempix.features import compute_features

    img = rng.random((40, 60, 3)).astype(np.float32)
    fm = compute_features(img, "slimseg", width=0.5, checkpoint=tiny_ckpt, dim=0)
    assert fm.backend == "slimseg" and fm.semantic
    assert fm.features.shape == (40, 60, 8)  # 16 decoder channels x 0.5
    assert fm.labels.shape == (40, 60) and fm.class_names == NAMES
    assert fm.meta["width"] == "0.5" and fm.meta["cache"] == "miss"
    assert fm.probs_lowres.shape[-1] == len(NAMES)
    again = compute_features(img, "slimseg", width=0.5, checkpoint=tiny_ckpt, dim=0)
    assert again.meta["cache"] == "hit"
    np.testing.assert_allclose(again.features, fm.features, atol=2e-3)  # cached as float16
    wide = compute_features(img, "slimseg", width=1.0, checkpoint=tiny_ckpt, dim=0)
    assert wide.meta["cache"] == "miss" and wide.features.shape[-1] == 16
    with pytest.raises(InputError, match="widths: 0.25, 0.5, 1"):
        compute_features(img, "slimseg", width=0.75, checkpoint=tiny_ckpt)


def test_backend_finds_the_checkpoint_in_the_model_dirs(tiny_ckpt, tmp_path, monkeypatch, rng):
    import shutil

    from sempix.features import compute_features

    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(tiny_ckpt, d / "slimseg_ade20k.pt")
    monkeypatch.delenv("SEMPIX_SLIMSEG_CHECKPOINT", raising=False)
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(d))
    monkeypatch.setenv("SEMPIX_SLIMSEG_WIDTH", "0.25")
    fm = compute_features(rng.random((20, 30, 3)).astype(np.float32), "slimseg", dim=0)
    assert fm.meta["width"] == "0.25" and fm.features.shape[-1] == 4


def test_no_checkpoint_is_a_clear_error(tmp_path, monkeypatch, rng):
    from sempix.cli import main
    from sempix.features import compute_features

    monkeypatch.delenv("SEMPIX_SLIMSEG_CHECKPOINT", raising=False)
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path / "empty"))
    img = rng.random((20, 30, 3)).astype(np.float32)
    with pytest.raises(ModelUnavailableError, match="sempix slimseg distill"):
        compute_features(img, "slimseg")  # never a silent lowlevel fallback
    p = tmp_path / "in.png"
    write_image(p, img)
    with pytest.raises(SystemExit) as exc:
        main(["features", str(p), "--features", "slimseg", "--width", "0.5",
              "--preview", str(tmp_path / "prev.png")])
    assert exc.value.code == 2
    assert not (tmp_path / "prev.png").exists()


def test_predict_cli_writes_preview_and_labels(tiny_ckpt, tmp_path, rng):
    from PIL import Image

    from sempix.cli import main

    p = tmp_path / "in.png"
    write_image(p, rng.random((30, 44, 3)).astype(np.float32))
    prev, lab = tmp_path / "p.png", tmp_path / "labels.png"
    with pytest.raises(SystemExit) as exc:
        main(["slimseg", "predict", str(p), str(tiny_ckpt), "--width", "0.5", "--preview",
              str(prev), "-o", str(lab), "--quiet"])
    assert exc.value.code == 0
    labels = np.asarray(Image.open(lab))
    assert labels.shape == (30, 44) and labels.max() < len(NAMES)
    assert Image.open(prev).size[0] > 44  # image, features and labels panels
    with pytest.raises(SystemExit) as exc:
        main(["slimseg", "predict", str(p), str(tiny_ckpt), "--width", "0.75", "--preview",
              str(tmp_path / "q.png")])
    assert exc.value.code == 2 and not (tmp_path / "q.png").exists()


def test_web_quick_preview_then_full_width(tiny_ckpt, monkeypatch):
    import io
    import time

    from fastapi.testclient import TestClient
    from PIL import Image

    from sempix.web.app import create_app

    monkeypatch.setenv("SEMPIX_SLIMSEG_CHECKPOINT", str(tiny_ckpt))
    monkeypatch.delenv("SEMPIX_SLIMSEG_WIDTH", raising=False)
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)).save(
        buf, "PNG")
    import sempix.mask

    widths = []
    real = sempix.mask.mask_features

    def spy(*a, **kw):
        widths.append(kw.get("width"))
        return real(*a, **kw)

    monkeypatch.setattr(sempix.mask, "mask_features", spy)
    app = create_app(backend="slimseg", workers=1)
    with TestClient(app) as c:
        r = c.post("/api/images", files={"file": ("t.png", buf.getvalue(), "image/png")})
        assert r.status_code == 201, r.text
        info = r.json()
        t0 = time.time()
        while time.time() - t0 < 120:
            st = c.get(f"/api/jobs/{info['job']}").json()
            if st["state"] in ("done", "error"):
                break
            time.sleep(0.01)
        assert st["state"] == "done", st
        s = c.get(f"/api/sessions/{info['session']}").json()
        assert widths == [0.25, None]  # quick narrow pass, then the default (widest) width
        assert s["backend"] == "slimseg" and s["features_width"] == "1"  # full width replaced it
        assert s["width"] == 32
    from sempix.web.session import quick_width

    assert quick_width("slimseg") == 0.25 and quick_width("ade20k") is None
