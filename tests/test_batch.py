"""sempix.batch: planning, manifest, resume, failure isolation, atomic commits, group recolor.

Fast unit tests use dask's synchronous scheduler; the end-to-end tests run a real
``distributed.LocalCluster`` (2 worker processes, loopback, no dashboard), shared by the module.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sempix.batch import file_hash, iter_inputs, load_points_table, run
from sempix.batch.worker import STATE_DIR, run_task
from sempix.errors import InputError
from sempix.image import read_image, to_uint8, write_image


def _image(rng, h=40, w=56):
    """A smooth two-region picture with a bit of noise (palette/carve have structure to find)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a = rng.uniform(0.1, 0.9, 3)
    b = rng.uniform(0.1, 0.9, 3)
    m = (xx + 0.3 * yy > rng.uniform(0.3, 0.6))[..., None]
    img = np.where(m, a, b) + 0.03 * rng.standard_normal((h, w, 3))
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture
def library(tmp_path, rng):
    """in/a.png, in/b.jpg, in/sub/c.png, in/sub/deeper/d.png + a broken in/sub/bad.jpg."""
    root = tmp_path / "in"
    for rel in ("a.png", "b.jpg", "sub/c.png", "sub/deeper/d.png"):
        write_image(root / rel, _image(rng))
    (root / "sub" / "bad.jpg").write_bytes(b"this is not a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


def _manifest_rows(out: Path, tool: str) -> list[dict]:
    db = sqlite3.connect(out / "sempix-batch.sqlite")
    cur = db.execute(
        "SELECT rel, status, outputs, error, content_hash, attempts FROM items WHERE tool=?",
        (tool,),
    )
    rows = [dict(zip([c[0] for c in cur.description], r)) for r in cur.fetchall()]
    db.close()
    for r in rows:
        r["outputs"] = json.loads(r["outputs"] or "[]")
    return rows


def _check_outputs(out: Path, rows: list[dict]) -> int:
    """Every recorded output exists with its recorded size and checksum; no leftovers."""
    n = 0
    for r in rows:
        if r["status"] != "done":
            continue
        for o in r["outputs"]:
            p = out / o["path"]
            assert p.is_file(), p
            assert p.stat().st_size == o["size"]
            assert file_hash(p) == o["blake2b"], p
            n += 1
    leftovers = [
        p
        for p in out.rglob("*")
        if p.is_file() and (p.name.endswith((".part", ".tmp")) or "staging" in p.parts)
    ]
    assert not leftovers, leftovers
    commit = out / STATE_DIR / "commit"
    assert not commit.exists() or not any(commit.iterdir())
    return n


# ============================================================================ inputs
def test_iter_inputs_files_folders_globs(library, tmp_path):
    items = list(iter_inputs([library]))
    assert [i.rel for i in items] == [
        "a.png",
        "b.jpg",
        "sub/bad.jpg",
        "sub/c.png",
        "sub/deeper/d.png",
    ]
    one = list(iter_inputs([library / "sub" / "c.png"]))
    assert [(i.rel, i.rel_dir, i.stem) for i in one] == [("c.png", "", "c")]
    g = list(iter_inputs([str(library / "sub" / "**" / "*.png")]))
    assert sorted(i.rel for i in g) == ["c.png", "deeper/d.png"]
    out_inside = library / "out"
    write_image(out_inside / "x.png", np.zeros((4, 4, 3), np.float32))
    assert "out/x.png" not in [i.rel for i in iter_inputs([library], exclude=out_inside)]
    with pytest.raises(InputError, match="no such file"):
        list(iter_inputs([tmp_path / "missing"]))
    with pytest.raises(InputError, match="holds no images"):
        list(iter_inputs([str(tmp_path / "*.gif")]))


def test_points_table_csv_and_json(tmp_path):
    c = tmp_path / "p.csv"
    c.write_text("image,x,y\na.png,3,4\na.png,5,6\nsub/c.png,1,2\n")
    assert load_points_table(c) == {"a.png": [[3, 4], [5, 6]], "sub/c.png": [[1, 2]]}
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"a.png": [[3, 4]], "b.jpg": [7, 8]}))
    assert load_points_table(j) == {"a.png": [[3, 4]], "b.jpg": [[7, 8]]}
    bad = tmp_path / "bad.csv"
    bad.write_text("a.png,1\n")
    with pytest.raises(InputError, match="cannot read points"):
        load_points_table(bad)


