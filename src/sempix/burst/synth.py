"""Synthetic bursts from the formation model ``y_i[u] = x[alpha u + v_i] + eps_i[u]``.

Conventions
-----------
* ``x`` is a high-resolution (HR) image ``(H, W, 3)`` float32 in [0, 1].
* Frame ``i`` samples ``x`` (bilinear interpolation, no anti-alias filter, so the frames alias and
  sub-pixel shifts carry information) at the HR coordinates ``alpha * u + (alpha - 1) / 2 + v_i``
  for every low-resolution (LR) pixel ``u``; the ``(alpha - 1) / 2`` offset puts LR pixel centres
  at the centres of the HR blocks they cover (the convention of ``skimage.transform.resize``).
* ``v_i`` (``shifts``, HR pixels, ``(dy, dx)``) is camera shake: i.i.d. ``N(0, sigma_s^2)`` per axis
  (``motion="random"``) or a Gaussian random walk whose increments have standard deviation
  ``sigma_s`` (``motion="correlated"``). The reference frame 0 is aligned: ``v_0 = 0`` and every
  other shift is relative to it.
* Noise, on the 8-bit scale (values in [0, 255]) as in the thesis: Poisson shot noise with
  variance ``lambda_p * x`` (``y = lambda_p * Poisson(x / lambda_p)``) plus Gaussian read noise
  with standard deviation ``sigma_g``; frames are clipped to [0, 1] unless ``clip=False``.

Everything is seeded: the same ``seed`` gives the same burst.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from sempix.errors import InputError

MOTIONS = ("random", "correlated")


@dataclass(frozen=True)
class BurstParams:
    """Parameters of the formation model.

    Attributes
    ----------
    n : burst length (number of frames, >= 1).
    scale : subsampling factor alpha (integer >= 1).
    shake : sigma_s, standard deviation of the camera shake in HR pixels.
    shot : lambda_p, Poisson gain on the 8-bit scale (variance ``shot * x``, x in [0, 255]).
    read : sigma_g, Gaussian read-noise standard deviation on the 8-bit scale.
    motion : ``"random"`` (i.i.d. shifts) or ``"correlated"`` (random walk).
    clip : clip frames to [0, 1].
    """

    n: int = 10
    scale: int = 4
    shake: float = 0.0
    shot: float = 0.0
    read: float = 0.0
    motion: str = "random"
    clip: bool = True

    def validate(self) -> BurstParams:
        if int(self.n) < 1:
            raise InputError(f"burst length must be >= 1, got {self.n}")
        if int(self.scale) < 1 or int(self.scale) != self.scale:
            raise InputError(f"scale must be an integer >= 1, got {self.scale}")
        for name in ("shake", "shot", "read"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {v}")
        if self.motion not in MOTIONS:
            raise InputError(f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")
        return self

    def noise_std(self, x: float | np.ndarray) -> np.ndarray:
        """Noise standard deviation (in [0, 1] units) at intensity ``x`` in [0, 1]."""
        x255 = np.asarray(x, dtype=np.float64) * 255.0
        return np.sqrt(self.shot * x255 + self.read**2) / 255.0


@dataclass
class Burst:
    """A synthetic burst.

    Attributes
    ----------
    frames : (n, h, w, 3) float32, frame 0 is the reference.
    shifts : (n, 2) float64 true shifts ``(dy, dx)`` in HR pixels (``shifts[0] == 0``).
    hr : (H, W, 3) float32 ground truth, ``H = scale * h``.
    params : the :class:`BurstParams` used.
    seed : the seed used.
    """

    frames: np.ndarray
    shifts: np.ndarray
    hr: np.ndarray
    params: BurstParams
    seed: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def lr_shifts(self) -> np.ndarray:
        """True shifts in LR pixels, (n, 2)."""
        return self.shifts / float(self.params.scale)


def sample_shifts(
    n: int, shake: float, motion: str = "random", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Camera-shake shifts ``(n, 2)`` in HR pixels, relative to frame 0 (``out[0] == 0``).

    ``random``: i.i.d. ``N(0, shake^2)`` per axis for frames 1..n-1 (so ``v_i - v_0`` has standard
    deviation ``shake``, the reference being aligned). ``correlated``: a random walk whose steps are
    ``N(0, shake^2)`` per axis.
    """
    rng = rng if rng is not None else np.random.default_rng()
    if motion not in MOTIONS:
        raise InputError(f"motion must be one of {', '.join(MOTIONS)}, got {motion!r}")
    steps = rng.normal(0.0, 1.0, size=(n, 2)) * float(shake)
    steps[0] = 0.0
    if motion == "correlated":
        return np.cumsum(steps, axis=0)
    return steps


