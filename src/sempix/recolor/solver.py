"""Group-palette solving for multi-image colour consistency (after Nguyen et al. 2017).

Every image ``i`` has a source palette ``c_ij`` (Lab) with pixel shares ``w_ij`` (summing to 1 per
image, so every image counts equally). We look for ``K`` group colours ``g_k`` and an association
``a(i, j)`` in ``{0..K-1} U {none}`` minimising

    E = sum_ij w_ij * [ |c_ij - g_a(ij)|^2 + rho^2 * r_ij ]     (associated colours)
      + sum_ij w_ij * tau^2                                      (unassociated colours)

* ``r_ij`` is the *palette-reduction* term: the rank of colour ``j`` among the colours of the same
  image associated with the same group colour (0 for the first, 1 for the second, ...), so that
  several
  colours of one image collapsing onto one group colour cost ``rho^2`` (times their weight) for each
  extra colour. Because this marginal cost grows with the count, the per-image assignment is an
  exact
  linear assignment problem over "slots" (group colour k, rank m), solved with the Hungarian method
  (:func:`scipy.optimize.linear_sum_assignment`).
* ``tau`` is the *unassociated-colour* term: a colour farther than about ``tau`` (Delta-E) from
  every
  group colour is left unassociated (it is not recoloured) instead of dragging a group colour.
* Optional constraints (``forbid``) exclude pairs, e.g. colour-naming: a colour is never associated
  with a group colour whose name-probability vector differs by more than ``d_name``.

The solver alternates (1) the exact per-image assignment with the group colours fixed and (2) the
weighted mean of the associated source colours for every group colour (a weighted k-means step;
empty group colours are re-seeded at the colour with the highest cost), until the associations stop
changing (or ``max_iter``). It starts from weighted k-means++ seeds and keeps the best of ``n_init``
runs. The default number of group colours is the mean number of source colours per image (rounded).
With a fixed external palette only step (1) runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from sempix.errors import InputError

DEFAULT_RHO = 20.0
DEFAULT_TAU = 40.0
_FORBIDDEN = 1e15

ForbidFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class GroupSolution:
    """Result of :func:`solve_group_palette`.

    Attributes
    ----------
    lab : (K, 3) float32 group colours (Lab).
    assignments : list of (n_i,) int arrays; group colour index per source colour, -1 =
        unassociated.
    cost : total energy E of the solution.
    iterations : number of assignment/update rounds of the kept run.
    converged : True when the associations stopped changing before ``max_iter``.
    forbidden_best : list of (n_i,) bool; True where the nearest group colour was excluded by
        ``forbid``
        (the association that the constraint broke).
    """

    lab: np.ndarray
    assignments: list[np.ndarray]
    cost: float
    iterations: int
    converged: bool
    forbidden_best: list[np.ndarray]

    @property
    def k(self) -> int:
        return int(self.lab.shape[0])


def default_group_size(palettes: Sequence[np.ndarray]) -> int:
    """Mean number of source colours per image, rounded (at least 1)."""
    sizes = [len(p) for p in palettes if len(p)]
    return max(1, round(float(np.mean(sizes)))) if sizes else 1


def assign_image(
    src: np.ndarray,
    w: np.ndarray,
    group: np.ndarray,
    *,
    rho: float = DEFAULT_RHO,
    tau: float = DEFAULT_TAU,
    forbidden: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Exact association of one image's colours to fixed group colours.

    Parameters
    ----------
    src : (n, 3) source colours (Lab).
    w : (n,) weights.
    group : (K, 3) group colours (Lab).
    rho, tau : palette-reduction and unassociated-colour scales (Delta-E units).
    forbidden : (n, K) bool or None; pairs that may not be associated.

    Returns
    -------
    assignment : (n,) int, group index or -1.
    cost : energy of this image's part.
    """
    n, K = len(src), len(group)
    if n == 0:
        return np.zeros(0, np.int64), 0.0
    w = np.asarray(w, np.float64)
    d2 = ((np.asarray(src, np.float64)[:, None, :] - np.asarray(group, np.float64)[None]) ** 2).sum(
        -1
    )
    ranks = np.arange(n, dtype=np.float64)
    slot = w[:, None, None] * (d2[:, :, None] + rho * rho * ranks[None, None, :])  # (n, K, n)
    if forbidden is not None:
        slot[np.asarray(forbidden, bool)] = _FORBIDDEN
    cost = np.concatenate(
        [slot.reshape(n, K * n), np.repeat((w * tau * tau)[:, None], n, axis=1)], 1
    )
    rows, cols = linear_sum_assignment(cost)
    a = np.full(n, -1, np.int64)
    for r, c in zip(rows, cols):
        if c < K * n:
            a[r] = c // n
    return a, float(cost[rows, cols].sum())