# ============================================================================ synchronous scheduler
def test_sync_success_resume_and_bad_input(library, tmp_path, w2c_available):
    out = tmp_path / "out"
    s = run("palette", [library], out, {"k": 3}, scheduler="sync")
    assert (s.total, s.processed, s.failed, s.skipped, s.exit_code) == (5, 4, 1, 0, 2)
    assert s.failures[0][0] == "sub/bad.jpg" and "\n" not in s.failures[0][1]
    # outputs mirror the input tree
    for rel in ("a", "b", "sub/c", "sub/deeper/d"):
        assert (out / f"{rel}.palette.json").is_file() and (out / f"{rel}.swatch.png").is_file()
    rows = _manifest_rows(out, "palette")
    assert len(rows) == 5 and _check_outputs(out, rows) == 8
    assert {r["rel"]: r["status"] for r in rows}["sub/bad.jpg"] == "failed"
    # re-run: everything done is skipped, the bad one is reported, not re-run
    s2 = run("palette", [library], out, {"k": 3}, scheduler="sync")
    assert (s2.processed, s2.skipped, s2.failed, s2.failed_before) == (0, 4, 1, 1)
    # touched but identical: hashed again, skipped; changed content: processed again
    os.utime(library / "a.png")
    write_image(library / "b.jpg", _image(np.random.default_rng(7)))
    s3 = run("palette", [library], out, {"k": 3}, scheduler="sync")
    assert (s3.processed, s3.skipped) == (1, 3)
    # fixed bad file + --retry-failed
    write_image(library / "sub" / "bad.jpg", _image(np.random.default_rng(8)))
    s4 = run("palette", [library], out, {"k": 3}, scheduler="sync", retry_failed=True)
    assert (s4.processed, s4.failed, s4.exit_code) == (1, 0, 0)
    # other options -> a different options hash -> processed again
    s5 = run("palette", [library], out, {"k": 2}, scheduler="sync")
    assert s5.processed == 5
    rows = _manifest_rows(out, "palette")
    assert _check_outputs(out, rows) == 10
    assert {r["rel"]: r["attempts"] for r in rows}["a.png"] == 2


def test_same_output_name_is_an_error_and_the_same_file_twice_is_not(library, tmp_path):
    write_image(library / "a.jpg", _image(np.random.default_rng(3)))  # a.png and a.jpg -> a.npz
    s = run(
        "features",
        [library, library / "b.jpg"],
        tmp_path / "o",
        {"backend": "lowlevel"},
        scheduler="sync",
        dry_run=True,
    )
    assert s.total == 6 and s.failed == 1  # b.jpg named twice counts once; a.png vs a.jpg collide
    assert "would overwrite those of" in s.failures[0][1] and s.failures[0][0] == "a.png"


def test_dry_run_plans_without_writing(library, tmp_path, w2c_available):
    out = tmp_path / "out"
    s = run("harmonize", [library], out, scheduler="sync", dry_run=True)
    assert s.plan == {"run": 5} and len(s.planned) == 5
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".jpg")]


def test_options_and_tools_are_checked(library, tmp_path):
    with pytest.raises(InputError, match="unknown batch tool"):
        run("sharpen", [library], tmp_path / "o", scheduler="sync")
    with pytest.raises(InputError, match="unknown option"):
        run("carve", [library], tmp_path / "o", {"widht": "50%"}, scheduler="sync")
    with pytest.raises(InputError, match="--width"):
        run("carve", [library], tmp_path / "o", scheduler="sync")
    with pytest.raises(InputError, match="output folder is an input folder"):
        run("palette", [library], library, scheduler="sync")


