"""The README's main job: semantic seam carving of a photo bundled with scikit-image."""

from __future__ import annotations

from pathlib import Path

from sempix.progress import ProgressFn, sub_progress

EXAMPLE_IMAGES = ("chelsea", "coffee", "astronaut", "rocket")


def example_image_path(name: str = "chelsea") -> Path:
    """Path of a photo bundled with scikit-image (``chelsea``, ``coffee``, ``astronaut``,
    ``rocket``)."""
    import skimage

    from sempix.errors import InputError

    folder = Path(skimage.data.__path__[0])
    for ext in (".png", ".jpg"):
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    raise InputError(
        f"no bundled scikit-image photo named {name!r}; choose one of {', '.join(EXAMPLE_IMAGES)}"
    )


def run_example(
    out_dir: str | Path = ".",
    name: str = "chelsea",
    *,
    width: str | int = "80%",
    backend: str = "ade20k",
    lam: float = 0.2,
    figure: bool = True,
    progress: ProgressFn | None = None,
) -> dict[str, Path]:
    """Carve a bundled photo to ``width`` with semantic seam carving and write the results.

    Uses the ``backend`` features (ade20k by default; ``compute_features`` falls back to the
    weight-free ``lowlevel`` features with one warning when the model is unavailable).

    Parameters
    ----------
    out_dir : folder for the outputs (created).
    name : bundled photo (see :func:`example_image_path`).
    width : target width, pixels or percent string.
    backend : feature backend.
    lam : semantic share of the energy.
    figure : also write the Figure-4 comparison (lam = 0, 1, ``lam``).

    Returns
    -------
    dict with paths: ``input``, ``output`` (carved photo), ``seams``, ``energy`` and ``figure``.
    """
    from sempix.carve.core import carve
    from sempix.carve.figures import colorize_energy, energy_figure
    from sempix.features import compute_features
    from sempix.image import read_image, write_image

    src = example_image_path(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rgb = read_image(src).rgb
    fm = compute_features(rgb, backend, dim=16, progress=sub_progress(progress, 0.0, 0.3))
    res = carve(
        rgb, width, features=fm.features, lam=lam, progress=sub_progress(progress, 0.3, 0.6)
    )
    paths = {"input": src}
    paths["output"] = write_image(out / f"{name}_carved.png", res.image)
    paths["seams"] = write_image(out / f"{name}_seams.png", res.seams_vis(rgb))
    paths["energy"] = write_image(out / f"{name}_energy.png", colorize_energy(res.energy))
    if figure:
        pic = energy_figure(
            rgb,
            fm.features,
            width,
            None,
            lams=(0.0, 1.0, lam),
            semantic=bool(fm.semantic),
            progress=sub_progress(progress, 0.6, 1.0),
        )
        paths["figure"] = write_image(out / f"{name}_figure4.png", pic)
    return paths