def _kmeanspp(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [x[rng.choice(len(x), p=w / w.sum())]]
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        p = w * d
        if p.sum() <= 0:
            centres.append(x[rng.integers(len(x))])
        else:
            centres.append(x[rng.choice(len(x), p=p / p.sum())])
    return np.array(centres, np.float64)


def solve_group_palette(
    palettes: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    k: int | None = None,
    *,
    rho: float = DEFAULT_RHO,
    tau: float = DEFAULT_TAU,
    forbid: ForbidFn | None = None,
    fixed: np.ndarray | None = None,
    max_iter: int = 100,
    n_init: int = 4,
    seed: int = 0,
) -> GroupSolution:
    """Solve a group palette for a collection of source palettes.

    Parameters
    ----------
    palettes : sequence of (n_i, 3) arrays, source colours (Lab) of every image (n_i may be 0).
    weights : sequence of (n_i,) arrays, pixel shares (normalised to sum 1 per image here).
    k : number of group colours (default :func:`default_group_size`). Ignored with ``fixed``.
    rho : palette-reduction scale (Delta-E); 0 disables the term.
    tau : unassociated-colour threshold (Delta-E); ``inf`` forces every colour to be associated.
    forbid : callable ``(src_lab (n,3), group_lab (K,3)) -> (n, K) bool`` of excluded pairs,
        evaluated
        at every iteration (e.g. colour-naming association).
    fixed : (K, 3) Lab group palette to use as is (external palette), or None to solve.
    max_iter : maximum number of assignment/update rounds.
    n_init : random restarts (best energy kept).
    seed : random seed.

    Returns
    -------
    GroupSolution
    """
    pals = [np.asarray(p, np.float64).reshape(-1, 3) for p in palettes]
    ws = []
    for p, w in zip(pals, weights, strict=True):
        w = np.asarray(w, np.float64).reshape(-1)
        if len(w) != len(p):
            raise InputError("each palette needs one weight per colour")
        ws.append(w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / max(len(w), 1)))
    allc = np.concatenate(pals) if pals else np.zeros((0, 3))
    allw = np.concatenate(ws) if ws else np.zeros(0)
    if len(allc) == 0:
        lab = np.zeros((0, 3), np.float32) if fixed is None else np.asarray(fixed, np.float32)
        return GroupSolution(
            lab,
            [np.zeros(0, np.int64) for _ in pals],
            0.0,
            0,
            True,
            [np.zeros(0, bool) for _ in pals],
        )

    def assign_all(group: np.ndarray) -> tuple[list[np.ndarray], float, list[np.ndarray]]:
        out, total, fb = [], 0.0, []
        for p, w in zip(pals, ws):
            forb = None if forbid is None or len(p) == 0 else np.asarray(forbid(p, group), bool)
            a, c = assign_image(p, w, group, rho=rho, tau=tau, forbidden=forb)
            out.append(a)
            total += c
            if forb is not None and len(p):
                nearest = np.argmin(((p[:, None] - group[None]) ** 2).sum(-1), axis=1)
                fb.append(forb[np.arange(len(p)), nearest])
            else:
                fb.append(np.zeros(len(p), bool))
        return out, total, fb

    if fixed is not None:
        group = np.asarray(fixed, np.float64).reshape(-1, 3)
        if len(group) == 0:
            raise InputError("the external palette has no colours")
        a, cost, fb = assign_all(group)
        return GroupSolution(group.astype(np.float32), a, cost, 1, True, fb)

    k = default_group_size(pals) if k is None else int(k)
    if k < 1:
        raise InputError(f"group size must be at least 1, not {k}")
    k = min(k, len(allc))
    rng = np.random.default_rng(seed)
    best: GroupSolution | None = None
    for _ in range(max(1, n_init)):
        group = _kmeanspp(allc, allw, k, rng)
        prev: list[np.ndarray] | None = None
        converged = False
        it = 0
        for it in range(1, max_iter + 1):
            a, cost, fb = assign_all(group)
            if prev is not None and all(np.array_equal(x, y) for x, y in zip(a, prev)):
                converged = True
                break
            prev = a
            flat = np.concatenate(a)
            new = group.copy()
            empty = []
            for g in range(k):
                m = flat == g
                if m.any():
                    new[g] = np.average(allc[m], axis=0, weights=allw[m])
                else:
                    empty.append(g)
            if empty:  # re-seed empty group colours at the worst-served source colours
                d2 = ((allc[:, None] - new[None]) ** 2).sum(-1).min(1) * allw
                for g, idx in zip(empty, np.argsort(-d2)):
                    new[g] = allc[idx]
            group = new
        if best is None or cost < best.cost - 1e-9:
            best = GroupSolution(group.astype(np.float32), a, float(cost), it, converged, fb)
    assert best is not None
    return best


def solution_energy(
    palettes: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    group: np.ndarray,
    assignments: Sequence[np.ndarray],
    *,
    rho: float = DEFAULT_RHO,
    tau: float = DEFAULT_TAU,
) -> float:
    """Energy E (see module docstring) of given associations, computed directly (reference)."""
    total = 0.0
    for p, w, a in zip(palettes, weights, assignments):
        w = np.asarray(w, np.float64)
        w = w / w.sum()
        seen: dict[int, list[float]] = {}
        for j in range(len(p)):
            if a[j] < 0:
                total += w[j] * tau * tau
            else:
                total += w[j] * float(((np.asarray(p[j]) - group[a[j]]) ** 2).sum())
                seen.setdefault(int(a[j]), []).append(w[j])
        for ws_ in seen.values():  # the optimiser gives rank 0 to the heaviest colour
            for rank, wj in enumerate(sorted(ws_, reverse=True)):
                total += wj * rho * rho * rank
    return float(total)