def test_mask_points_per_image_and_missing_points(library, tmp_path):
    pts = tmp_path / "clicks.csv"
    pts.write_text("a.png,10,10\nsub/c.png,40,30\nsub/c.png,2,2\nb.jpg,500,500\n")
    out = tmp_path / "out"
    s = run(
        "mask",
        [library],
        out,
        {"points": str(pts), "features": "none", "tau": 0.2},
        scheduler="sync",
    )
    st = {r["rel"]: (r["status"], r["error"]) for r in _manifest_rows(out, "mask")}
    assert st["a.png"][0] == "done" and st["sub/c.png"][0] == "done"
    assert "outside" in st["b.jpg"][1]  # a click outside the image: that image's error
    assert "no points for this image" in st["sub/deeper/d.png"][1]
    assert s.failed == 3 and s.processed == 2
    m = read_image(out / "sub" / "c.mask.png").rgb[..., 0]
    assert m.shape == (40, 56) and m[30, 40] == 1.0
    assert json.loads((out / "sub" / "c.mask.json").read_text())["points"] == [[40, 30], [2, 2]]


def test_features_are_shared_between_tools_through_the_cache(library, tmp_path, _isolated_cache):
    """`batch features --dim 16` computes exactly the entries `batch carve` reads (one each)."""
    (library / "sub" / "bad.jpg").unlink()
    s = run(
        "features", [library], tmp_path / "f", {"backend": "lowlevel", "dim": 16}, scheduler="sync"
    )
    assert s.processed == 4
    root = _isolated_cache / "features"
    before = sorted(p.name for p in root.iterdir())
    assert len(before) == 4
    stamps = {p.name: (p / "meta.json").stat().st_mtime_ns for p in root.iterdir()}
    time.sleep(0.02)
    s = run(
        "carve",
        [library],
        tmp_path / "c",
        {"width": "80%", "features": "lowlevel"},
        scheduler="sync",
    )
    assert s.processed == 4
    assert (
        sorted(p.name for p in root.iterdir()) == before
    )  # no new entry: every carve was a cache hit
    assert all(
        (root / k / "meta.json").stat().st_mtime_ns > v for k, v in stamps.items()
    )  # hits touch


@pytest.mark.realmodel
def test_mask_class_click_lands_in_the_class(tmp_path, data_dir, ade20k_available):
    """--class sky: the automatic click is a pixel the ADE20K model labels sky; sky is selected."""
    from skimage.transform import resize

    from sempix.mask import mask_features

    src = data_dir / "ade20k" / "ADE_train_00016869.jpg"
    out = tmp_path / "out"
    s = run("mask", [src], out, {"cls": "sky"}, scheduler="sync")
    assert s.processed == 1, s.failures
    info = json.loads((out / "ADE_train_00016869.mask.json").read_text())
    ((x, y),) = info["points"]
    img = read_image(src).rgb
    fm = mask_features(img, "ade20k")  # the same request as the tool: a cache hit
    H, W = img.shape[:2]
    h, w = fm.labels.shape
    assert fm.class_names[fm.labels[int(y * h / H), int(x * w / W)]] == "sky"
    sky = fm.labels == fm.class_names.index("sky")
    m = resize(read_image(out / "ADE_train_00016869.mask.png").rgb[..., 0], (h, w), order=0) > 0.5
    assert info["selected"] > 0.05 and m[sky].mean() > 0.7


