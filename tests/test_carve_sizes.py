"""Carving terminates and keeps its contracts for every size (issue 12, item 1).

The buffer set-up of a carving pass once padded rows in a loop that never ended when the carved
dimension's row count was a multiple of 64 (768x512, 1024x768, 1920x1080 ...). These property tests
run the buffer logic and whole carves over many sizes, the powers of two on purpose, each under a
timeout so that a hang fails in seconds instead of stalling the suite.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sempix.carve import carve
from sempix.carve.core import _buffers, _optimal_order

# sizes that hit the old hang (multiples of 64 / 1024) plus arbitrary ones
_ALIGNED = st.sampled_from([1, 2, 16, 64, 128, 192, 256, 512, 640, 768, 1024, 1088, 2048])
_SIZE = st.one_of(_ALIGNED, st.integers(1, 2100))


@pytest.mark.timeout(30)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=_SIZE, W=_SIZE)
def test_buffers_any_size(N, W):
    if N * W > 2_500_000:  # keep the allocation small; the logic is per size, not per byte
        W = max(1, 2_500_000 // N)
    idx, C = _buffers(N, W)
    assert idx.shape[0] == N and idx.shape[1] >= W
    assert C.shape[0] == 4 and C.shape[1] == N and C.shape[2] == idx.shape[1]
    assert C.dtype == np.float32 and idx.dtype == np.int32
    assert C.flags.c_contiguous and idx.flags.c_contiguous
    np.testing.assert_array_equal(idx[-1, :W], np.arange(W))
    assert not C.any()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("H,W", [(512, 768), (768, 1024), (1080, 1920), (1024, 1024)])
def test_buffers_sizes_of_the_issue(H, W):
    # width carving: N = H rows; height carving: N = W rows (transposed pass)
    for N, M in ((H, W), (W, H)):
        idx, C = _buffers(N, M)
        assert C.shape == (4, N, idx.shape[1])


@pytest.mark.timeout(60)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    H=st.sampled_from([1, 2, 3, 16, 64, 65, 128, 192]),
    W=st.sampled_from([2, 3, 16, 64, 96, 128]),
    fw=st.floats(0.3, 1.6),
    fh=st.floats(0.3, 1.6),
    energy=st.sampled_from(["forward", "backward"]),
    order=st.sampled_from(["width-first", "height-first", "optimal"]),
    with_feat=st.booleans(),
)
def test_carve_any_size_terminates_with_exact_size(H, W, fw, fh, energy, order, with_feat):
    rng = np.random.default_rng(H * 1000 + W)
    img = rng.random((H, W, 3), dtype=np.float32)
    feat = rng.random((H, W, 4), dtype=np.float32) if with_feat else None
    w = max(1, min(int(W * 3), round(W * fw)))
    h = max(1, min(int(H * 3), round(H * fh)))
    res = carve(img, width=w, height=h, features=feat, energy=energy, order=order)
    assert res.image.shape == (h, w, 3)
    assert np.isfinite(res.image).all()


@pytest.mark.timeout(60)
def test_carve_192x128_of_the_issue():
    """192x128 (rows a multiple of 64) hung at 100 % CPU before the fix; both directions."""
    rng = np.random.default_rng(0)
    img = rng.random((128, 192, 3), dtype=np.float32)
    assert carve(img, width=154).image.shape == (128, 154, 3)
    assert carve(img, height=102).image.shape == (102, 192, 3)
    assert carve(img, width=230, height=150).image.shape == (150, 230, 3)


@pytest.mark.timeout(60)
@settings(max_examples=20, deadline=None)
@given(H=st.integers(2, 80), W=st.integers(2, 80), dr=st.integers(0, 40), dc=st.integers(0, 40))
def test_optimal_order_blocks_cover_the_seams(H, W, dr, dc):
    dr, dc = min(dr, H - 1), min(dc, W - 1)
    rng = np.random.default_rng(H * 97 + W)
    img = rng.random((H, W, 3), dtype=np.float32)
    blocks = _optimal_order(img, None, 1.0, 0.0, 1, dr, dc)
    assert len(blocks) <= 8
    assert sum(n for a, n in blocks if a == 0) == dr
    assert sum(n for a, n in blocks if a == 1) == dc
