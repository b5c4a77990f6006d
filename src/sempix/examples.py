"""The README's main job: semantic seam carving of a photo bundled with scikit-image.

Run with ``python -m sempix.examples [OUTDIR]`` (``make example`` does this). It writes, into OUTDIR
(default ``out``): the photo resized to 80 % width with semantic carving (lam = 0.2), the same with
RGB-only carving for comparison, the removed seams drawn over the input, and the energy maps.

The semantic features come from the ADE20K model through the model store (``SEMPIX_MODEL_DIR``,
the user cache, or a download). Without the model and without network, sempix says so in one
warning line and uses the weight-free ``lowlevel`` features, which are *not* semantic.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def example_image() -> Path:
    """Path of the bundled example photo (scikit-image's ``coffee.png``)."""
    import skimage.data

    return Path(skimage.data.__file__).parent / "coffee.png"


def main(argv: list[str] | None = None) -> int:
    from sempix.cli import cli

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "out")
    out.mkdir(parents=True, exist_ok=True)
    src = example_image()
    runs = [
        ["carve", str(src), "-o", str(out / "coffee_semantic_80w.png"), "--width", "80%",
         "--lambda", "0.2", "--seams", str(out / "coffee_semantic_seams.png"),
         "--energy-map", str(out / "coffee_energy.png"), "--force"],
        ["carve", str(src), "-o", str(out / "coffee_rgb_80w.png"), "--width", "80%",
         "--features", "none", "--seams", str(out / "coffee_rgb_seams.png"), "--force"],
    ]
    for args in runs:
        print("sempix " + " ".join(args), flush=True)
        try:
            cli.main(args=args, prog_name="sempix", standalone_mode=False)
        except SystemExit as exc:  # errors were already reported on stderr
            if exc.code:
                return int(exc.code)
    print(f"done: results in {out.resolve()}{os.sep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
