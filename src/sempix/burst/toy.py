r"""Closed-form toy models of the burst perception-distortion tradeoff, and their Monte Carlo check.

Model (derived here; see docs/burst.md for the derivation and where it departs from the thesis)
-------------------------------------------------------------------------------------------
Work in the frequency domain of a stationary Gaussian signal: at frequency :math:`\omega` the signal
coefficient is :math:`X \sim \mathcal{CN}(0, S(\omega))`. Frame :math:`i` is
:math:`Y_i = \varphi_i X + E_i` with noise :math:`E_i \sim \mathcal{CN}(0, \sigma^2)` (white) and
the
phase of the camera shake :math:`\varphi_i = e^{-j\omega\cdot v_i}`; the reference is aligned
(:math:`v_0 = 0`) and :math:`v_i \sim \mathcal{N}(0, \sigma_s^2 I_2)` otherwise, so that
:math:`c(\omega) = E\varphi_i = e^{-\sigma_s^2|\omega|^2/2}`.
The estimator is the linear burst average :math:`\hat X = a\,\frac1n\sum_i Y_i` (one gain for every
frequency: :math:`\hat x = \frac1n\sum_i a y_i`). With :math:`g = \frac1n\sum_i\varphi_i`:

* :math:`m = E g = (1 + (n-1)c)/n`,
  :math:`E|g|^2 = (n + 2(n-1)c + (n-1)(n-2)c^2)/n^2`;
* :math:`\mathrm{Cov}(\hat X, X) = a\,m\,S`, :math:`\mathrm{Var}\,\hat X = a^2 V` with
  :math:`V = E|g|^2 S + \sigma^2/n`;
* distortion (MSE per coefficient, averaged over frequencies):
  :math:`D(a) = \bar S - 2a\bar M + a^2\bar V` (:math:`\bar M = \overline{mS}`);
* perception: KL divergence between the Gaussian processes with the power spectra of
  :math:`\hat x` and :math:`x`, averaged over frequencies:
  :math:`P(a) = \overline{a^2V/S - 1 - \ln(a^2V/S)}`. (Without shake :math:`\hat X` is exactly
  Gaussian
  and this is the exact KL; with random shake :math:`\hat X` is a Gaussian scale mixture and this is
  the KL of its second-order (Gaussian) statistics.)

The P-D function is traced by :math:`a` between the MMSE gain :math:`a^* = \bar M/\bar V` and the
perception-optimal gain :math:`a_P = (\overline{V/S})^{-1/2}`: inverting the quadratic
:math:`D(a)`, :math:`a(D) = a^* \pm \sqrt{(D - D_{min})/\bar V}` (sign towards :math:`a_P`), with
:math:`D_{min} = \bar S - \bar M^2/\bar V`, and :math:`P(D) = P(a(D))` for
:math:`D_{min} \le D \le D(a_P)`, :math:`P(D) = P(a_P)` beyond. For one frequency and no shake this
is
:math:`P(D) = \rho^2 - 1 - 2\ln\rho` with :math:`\rho = \kappa + \sqrt{\kappa^2 - 1 + D/S}` and the
correlation :math:`\kappa = (1 + \sigma^2/(nS))^{-1/2}`: the curve improves with every extra frame.

Equal weights are no loss without shake (for a fixed mean weight they minimise both the variance
and the MSE). With free weights :math:`a_i` more frames can never hurt (the estimator can ignore
them); the optimal burst length of the thesis is a property of merging by averaging, which is what
this model (and a burst pipeline without perfect alignment) does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sempix.errors import InputError


@dataclass(frozen=True)
class ToySpectrum:
    """Frequencies (K, 2) (radians/pixel), weights (K,) summing to 1, and power spectrum S (K,)."""

    omega: np.ndarray
    weight: np.ndarray
    power: np.ndarray


def spectrum(
    kind: str = "power", k: int = 16, *, exponent: float = 2.0, omega0: float = 0.1
) -> ToySpectrum:
    """A radially symmetric signal spectrum sampled at ``k`` radial frequencies in (0, pi].

    ``kind="white"``: S = 1. ``kind="power"``: S proportional to ``(|w|^2 + w0^2)^(-exponent/2)``
    (natural images), normalised to unit mean power. Weights follow the 2-D ring area (|w| dw).
    """
    r = (np.arange(k) + 0.5) / k * np.pi
    w = r / r.sum()
    if kind == "white":
        s = np.ones(k)
    elif kind == "power":
        s = (r**2 + omega0**2) ** (-exponent / 2)
        s = s / np.sum(w * s)
    else:
        raise InputError(f"unknown toy spectrum {kind!r}; use white or power")
    omega = np.stack([r, np.zeros(k)], axis=1)
    return ToySpectrum(omega, w, s)


def moments(n: int, noise: float, shake: float, spec: ToySpectrum) -> dict[str, np.ndarray]:
    """Per-frequency moments: m = E g, g2 = E|g|^2, V = Var(X_hat)/a^2 for burst length ``n``.

    ``noise`` is the per-frame noise variance sigma^2 relative to the mean signal power.
    """
    if n < 1:
        raise InputError("burst length must be >= 1")
    w2 = np.sum(spec.omega**2, axis=1)
    c = np.exp(-0.5 * shake**2 * w2)
    m = (1 + (n - 1) * c) / n
    g2 = (n + 2 * (n - 1) * c + (n - 1) * (n - 2) * c**2) / n**2
    V = g2 * spec.power + noise / n
    return {"c": c, "m": m, "g2": g2, "V": V}


@dataclass(frozen=True)
class ToyCurve:
    """The toy P-D function of one setting (see the module docstring)."""

    S: float
    M: float
    Vb: float
    Q: float
    L: float

    @property
    def a_mmse(self) -> float:
        return self.M / self.Vb

    @property
    def a_perc(self) -> float:
        return 1.0 / np.sqrt(self.Q)

    def D(self, a):
        a = np.asarray(a, dtype=np.float64)
        return self.S - 2 * a * self.M + a**2 * self.Vb

    def P(self, a):
        a = np.asarray(a, dtype=np.float64)
        return a**2 * self.Q - 1 - 2 * np.log(a) - self.L

    @property
    def d_min(self) -> float:
        return self.S - self.M**2 / self.Vb

    @property
    def d_max(self) -> float:
        return float(self.D(self.a_perc))

    def P_of_D(self, D):
        """Closed-form P(D): +inf below D_min, P(a_P) above D(a_P)."""
        D = np.asarray(D, dtype=np.float64)
        sign = 1.0 if self.a_perc >= self.a_mmse else -1.0
        a = self.a_mmse + sign * np.sqrt(np.clip(D - self.d_min, 0, None) / self.Vb)
        a = np.where(sign * (a - self.a_perc) > 0, self.a_perc, a)
        return np.where(D < self.d_min, np.inf, self.P(a))

    def points(self, k: int = 64) -> np.ndarray:
        """(k, 2) points (D, P) from the MMSE gain to the perception-optimal gain."""
        a = np.linspace(self.a_mmse, self.a_perc, k)
        return np.stack([self.D(a), self.P(a)], axis=1)


def toy_curve(
    n: int, noise: float, shake: float = 0.0, spec: ToySpectrum | None = None
) -> ToyCurve:
    """Closed-form P-D function for burst length ``n``, noise variance ``noise``, shake ``shake``
    px."""
    spec = spec or spectrum("white", 1)
    mo = moments(n, noise, shake, spec)
    w = spec.weight
    return ToyCurve(
        S=float(np.sum(w * spec.power)),
        M=float(np.sum(w * mo["m"] * spec.power)),
        Vb=float(np.sum(w * mo["V"])),
        Q=float(np.sum(w * mo["V"] / spec.power)),
        L=float(np.sum(w * np.log(mo["V"] / spec.power))),
    )


def monte_carlo(
    n: int,
    noise: float,
    shake: float = 0.0,
    spec: ToySpectrum | None = None,
    *,
    samples: int = 100_000,
    seed: int = 0,
    chunk: int = 10_000,
    motion: str = "random",
) -> ToyCurve:
    """The same quantities estimated from simulated signals, shakes and noise.

    Simulates ``samples`` bursts: X ~ CN(0, S), shifts ~ N(0, shake^2 I) (frame 0 at 0; or a random
    walk with ``motion="correlated"``), noise ~ CN(0, noise); estimates E Re(G X*), E|G|^2 with
    G = mean(Y_i) per frequency and plugs them into D(a) and P(a). Returns a :class:`ToyCurve`.
    """
    spec = spec or spectrum("white", 1)
    rng = np.random.default_rng(seed)
    K = spec.power.size
    s_xx = np.zeros(K)
    s_gx = np.zeros(K)
    s_gg = np.zeros(K)
    done = 0
    while done < samples:
        b = min(chunk, samples - done)
        X = np.sqrt(spec.power / 2) * (
            rng.standard_normal((b, K)) + 1j * rng.standard_normal((b, K))
        )
        v = rng.standard_normal((b, n, 2)) * shake
        v[:, 0] = 0.0
        if motion == "correlated":
            v = np.cumsum(v, axis=1)
        phase = np.exp(-1j * np.einsum("bnd,kd->bnk", v, spec.omega))  # (b, n, K)
        E = np.sqrt(noise / 2) * (
            rng.standard_normal((b, n, K)) + 1j * rng.standard_normal((b, n, K))
        )
        G = np.mean(phase * X[:, None, :] + E, axis=1)
        s_xx += np.sum(np.abs(X) ** 2, axis=0)
        s_gx += np.sum(np.real(G * np.conj(X)), axis=0)
        s_gg += np.sum(np.abs(G) ** 2, axis=0)
        done += b
    s_xx /= samples
    s_gx /= samples
    s_gg /= samples
    w = spec.weight
    # D(a) = mean |X - a G|^2 uses the sample signal power (the same samples as the cross terms);
    # P(a) compares with the true spectrum S, the known distribution of the signal.
    return ToyCurve(
        S=float(np.sum(w * s_xx)),
        M=float(np.sum(w * s_gx)),
        Vb=float(np.sum(w * s_gg)),
        Q=float(np.sum(w * s_gg / spec.power)),
        L=float(np.sum(w * np.log(s_gg / spec.power))),
    )


def compare(closed: ToyCurve, mc: ToyCurve, k: int = 33, p_floor: float = 0.01) -> dict[str, float]:
    """Differences between the closed form and a Monte Carlo estimate along the closed-form curve.

    Returns
    -------
    dict with ``rel_D`` (max relative difference of D(a) over the curve's gains), ``rel_V`` and
    ``rel_Q`` (relative differences of the second-order statistics behind P: mean Var(x_hat)/a^2
    and mean Var(x_hat)/(a^2 S)), ``rel_P`` (max relative difference of P(a) where P >= ``p_floor``
    nats) and ``abs_P_small`` (max absolute difference, nats, where P < ``p_floor``: a KL of a few
    thousandths of a nat is a small difference of O(1) terms, so its relative Monte Carlo error is
    large however good the formula), ``rel_Dmin``.
    """
    a = np.linspace(closed.a_mmse, closed.a_perc, k)
    d1, d2 = closed.D(a), mc.D(a)
    p1, p2 = closed.P(a), mc.P(a)
    big = np.abs(p1) >= p_floor
    return {
        "rel_D": float(np.max(np.abs(d1 - d2) / np.abs(d1))),
        "rel_V": float(abs(closed.Vb - mc.Vb) / closed.Vb),
        "rel_Q": float(abs(closed.Q - mc.Q) / closed.Q),
        "rel_P": float(np.max(np.abs(p1 - p2)[big] / np.abs(p1[big])))
        if big.any()
        else float("nan"),
        "abs_P_small": float(np.max(np.abs(p1 - p2)[~big])) if (~big).any() else 0.0,
        "rel_Dmin": float(abs(closed.d_min - mc.d_min) / closed.d_min),
    }


def aur_vs_n(
    ns, noise: float, shake: float, spec: ToySpectrum | None = None, k: int = 64, bounds=None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """AUR of the toy P-D curves for each burst length (common bounds unless given)."""
    from sempix.burst.pd import aur, common_bounds

    curves = [toy_curve(int(n), noise, shake, spec).points(k) for n in ns]
    b = bounds or common_bounds(curves)
    return np.asarray([aur(c, b) for c in curves]), curves


def best_burst_length(
    noise: float,
    shake: float,
    spec: ToySpectrum | None = None,
    n_max: int = 50,
    criterion: str = "dmin",
) -> tuple[int, np.ndarray]:
    """Burst length minimising D_min (``criterion="dmin"``) or the AUR over 1..n_max."""
    ns = np.arange(1, n_max + 1)
    if criterion == "dmin":
        vals = np.asarray([toy_curve(int(n), noise, shake, spec).d_min for n in ns])
    elif criterion == "aur":
        vals, _ = aur_vs_n(ns, noise, shake, spec)
    else:
        raise InputError(f"unknown criterion {criterion!r}; use dmin or aur")
    return int(ns[int(np.argmin(vals))]), vals
