"""Input discovery for batch runs: files, folders (recursive) and glob patterns.

Every input is yielded with the folder its output tree is relative to, so outputs mirror the
input tree: ``photos/2024/a.jpg`` given as the folder ``photos`` becomes ``OUT/2024/a.<ext>``; a
file given by itself lands directly in ``OUT``; a glob ``photos/*/a*.jpg`` is relative to the
part of the pattern before the first wildcard (``photos``).

Discovery is a generator (folders are walked in sorted order, lazily), so a million-file library
is never held in memory by this module.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sempix.errors import InputError

#: file suffixes picked up when walking folders and expanding globs (a file named explicitly is
#: always taken, whatever its suffix: a bad one becomes that input's recorded error)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
_WILDCARDS = set("*?[")


@dataclass(frozen=True)
class InputItem:
    """One input image.

    Attributes
    ----------
    path : the file (absolute).
    rel : its path relative to the root of the input that named it (POSIX separators); the
        outputs of the image go to ``OUT / rel.parent``.
    """

    path: Path
    rel: str

    @property
    def rel_dir(self) -> str:
        parent = Path(self.rel).parent.as_posix()
        return "" if parent == "." else parent

    @property
    def stem(self) -> str:
        return Path(self.rel).stem


def _is_glob(text: str) -> bool:
    return any(c in _WILDCARDS for c in text)


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for p in parts:
        if _is_glob(p):
            break
        fixed.append(p)
    return Path(*fixed) if fixed else Path(".")


def _walk(root: Path, skip: Path | None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        # hidden folders (.git, the batch's own .sempix-batch) and the output folder are skipped
        dirnames[:] = sorted(
            n
            for n in dirnames
            if not n.startswith(".") and (skip is None or (d / n).resolve() != skip)
        )
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield d / name


def iter_inputs(
    specs: Iterable[str | os.PathLike], *, exclude: str | os.PathLike | None = None
) -> Iterator[InputItem]:
    """Yield the input images named by ``specs`` (files, folders, globs), in a stable order.

    Parameters
    ----------
    specs : file paths, folder paths (walked recursively, image suffixes only, hidden entries
        skipped) or glob patterns (``**`` allowed).
    exclude : a folder never walked into (the output folder, when it sits inside an input folder).

    Raises
    ------
    InputError
        A spec that names nothing (missing file, folder without images, glob without matches).
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    for spec in specs:
        text = os.fspath(spec)
        p = Path(text)
        found = 0
        if p.is_dir():
            root = p.resolve()
            for f in _walk(p, skip):
                found += 1
                yield InputItem(f.resolve(), f.resolve().relative_to(root).as_posix())
        elif p.exists() or os.path.lexists(text):
            found = 1
            yield InputItem(p.resolve(), p.name)
        elif _is_glob(text):
            root = _glob_root(text).resolve()
            for m in sorted(glob.iglob(text, recursive=True)):
                f = Path(m)
                if (
                    f.is_file()
                    and f.suffix.lower() in IMAGE_SUFFIXES
                    and not f.name.startswith(".")
                ):
                    if skip is not None and skip in f.resolve().parents:
                        continue
                    found += 1
                    rf = f.resolve()
                    try:
                        rel = rf.relative_to(root).as_posix()
                    except ValueError:
                        rel = rf.name
                    yield InputItem(rf, rel)
        else:
            raise InputError(f"{text}: no such file or folder")
        if found == 0:
            what = "folder" if p.is_dir() else "pattern"
            raise InputError(f"{text}: this {what} holds no images ({', '.join(IMAGE_SUFFIXES)})")
