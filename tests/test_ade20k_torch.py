"""The ade20k backend's torch runtime: agreement with LiteRT, runtime choice, CLI options."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from sempix.errors import InputError
from sempix.features import runtime as rt


def test_auto_runtime_does_not_import_torch_without_a_gpu_driver():
    """Resolving ``auto`` (every ade20k cache hit does) must not import torch (1-2 s) on a Linux
    machine without NVIDIA / ROCm driver nodes."""
    import os
    import subprocess
    import sys

    if not sys.platform.startswith("linux") or any(os.path.exists(p) for p in rt._GPU_NODES):
        pytest.skip("a GPU driver is present (or not Linux): torch decides")
    code = (
        "import sys; from sempix.features import runtime as rt; "
        "print(rt.resolve_runtime(), rt.cuda_available(), 'torch' in sys.modules)"
    )
    env = dict(os.environ)
    env.pop(rt.ENV_RUNTIME, None)
    env.pop(rt.ENV_DEVICE, None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert out == "('litert', 'cpu') False False", out


def test_resolve_runtime_rules(monkeypatch):
    monkeypatch.delenv(rt.ENV_RUNTIME, raising=False)
    monkeypatch.delenv(rt.ENV_DEVICE, raising=False)
    monkeypatch.setattr(rt, "cuda_available", lambda: False)
    assert rt.resolve_runtime() == ("litert", "cpu")  # auto on a CPU: LiteRT (faster here)
    assert rt.resolve_runtime("torch") == ("torch", "cpu")
    with pytest.raises(InputError, match="no CUDA device"):
        rt.resolve_runtime("torch", "cuda")
    with pytest.raises(InputError, match="CPU only"):
        rt.resolve_runtime("litert", "cuda")
    with pytest.raises(InputError, match="unknown runtime"):
        rt.resolve_runtime("onnx")
    monkeypatch.setattr(rt, "cuda_available", lambda: True)
    assert rt.resolve_runtime() == ("torch", "cuda")  # auto with CUDA: torch on the GPU
    assert rt.resolve_runtime("auto", "cpu") == ("litert", "cpu")
    assert rt.resolve_runtime("torch", "cpu") == ("torch", "cpu")
    with rt.use_runtime("litert"):
        assert rt.resolve_runtime() == ("litert", "cpu")
        with rt.use_runtime("torch", "cpu"):
            assert rt.resolve_runtime() == ("torch", "cpu")
        assert rt.resolve_runtime() == ("litert", "cpu")
    assert rt.resolve_runtime() == ("torch", "cuda")
    monkeypatch.setenv(rt.ENV_RUNTIME, "litert")
    assert rt.resolve_runtime() == ("litert", "cpu")


def _agreement(a_logits, b_logits, a_feats, b_feats):
    agree = float((a_logits.argmax(-1) == b_logits.argmax(-1)).mean())
    fa = a_feats.reshape(-1, a_feats.shape[-1])
    fb = b_feats.reshape(-1, b_feats.shape[-1])
    cos = (fa * fb).sum(1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1) + 1e-12)
    return agree, float(cos.mean())


def test_torch_agrees_with_litert_on_ade20k_samples(ade20k_available, data_dir):
    from sempix.features import ade20k
    from sempix.image import load_rgb

    files = sorted((data_dir / "ade20k").glob("ADE_*.jpg"))[:2]
    if not files:
        pytest.skip("no ADE20K samples in SEMPIX_DATA_DIR/ade20k")
    for f in files:
        img = load_rgb(f)
        a = ade20k.compute_lowres(img, ade20k_available, runtime="litert")
        b = ade20k.compute_lowres(img, ade20k_available, runtime="torch", device="cpu")
        assert a.features.shape == b.features.shape and a.logits.shape == b.logits.shape
        np.testing.assert_array_equal(a.ys, b.ys)
        agree, cos = _agreement(a.logits, b.logits, a.features, b.features)
        assert agree >= 0.99, (f.name, agree)
        assert cos >= 0.99, (f.name, cos)


def test_compute_features_torch_runtime(ade20k_available, monkeypatch):
    from sempix.features import compute_features

    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(ade20k_available.parent))
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(0.5, 0.2, (60, 90, 3)), 0, 1).astype(np.float32)
    img[:30] = [0.5, 0.7, 0.95]  # a sky-ish band
    ft = compute_features(img, runtime="torch", device="cpu", strict=True)
    fl = compute_features(img, runtime="litert", strict=True)
    assert ft.meta["runtime"] == "torch-cpu" and fl.meta["runtime"] == "litert"
    assert ft.features.shape == fl.features.shape == (60, 90, 64)
    assert ft.labels.shape == fl.labels.shape and ft.class_names == fl.class_names
    assert ft.probs_lowres.shape == fl.probs_lowres.shape
    assert (ft.labels == fl.labels).mean() > 0.9
    # the runtime is part of the cache key: each has its own entry
    again = compute_features(img, runtime="torch", device="cpu", strict=True)
    assert again.meta["cache"] == "hit" and again.meta["runtime"] == "torch-cpu"
    # the cache keeps network-resolution float16 features (sempix.features.files)
    np.testing.assert_allclose(again.features, ft.features, atol=0.02)
    other = compute_features(img, runtime="litert", strict=True)
    assert other.meta["cache"] == "hit"
    assert not np.array_equal(other.features, ft.features)


def test_cli_runtime_and_device_options(ade20k_available, tmp_path, monkeypatch):
    from sempix.cli import cli
    from sempix.image import write_image

    monkeypatch.setattr(rt, "cuda_available", lambda: False)
    src = tmp_path / "in.png"
    write_image(src, np.full((24, 32, 3), 0.5, np.float32))
    r = CliRunner().invoke(
        cli,
        [
            "features",
            str(src),
            "-o",
            str(tmp_path / "f.npz"),
            "--runtime",
            "torch",
            "--device",
            "cpu",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    meta = np.load(tmp_path / "f.npz")["meta"]
    assert '"runtime": "torch-cpu"' in str(meta)
    r = CliRunner().invoke(
        cli, ["features", str(src), "-o", str(tmp_path / "g.npz"), "--device", "cuda"]
    )
    assert r.exit_code == 2 and "no CUDA device" in r.output
    # tools taking --features take --runtime/--device too
    for cmd in ("carve", "mask", "softseg", "retarget", "recolor", "serve"):
        r = CliRunner().invoke(cli, [cmd, "--help"])
        assert "--runtime" in r.output and "--device" in r.output, cmd
        assert "segformer-b2" in r.output, cmd
