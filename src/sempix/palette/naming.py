"""Colour naming with the van de Weijer et al. (2009) model ("Learning color names for real-world
applications", IEEE TIP): 11 basic colour-name probabilities for every cell of a 32x32x32 sRGB grid.

The model file (``w2c`` in the model store) holds the variable ``w2c``: 32768 rows, bin index
``R//8 + 32*(G//8) + 1024*(B//8)`` for 8-bit R, G, B, columns in :data:`NAMES` order. Some
distributed copies prepend the three grid coordinates (14 columns); those are dropped. A colour
is looked up in the cell it falls into (as in the authors' ``im2c``), after rounding to 8 bits.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from sempix.errors import SempixError

NAMES: tuple[str, ...] = (
    "black",
    "blue",
    "brown",
    "grey",
    "green",
    "orange",
    "pink",
    "purple",
    "red",
    "white",
    "yellow",
)

#: Colour used to paint each name in name-map pictures and swatches (sRGB, 0-255).
NAME_DISPLAY_RGB: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "blue": (30, 80, 230),
    "brown": (120, 70, 20),
    "grey": (128, 128, 128),
    "green": (30, 170, 40),
    "orange": (255, 140, 0),
    "pink": (255, 150, 200),
    "purple": (130, 40, 170),
    "red": (220, 20, 20),
    "white": (255, 255, 255),
    "yellow": (255, 235, 0),
}


def _load_w2c(path: Path) -> np.ndarray:
    try:
        import scipy.io

        data = scipy.io.loadmat(str(path))
        arr = np.asarray(data["w2c"], dtype=np.float64)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        try:
            import h5py  # type: ignore[import-not-found]
        except ImportError:  # pragma: no cover - only for v7.3 copies
            raise SempixError(f"{path}: MATLAB v7.3 file; install h5py to read it") from None
        with h5py.File(path, "r") as f:
            arr = np.asarray(f["w2c"], dtype=np.float64).T
    except KeyError:
        raise SempixError(f"{path}: no variable 'w2c' in the colour-naming model file") from None
    except Exception as exc:  # noqa: BLE001
        raise SempixError(f"{path}: cannot read the colour-naming model ({exc})") from None
    if arr.shape == (11, 32768) or arr.shape == (14, 32768):
        arr = arr.T
    if arr.shape == (32768, 14):  # leading columns hold the RGB grid coordinates
        arr = arr[:, 3:]
    if arr.shape != (32768, 11):
        raise SempixError(f"{path}: unexpected w2c shape {arr.shape} (want 32768 x 11)")
    sums = arr.sum(axis=1, keepdims=True)
    arr = arr / np.where(sums > 0, sums, 1.0)
    return np.ascontiguousarray(arr, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def _cached_table(path: str, mtime: float) -> np.ndarray:
    return _load_w2c(Path(path))


def w2c_table(model_path: str | os.PathLike | None = None) -> np.ndarray:
    """The (32768, 11) float32 colour-name probability table (rows sum to 1).

    Parameters
    ----------
    model_path : path to the ``.mat`` file, or None to resolve ``w2c`` through the model store
        (raises :class:`sempix.errors.ModelUnavailableError` when it cannot be found).
    """
    if model_path is None:
        from sempix.models import get_model_path

        model_path = get_model_path("w2c")
    p = Path(model_path)
    return _cached_table(str(p.resolve()), p.stat().st_mtime)


def model_file(model_path: str | os.PathLike | None = None) -> str | os.PathLike:
    """``model_path``, or the ``w2c`` file of the model store when None (resolve it once before
    many look-ups: the store checks the file system on every call)."""
    if model_path is not None:
        return model_path
    from sempix.models import get_model_path

    return get_model_path("w2c")


@functools.lru_cache(maxsize=4)
def _cached_names(path: str, mtime: float) -> np.ndarray:
    names = np.argmax(_cached_table(path, mtime), axis=1).astype(np.int8)
    names.flags.writeable = False
    return names


def name_table(model_path: str | os.PathLike | None = None) -> np.ndarray:
    """(32768,) int8: index into :data:`NAMES` of the most probable name of every naming cell
    (cached)."""
    if model_path is None:
        from sempix.models import get_model_path

        model_path = get_model_path("w2c")
    p = Path(model_path)
    return _cached_names(str(p.resolve()), p.stat().st_mtime)


def _bin_index(rgb: np.ndarray) -> np.ndarray:
    q = np.clip(np.rint(np.asarray(rgb, dtype=np.float32) * 255.0), 0, 255).astype(np.int32) >> 3
    return q[..., 0] + 32 * q[..., 1] + 1024 * q[..., 2]


def name_probabilities(
    rgb: np.ndarray, *, model_path: str | os.PathLike | None = None
) -> np.ndarray:
    """Probabilities of the 11 basic colour names.

    Parameters
    ----------
    rgb : (..., 3) float array, sRGB in [0, 1] (a single colour, a palette or a whole image)
    model_path : optional explicit ``w2c`` model file

    Returns
    -------
    (..., 11) float32, columns in :data:`NAMES` order, summing to 1.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected (..., 3) sRGB colours, got shape {rgb.shape}")
    table = w2c_table(model_path)
    return table[_bin_index(rgb)]


def name_index(rgb: np.ndarray, *, model_path: str | os.PathLike | None = None) -> np.ndarray:
    """Index into :data:`NAMES` of the most probable name. ``(..., 3)`` -> ``(...)`` int64."""
    return name_table(model_path)[_bin_index(np.asarray(rgb))].astype(np.int64)


def color_names(rgb: np.ndarray, *, model_path: str | os.PathLike | None = None) -> list[str] | str:
    """Most probable basic colour name: a string for one colour (3,), a list for (k, 3)."""
    idx = name_index(rgb, model_path=model_path)
    if np.ndim(idx) == 0:
        return NAMES[int(idx)]
    return [NAMES[int(i)] for i in np.ravel(idx)]


def image_name_shares(
    image: np.ndarray, *, model_path: str | os.PathLike | None = None
) -> dict[str, float]:
    """Share of pixels (0..1) whose most probable name is each of :data:`NAMES`. ``image`` (H, W,
    3)."""
    idx = name_index(image, model_path=model_path)
    counts = np.bincount(idx.ravel(), minlength=len(NAMES)).astype(np.float64)
    counts /= max(1.0, counts.sum())
    return {n: float(c) for n, c in zip(NAMES, counts)}


ACHROMATIC = ("black", "grey", "white")
#: palette colours with CIE chroma C* below this are neutral (fixed points of the recolouring)
CHROMA_NEUTRAL = 5.0
#: a palette colour whose most probable name is below this probability has no clear basic name
#: (with 11 names, uniform is 9%): it is a fixed point too
WEAK_NAME = 0.20


def neutral_palette_colours(lab: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Which palette colours are neutral: fixed points of ``neutral_safe`` harmonization.

    Parameters
    ----------
    lab : (k, 3) palette colours in CIE Lab
    probs : (k, 11) their colour-name probabilities (columns in ``NAMES`` order)

    Returns
    -------
    (k,) bool: most probable name black, grey or white; or chroma C* < ``CHROMA_NEUTRAL``; or
    most probable name below ``WEAK_NAME``.
    """
    probs = np.asarray(probs).reshape(-1, len(NAMES))
    top = probs.argmax(-1)
    ach = np.isin(top, [NAMES.index(n) for n in ACHROMATIC])
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    return ach | (chroma < CHROMA_NEUTRAL) | (probs.max(-1) < WEAK_NAME)