def test_commit_is_idempotent_and_never_rewrites(library, tmp_path, w2c_available):
    """A retry of a task whose outputs were committed finishes without recomputing or rewriting."""
    out = tmp_path / "out"
    task = {
        "tool": "palette",
        "module": "",
        "kind": "single",
        "idx": 1,
        "path": str(library / "a.png"),
        "rel": "x/a.png",
        "out": str(out),
        "options": {"k": 2, "swatch": False},
        "options_hash": "h1",
        "item_options": None,
        "error": None,
        "size": None,
        "mtime_ns": None,
        "prev": None,
    }
    r1 = run_task(task)
    assert (
        r1["status"] == "done" and Path(r1["commit"]).is_dir()
    )  # the client has not recorded it yet
    dst = out / "x" / "a.palette.json"
    ino, mt = dst.stat().st_ino, dst.stat().st_mtime_ns
    time.sleep(0.01)
    r2 = run_task(task)  # e.g. Dask re-running it after the worker died before reporting
    assert r2["status"] == "done" and r2["outputs"] == r1["outputs"]
    assert (dst.stat().st_ino, dst.stat().st_mtime_ns) == (ino, mt)
    assert not any((out / STATE_DIR / "staging").iterdir())


def test_cli_batch_exit_codes(library, tmp_path):
    from sempix.cli import cli

    args = ["batch", "features", str(library), "-o", str(tmp_path / "o"), "--backend", "lowlevel"]
    res = CliRunner().invoke(cli, [*args, "--scheduler", "sync"])
    assert res.exit_code == 2, res.output
    assert "failed: sub/bad.jpg" in res.output
    with np.load(tmp_path / "o" / "sub" / "deeper" / "d.npz") as z:
        assert z["features"].shape[:2] == (40, 56) and str(z["backend"]) == "lowlevel"
    (library / "sub" / "bad.jpg").unlink()
    res = CliRunner().invoke(cli, [*args, "--scheduler", "sync", "-q"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert res.exit_code == 0 and "skip" in res.output
    res = CliRunner().invoke(
        cli,
        [
            "batch",
            "features",
            str(library),
            "-o",
            str(tmp_path / "o"),
            "--reduce",
            "nope",
            "--scheduler",
            "sync",
        ],
    )
    assert res.exit_code == 2 and "--reduce" in res.output


def test_cli_batch_without_dask_says_what_to_install(library, tmp_path, monkeypatch, w2c_available):
    import sys

    from sempix.cli import cli

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    res = CliRunner().invoke(cli, ["batch", "palette", str(library), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "pip install 'sempix[dask]'" in res.output and "Traceback" not in res.output
    with pytest.raises(InputError, match="dask"):
        run("palette", [library], tmp_path / "o2")


def _recolor_reference(paths, **opts):
    from sempix.recolor import recolor_collection

    imgs = [read_image(p).rgb for p in paths]
    return [to_uint8(x) for x in recolor_collection(imgs, **opts).images]


RECOLOR_OPTS = {"features": "none", "saliency": "off", "names": "off"}


def test_sync_group_recolor_matches_the_collection_api(library, tmp_path):
    (library / "sub" / "bad.jpg").unlink()
    out = tmp_path / "out"
    s = run("recolor", [library], out, RECOLOR_OPTS, scheduler="sync")
    assert s.processed == 4 and s.exit_code == 0
    rels = ["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.png"]
    ref = _recolor_reference(
        [library / r for r in rels], features="none", saliency="off", names=None
    )
    for r, want in zip(rels, ref):
        got = read_image(out / Path(r).with_suffix(".png" if r.endswith(".png") else ".jpg")).rgb
        if r.endswith(".png"):
            assert np.array_equal(to_uint8(got), want), r
    doc = json.loads((out / "recolor-group.json").read_text())
    assert doc["images"] == 4 and doc["group_palette"]
    s2 = run("recolor", [library], out, RECOLOR_OPTS, scheduler="sync")
    assert (s2.processed, s2.skipped) == (0, 4)


# ============================================================================ real LocalCluster
@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit="1GB",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_cluster_success_resume_and_bad_inputs(library, tmp_path, cluster_client):
    out = tmp_path / "out"
    opts = {"width": "75%", "features": "none"}
    s = run("carve", [library], out, opts, client=cluster_client)
    assert (s.processed, s.failed, s.exit_code) == (4, 1, 2)
    assert s.workers == 2
    rows = _manifest_rows(out, "carve")
    assert _check_outputs(out, rows) == 4
    assert read_image(out / "sub" / "deeper" / "d.png").rgb.shape == (40, 42, 3)
    assert {r["rel"] for r in rows if r["status"] == "failed"} == {"sub/bad.jpg"}
    s2 = run("carve", [library], out, opts, client=cluster_client)
    assert (s2.processed, s2.skipped, s2.failed) == (0, 4, 1)


def test_cluster_worker_killed_mid_run(tmp_path, cluster_client, rng, w2c_available):
    root = tmp_path / "in"
    n = 16
    for i in range(n):
        write_image(root / f"d{i % 3}" / f"img{i:02d}.png", _image(rng, 64, 96))
    pids = cluster_client.run(os.getpid)
    killed = []

    def progress(ev):
        if ev.get("phase") != "start" and not killed and ev["done"] >= 1:
            busy = {a: ks for a, ks in cluster_client.processing().items() if ks}
            addr = min(busy) if busy else min(pids)
            os.kill(pids[addr], signal.SIGKILL)  # a worker dies with tasks in flight
            killed.append(len(busy.get(addr, ())))

    out = tmp_path / "out"
    s = run("harmonize", [root], out, {"k": 3}, client=cluster_client, progress=progress, window=8)
    assert killed and killed[0] >= 1  # the killed worker had tasks assigned
    assert (s.processed, s.failed, s.exit_code) == (n, 0, 0)
    rows = _manifest_rows(out, "harmonize")
    assert len(rows) == n and all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    paths = [o["path"] for r in rows for o in r["outputs"]]
    assert len(paths) == len(set(paths)) == n  # nothing duplicated
    assert _check_outputs(out, rows) == n
    assert sorted(p.name for p in out.rglob("*.png")) == sorted(f"img{i:02d}.png" for i in range(n))
    cluster_client.wait_for_workers(2, timeout=60)


def test_cluster_group_recolor(library, tmp_path, cluster_client):
    out = tmp_path / "out"
    s = run("recolor", [library], out, RECOLOR_OPTS, client=cluster_client)
    assert (s.processed, s.failed, s.exit_code) == (
        4,
        1,
        2,
    )  # the bad image is left out of the group
    rels = ["a.png", "sub/c.png", "sub/deeper/d.png"]
    ref = _recolor_reference(
        [library / r for r in ["a.png", "b.jpg", *rels[1:]]],
        features="none",
        saliency="off",
        names=None,
    )
    for r, want in zip(rels, [ref[0], ref[2], ref[3]]):
        assert np.array_equal(to_uint8(read_image(out / r).rgb), want), r
    assert _check_outputs(out, _manifest_rows(out, "recolor")) == 4


def test_cluster_by_scheduler_address(library, tmp_path, cluster_client, monkeypatch):
    """--scheduler tcp://...: the same job on an existing cluster (its own client, closed after)."""
    addr = cluster_client.scheduler.address
    assert addr.startswith("tcp://127.0.0.1:")
    s = run("features", [library], tmp_path / "o", {"backend": "lowlevel"}, scheduler=addr)
    assert (s.processed, s.failed, s.workers) == (4, 1, 2) and addr in s.scheduler
    monkeypatch.setattr("sempix.batch.runner.CONNECT_TIMEOUT", "1s")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run(
            "features",
            [library],
            tmp_path / "o2",
            {"backend": "lowlevel"},
            scheduler="tcp://127.0.0.1:9",
        )


def test_missing_colour_model_is_one_error_before_any_task(library, tmp_path, monkeypatch):
    """A model every image needs is resolved on the client first: one error, nothing written."""
    from sempix.errors import ModelUnavailableError

    monkeypatch.delenv("SEMPIX_MODEL_DIR", raising=False)
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    out = tmp_path / "out"
    for tool, opts in (("palette", {}), ("harmonize", {}), ("recolor", {"features": "lowlevel"})):
        with pytest.raises(ModelUnavailableError, match="w2c"):
            run(tool, [library], out, opts, scheduler="sync")
        assert not out.exists()
