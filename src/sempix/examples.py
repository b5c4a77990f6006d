"""The README's main job: semantic seam carving of a photo bundled with scikit-image.

Run with ``python -m sempix.examples [OUTDIR]`` (``make example`` does this). It writes, into OUTDIR
(default ``out``): the photo (``chelsea``) resized to 80 % width with semantic carving (lam = 0.2),
the removed seams drawn over the input, the energy map, and the paper's Figure-4 comparison
(energies and results for lam = 0, 1 and 0.2).

The semantic features come from the ADE20K model through the model store (``SEMPIX_MODEL_DIR``,
the user cache, or a download). Without the model and without network, sempix says so in one
warning line and uses the weight-free ``lowlevel`` features, which are *not* semantic.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from sempix.carve.example import example_image_path
    from sempix.cli import main as sempix_main

    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "out")
    out.mkdir(parents=True, exist_ok=True)
    src = example_image_path("chelsea")
    args = ["carve", str(src), "-o", str(out / "chelsea_semantic_80w.png"), "--width", "80%",
            "--lambda", "0.2", "--seams", str(out / "chelsea_seams.png"),
            "--energy-map", str(out / "chelsea_energy.png"),
            "--energy-figure", str(out / "chelsea_figure4.png"), "--force"]
    print("sempix " + " ".join(args), flush=True)
    try:
        sempix_main(args)
    except SystemExit as exc:  # errors were already reported on stderr
        if exc.code:
            return int(exc.code)
    print(
        f"done: results in {out.resolve()}{os.sep} (chelsea_semantic_80w.png: the photo at 80% "
        "width;"
        " chelsea_seams.png: removed seams; chelsea_energy.png: the energy used;"
        " chelsea_figure4.png: energies and results for lam = 0, 1 and 0.2)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