def sample_frame(hr: np.ndarray, shift: tuple[float, float] | np.ndarray, scale: int) -> np.ndarray:
    """Noise-free frame: ``hr`` sampled bilinearly at ``scale * u + (scale - 1) / 2 + shift``.

    Parameters
    ----------
    hr : (H, W, C) float32.
    shift : (dy, dx) in HR pixels.
    scale : integer subsampling factor.

    Returns
    -------
    (H // scale, W // scale, C) float32 (edges: reflected).
    """
    H, W = hr.shape[:2]
    h, w = H // scale, W // scale
    off = (scale - 1) / 2.0
    rr = scale * np.arange(h, dtype=np.float64) + off + float(shift[0])
    cc = scale * np.arange(w, dtype=np.float64) + off + float(shift[1])
    R, C = np.meshgrid(rr, cc, indexing="ij")
    out = np.empty((h, w, hr.shape[2]), np.float32)
    for ch in range(hr.shape[2]):
        out[..., ch] = ndimage.map_coordinates(hr[..., ch], [R, C], order=1, mode="mirror")
    return out


def add_noise(
    frame: np.ndarray, shot: float, read: float, rng: np.random.Generator, clip: bool = True
) -> np.ndarray:
    """Poisson (variance ``shot * x`` on the 8-bit scale) + Gaussian (std ``read``) noise."""
    y = frame.astype(np.float64) * 255.0
    if shot > 0:
        y = shot * rng.poisson(np.clip(y, 0, None) / shot)
    if read > 0:
        y = y + rng.normal(0.0, read, size=y.shape)
    y = y / 255.0
    if clip:
        y = np.clip(y, 0.0, 1.0)
    return y.astype(np.float32)


def _crop_to_multiple(hr: np.ndarray, scale: int) -> np.ndarray:
    H, W = hr.shape[:2]
    H2, W2 = (H // scale) * scale, (W // scale) * scale
    if H2 == 0 or W2 == 0:
        raise InputError(f"image {W}x{H} is smaller than the scale factor {scale}")
    return hr[:H2, :W2]


def synthesize(
    hr: np.ndarray,
    params: BurstParams | None = None,
    *,
    seed: int | None = 0,
    shifts: np.ndarray | None = None,
    **overrides,
) -> Burst:
    """Make a burst from a ground-truth image.

    Parameters
    ----------
    hr : (H, W, 3) (or (H, W)) float in [0, 1]; cropped to a multiple of ``scale``.
    params : :class:`BurstParams`; keyword ``overrides`` replace its fields
        (``synthesize(img, n=5, shake=2)``).
    seed : seed of the shifts and the noise (an int or a sequence of ints such as ``[seed, k]``;
        same seed, same burst).
    shifts : optional (n, 2) HR-pixel shifts to use instead of sampling them.

    Returns
    -------
    :class:`Burst`
    """
    p = params if params is not None else BurstParams()
    if overrides:
        p = BurstParams(**{**p.__dict__, **overrides})
    p.validate()
    img = np.asarray(hr, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise InputError(f"expected an (H, W, 3) image, got shape {img.shape}")
    img = _crop_to_multiple(img, int(p.scale))
    rng = np.random.default_rng(seed)
    if shifts is None:
        v = sample_shifts(int(p.n), p.shake, p.motion, rng)
    else:
        v = np.asarray(shifts, dtype=np.float64).reshape(int(p.n), 2)
    frames = np.stack(
        [
            add_noise(sample_frame(img, v[i], int(p.scale)), p.shot, p.read, rng, p.clip)
            for i in range(int(p.n))
        ]
    )
    return Burst(frames=frames, shifts=v, hr=img, params=p, seed=seed)
