"""Burst-length advice for a real burst: estimate noise and shake, then ask the toy model.

:func:`analyse_burst` measures

* the noise level of the reference frame (wavelet median estimator, Donoho & Johnstone);
* the inter-frame shake: every frame's global translation against the reference by phase
  correlation; ``shake`` is the RMS displacement per axis (the model's sigma_s), and the ratio of
  the
  RMS of successive differences to that RMS says whether the motion looks like a random walk
  (correlated, ratio well below sqrt(2)) or i.i.d. (ratio ~ sqrt(2));
* the radial power spectrum of the reference (noise power removed), which replaces the generic
  power-law spectrum of the toy model.

:func:`recommend` evaluates the closed-form toy model (:mod:`sempix.burst.toy`) for n = 1..n_max
with
those numbers and recommends the shortest burst length whose AUR (area of the unattainable region
of the whole P-D curve, common bounds over n = 1..n_max) is within 0.005 of the best; the burst
length with the lowest minimum distortion (MMSE of the best averaging estimator) is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sempix.burst.align import estimate_translation, gray
from sempix.burst.classical import estimate_noise
from sempix.burst.toy import ToySpectrum, aur_vs_n, toy_curve
from sempix.errors import InputError
from sempix.progress import ProgressFn, report


@dataclass
class BurstAnalysis:
    """Measured properties of a burst (pixel units of the frames)."""

    n_frames: int
    noise_sigma: float
    signal_var: float
    shifts: np.ndarray
    shake: float
    step_ratio: float
    spectrum: ToySpectrum

    @property
    def noise_rel(self) -> float:
        """Per-frame noise variance relative to the signal variance (the toy model's ``noise``)."""
        return float(self.noise_sigma**2 / max(self.signal_var, 1e-12))


@dataclass
class Advice:
    """Recommendation: best n by AUR (``best_n``) and by minimum distortion (``best_n_dmin``)."""

    analysis: BurstAnalysis
    ns: np.ndarray
    d_min: np.ndarray
    aur: np.ndarray
    best_n: int
    best_n_dmin: int
    notes: list[str] = field(default_factory=list)
    best_n_aligned: int | None = None
    residual: float | None = None


def radial_spectrum(img: np.ndarray, noise_var: float, k: int = 16) -> ToySpectrum:
    """Radial power spectrum of a luma image (k rings), noise removed, normalised to unit mean."""
    g = gray(img)
    g = g - g.mean()
    h, w = g.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    F = np.fft.fft2(g * win)
    P = np.abs(F) ** 2 / np.sum(win**2)
    fy = np.fft.fftfreq(h) * 2 * np.pi
    fx = np.fft.fftfreq(w) * 2 * np.pi
    R = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    edges = np.linspace(0, np.pi, k + 1)
    r = 0.5 * (edges[1:] + edges[:-1])
    s = np.empty(k)
    for i in range(k):
        m = (R >= edges[i]) & (R < edges[i + 1])
        s[i] = P[m].mean() if m.any() else np.nan
    s = np.where(np.isfinite(s), s, np.nanmin(s))
    s = np.maximum(s - noise_var, 1e-3 * s.max())
    wts = r / r.sum()
    s = s / np.sum(wts * s)
    return ToySpectrum(np.stack([r, np.zeros(k)], axis=1), wts, s)


def analyse_burst(frames: np.ndarray, progress: ProgressFn | None = None) -> BurstAnalysis:
    """Noise, shake and spectrum of a burst (n, h, w, 3) float in [0, 1]; frame 0 the reference."""
    fr = np.asarray(frames, dtype=np.float32)
    if fr.ndim != 4 or fr.shape[0] < 2:
        raise InputError("give at least two frames of the same size")
    n = fr.shape[0]
    sigma = estimate_noise(fr[0])
    shifts = np.zeros((n, 2))
    for i in range(1, n):
        shifts[i] = estimate_translation(fr[0], fr[i])
        report(progress, i / (n - 1), f"registered frame {i + 1}/{n}")
    shake = float(np.sqrt(np.mean(shifts[1:] ** 2)))
    steps = np.diff(shifts, axis=0)
    step_rms = float(np.sqrt(np.mean(steps**2))) if n > 2 else float("nan")
    ratio = step_rms / shake if shake > 0 else float("nan")
    g = gray(fr[0])
    sig_var = max(float(g.var()) - sigma**2, 1e-8)
    spec = radial_spectrum(fr[0], sigma**2)
    return BurstAnalysis(n, sigma, sig_var, shifts, shake, ratio, spec)


def recommend(
    analysis: BurstAnalysis,
    *,
    n_max: int = 50,
    shake: float | None = None,
    noise_rel: float | None = None,
    residual: float = 0.1,
) -> Advice:
    """Recommend a burst length from the toy model with the measured noise, shake and spectrum.

    ``best_n`` is for merging the frames as they are (the model's averaging estimator, shake as
    measured); ``best_n_aligned`` for merging after global alignment, modelled as a residual shake
    of
    ``residual`` px rms (phase correlation's accuracy in the tests is about 0.1-0.15 px).
    """
    s = analysis.shake if shake is None else float(shake)
    nr = analysis.noise_rel if noise_rel is None else float(noise_rel)
    ns = np.arange(1, int(n_max) + 1)
    dmin = np.asarray([toy_curve(int(n), nr, s, analysis.spectrum).d_min for n in ns])
    aurs, _ = aur_vs_n(ns, nr, s, analysis.spectrum)
    # AUR criterion (the thesis's single number); the shortest burst within 0.005 of the best AUR
    # (diminishing returns), and the minimum-distortion choice alongside
    near = ns[aurs <= aurs.min() + 0.005]
    best = int(near.min())
    best_d = int(ns[int(np.argmin(dmin))])
    notes = []
    if best > analysis.n_frames:
        notes.append(f"the model would use {best} frames; this burst has {analysis.n_frames}")
    if np.isfinite(analysis.step_ratio) and analysis.step_ratio < 1.0:
        notes.append(
            "the shake looks temporally correlated (drift): prefer the frames nearest the "
            "reference, or align (sempix burst merge --align phase)"
        )
    aurs_al, _ = aur_vs_n(ns, nr, min(float(residual), s), analysis.spectrum)
    best_al = int(ns[aurs_al <= aurs_al.min() + 0.005].min())
    return Advice(analysis, ns, dmin, aurs, best, best_d, notes, best_al, float(residual))


def plot_advice(advice: Advice, path=None):
    """Picture of the advice: minimum distortion and AUR against n, and toy P-D curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sempix.burst.pd import save_figure

    a = advice.analysis
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    ax1.plot(advice.ns, advice.d_min / advice.d_min.max(), label="min distortion (rel.)")
    ax1.plot(advice.ns, advice.aur, label="AUR")
    ax1.axvline(advice.best_n, color="k", ls="--", lw=1, label=f"recommended n = {advice.best_n}")
    ax1.axvline(a.n_frames, color="grey", ls=":", lw=1, label=f"frames given = {a.n_frames}")
    ax1.set_xlabel("burst length n")
    ax1.set_title(f"noise {a.noise_sigma * 255:.1f}/255, shake {a.shake:.2f} px")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    for n in sorted(
        {1, max(1, advice.best_n // 2), advice.best_n, min(int(advice.ns[-1]), 2 * advice.best_n)}
    ):
        c = toy_curve(n, a.noise_rel, a.shake, a.spectrum).points(48)
        ax2.plot(c[:, 0], c[:, 1], label=f"n = {n}")
    ax2.set_xlabel("distortion (MSE, rel.)")
    ax2.set_ylabel("perception (KL)")
    ax2.set_title("toy-model P-D curves")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
