"""Batch processing of whole photo libraries, locally or on a Dask cluster (``sempix batch``).

>>> from sempix.batch import run
>>> summary = run("carve", ["photos/"], "out/", {"width": "80%"})        # doctest: +SKIP
>>> summary.processed, summary.failed, summary.exit_code                   # doctest: +SKIP

A front like the CLI: every tool runs through its public API (see :mod:`sempix.batch.tools`,
where later tools register). Outputs mirror the input tree; ``OUT/sempix-batch.sqlite`` is the
manifest (:mod:`sempix.batch.manifest`); outputs are committed atomically
(:mod:`sempix.batch.worker`); :mod:`sempix.batch.runner` plans, executes and summarises.
"""

from __future__ import annotations

from sempix.batch.inputs import IMAGE_SUFFIXES, InputItem, iter_inputs
from sempix.batch.manifest import FILENAME as MANIFEST_FILENAME
from sempix.batch.manifest import Manifest, file_hash
from sempix.batch.runner import BatchSummary, make_executor, run
from sempix.batch.tools import (
    REGISTRY,
    BatchTool,
    GroupSteps,
    Job,
    Option,
    get_tool,
    load_points_table,
    register_tool,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "MANIFEST_FILENAME",
    "REGISTRY",
    "BatchSummary",
    "BatchTool",
    "GroupSteps",
    "InputItem",
    "Job",
    "Manifest",
    "Option",
    "file_hash",
    "get_tool",
    "iter_inputs",
    "load_points_table",
    "make_executor",
    "register_tool",
    "run",
]
