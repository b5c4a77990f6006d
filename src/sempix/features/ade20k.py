"""DeepLabV3+ MobileNetV2 ADE20K backend (LiteRT).

The network takes a fixed 1x513x513x3 float32 input in [-1, 1]. Any image is *letterboxed*: its
longest side is resized to 513 pixels keeping the aspect ratio (PIL bilinear, antialiased when
shrinking; small images are enlarged), it is placed in the top-left corner and the rest is padded
with mid-grey (0 after normalisation, the network's mean pixel). The network therefore always sees
at most 513x513 pixels, whatever the image size: very large images are analysed at that
resolution and their features are upsampled (the semantic map has ~4 input pixels per feature
sample, i.e. about ``max(H, W) / 128`` image pixels per sample).

Read from the interpreter (intermediate tensors preserved):

* ``features`` - the decoder's penultimate map (1x129x129x256, after ReLU): the input of the final
  1x1 convolution whose weights are ``logits/semantic/Conv2D``. It is found through the op graph
  (the op that consumes that weight tensor), with a name/shape fallback.
* ``logits`` - that convolution's output (1x129x129x151), index 0 = ``others``.

The 129 grid is *align-corners* with stride 4 (sample ``k`` sits on input pixel ``4k``; verified
against the model's own 513x513 output). The valid region (the image, not the padding) is cropped
and image pixel centres are mapped exactly onto it for upsampling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sempix._runtime import BoundedCache
from sempix.errors import InputError, ModelUnavailableError
from sempix.ops.validate import as_rgb

log = logging.getLogger(__name__)

MODEL_NAME = "deeplabv3-mnv2-ade20k"
LABELS_NAME = "deeplabv3-mnv2-ade20k-labels"
INPUT_SIZE = 513
STRIDE = 4
LOGITS_WEIGHTS = "logits/semantic/Conv2D"

_lock = threading.Lock()
_runners: BoundedCache = BoundedCache(maxsize=2, name="features.ade20k")


@dataclass
class LowRes:
    """Backend output before post-processing.

    features : (h, w, D) float32 feature grid; logits : (h, w, C) float32 or None;
    ys, xs : (H,), (W,) coordinates of the image pixel centres in that grid.
    """

    features: np.ndarray
    logits: np.ndarray | None
    ys: np.ndarray
    xs: np.ndarray
    class_names: list[str] | None
    meta: dict


class _Runner:
    """One LiteRT interpreter (per model file and process); ``run`` is thread-safe."""

    def __init__(self, model_path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise ModelUnavailableError(f"ai-edge-litert is not installed ({exc})") from exc
        import warnings

        with warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging" notice
            try:
                # OMP_NUM_THREADS (set to 1 in Dask worker processes) bounds the interpreter's
                # threads, so N workers on N cores do not each start N threads
                omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
                threads = int(omp) if omp.isdigit() and int(omp) > 0 else (os.cpu_count() or 1)
                self.interp = Interpreter(
                    model_path=str(model_path),
                    experimental_preserve_all_tensors=True,
                    num_threads=threads,
                )
                self.interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                msg = str(exc).strip()
                reason = msg.splitlines()[0] if msg else type(exc).__name__
                raise ModelUnavailableError(
                    f"{model_path}: not a usable TFLite model ({reason}); the file looks corrupt "
                    f"or is not {MODEL_NAME}: delete it and run `sempix models fetch {MODEL_NAME}`"
                ) from exc
        inp = self.interp.get_input_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise ModelUnavailableError(
                f"{model_path}: unexpected input shape {tuple(inp['shape'])}"
            )
        self.input_index = inp["index"]
        self.feat_index, self.logit_index = self._locate()
        self.lock = threading.Lock()
        self.path = model_path

    def _locate(self) -> tuple[int, int]:
        details = {d["index"]: d for d in self.interp.get_tensor_details()}
        by_name = {d["name"]: i for i, d in details.items()}
        w = by_name.get(LOGITS_WEIGHTS)
        try:
            ops = self.interp._get_ops_details()
        except Exception:  # noqa: BLE001  pragma: no cover - private API may change: use names
            ops = []
        if w is not None:
            for op in ops:
                if w in list(op["inputs"]):
                    acts = [
                        i
                        for i in op["inputs"]
                        if i >= 0
                        and i != w
                        and len(details[i]["shape"]) == 4
                        and details[i]["dtype"] == np.float32
                    ]
                    outs = list(op["outputs"])
                    if len(acts) == 1 and len(outs) == 1:
                        return int(acts[0]), int(outs[0])
        # fallback: by name, then by shape
        f = by_name.get("tfl.conv_2d39")
        g = by_name.get("tfl.conv_2d40")
        if f is not None and g is not None:
            return f, g
        feats = [
            i
            for i, d in details.items()
            if tuple(d["shape"]) == (1, 129, 129, 256) and d["dtype"] == np.float32
        ]
        logs = [
            i
            for i, d in details.items()
            if tuple(d["shape"]) == (1, 129, 129, 151) and d["dtype"] == np.float32
        ]
        if feats and logs:
            return max(feats), min(logs)
        raise ModelUnavailableError(
            "cannot find the penultimate feature tensor in the ADE20K model"
        )

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            self.interp.set_tensor(self.input_index, x)
            self.interp.invoke()
            feats = self.interp.get_tensor(self.feat_index)[0].copy()
            logits = self.interp.get_tensor(self.logit_index)[0].copy()
        return feats, logits


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ runtime's "Created TensorFlow Lite XNNPACK delegate" line (fd 2)."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            sys.stderr.flush()
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(devnull)
    finally:
        os.close(saved)


def get_runner(model_path: Path) -> _Runner:
    """The cached interpreter for ``model_path`` (created on first use)."""
    key = str(Path(model_path).resolve())
    return _runners.get_or_create(key, lambda: _Runner(Path(model_path)))


def model_path() -> Path:
    """Path of the ADE20K model (raises :class:`ModelUnavailableError`)."""
    from sempix.models import get_model_path

    return Path(get_model_path(MODEL_NAME))


_names_cache: dict[str, list[str]] = {}


def class_names() -> list[str]:
    """The 151 class names (index 0 ``others``).

    Read from the model store's label file; since that file truncates names to their first word
    (``chest``, ``pool``, two ``screen``), the full unique ADE20K names of :data:`ADE20K_CLASSES`
    are returned when the file agrees with them word for word (and also when the label file is
    unavailable).
    """
    try:
        from sempix.models import get_model_path

        p = Path(get_model_path(LABELS_NAME))
    except Exception:  # noqa: BLE001 - labels are optional; built-in list is identical
        return list(ADE20K_CLASSES)
    key = str(p)
    if key not in _names_cache:
        names: dict[int, str] = {}
        for line in p.read_text(encoding="utf-8").splitlines():
            parts = line.strip().split(None, 1) if "\t" not in line else line.strip().split("\t", 1)
            if len(parts) == 2 and parts[0].strip().isdigit():
                names[int(parts[0])] = parts[1].strip()
        if sorted(names) != list(range(len(names))) or len(names) != 151:
            raise ModelUnavailableError(f"{p}: expected 151 'index<TAB>name' lines")
        file_names = [names[i] for i in range(len(names))]
        # The label file shipped with the model keeps only the first word of each name
        # ("chest", "pool", "screen" twice); use the full ADE20K names when they agree.
        if all(f.lower() == full.split()[0].lower() for f, full in zip(file_names, ADE20K_CLASSES)):
            file_names = list(ADE20K_CLASSES)
        _names_cache[key] = file_names
    return list(_names_cache[key])


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, tuple[int, int]]:
    """Resize the longest side to ``size`` keeping the aspect ratio and pad to ``size x size``.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1]

    Returns
    -------
    x : (1, size, size, 3) float32 in [-1, 1], image top-left, padding 0 (mid-grey)
    (h, w) : the size the image occupies in ``x`` (each >= 1)
    """
    H, W = image.shape[:2]
    s = size / max(H, W)
    h = min(size, max(1, round(H * s)))
    w = min(size, max(1, round(W * s)))
    u8 = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(u8, "RGB")
    if (h, w) != (H, W):
        im = im.resize((w, h), Image.BILINEAR, reducing_gap=None)
    x = np.zeros((1, size, size, 3), np.float32)
    x[0, :h, :w] = np.asarray(im, np.float32) / 127.5 - 1.0
    return x, (h, w)


def grid_coords(H: int, W: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Map image pixel centres to the 129 feature grid and give the valid crop size.

    Returns
    -------
    ys (H,), xs (W,) coordinates in the crop; hc, wc the crop size (samples 0..hc-1 lie within the
    image's letterboxed extent).
    """
    from sempix.ops.resample import sample_coords

    hc = (h - 1) // STRIDE + 1
    wc = (w - 1) // STRIDE + 1
    ys = sample_coords(H, h, stride=STRIDE, limit=hc - 1)
    xs = sample_coords(W, w, stride=STRIDE, limit=wc - 1)
    return ys, xs, hc, wc


def compute_lowres(image: np.ndarray, path: Path | None = None, *, runtime: str = "litert",
                   device: str = "cpu") -> LowRes:
    """Run the network on ``image`` (H, W, 3) and return the cropped 129-grid maps.

    ``runtime="torch"`` runs the converted float32 PyTorch module on ``device`` instead of
    LiteRT (:mod:`sempix.features.ade20k_torch`); resolve ``"auto"`` first
    (:func:`sempix.features.runtime.resolve_runtime`).
    """
    if runtime == "torch":
        from sempix.features.ade20k_torch import compute_lowres as torch_lowres

        return torch_lowres(image, path, device=device)
    if runtime != "litert":
        raise InputError(f"unknown ade20k runtime {runtime!r} (litert or torch)")
    image = as_rgb(image)
    p = model_path() if path is None else Path(path)
    runner = get_runner(p)
    H, W = image.shape[:2]
    x, (h, w) = letterbox(image)
    feats, logits = runner.run(x)
    ys, xs, hc, wc = grid_coords(H, W, h, w)
    names = class_names()
    return LowRes(
        features=np.ascontiguousarray(feats[:hc, :wc]),
        logits=np.ascontiguousarray(logits[:hc, :wc]),
        ys=ys,
        xs=xs,
        class_names=names,
        meta={"model": str(p), "letterbox": [h, w], "grid": [hc, wc], "input_size": INPUT_SIZE,
              "runtime": "litert", "device": "cpu"},
    )


# The 151 names of the label file (index 0 = "others"), used only if that file is unavailable.
ADE20K_CLASSES = (
    "others", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop",
    "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
    "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight",
    "booth", "television receiver", "airplane", "dirt track", "apparel", "pole", "land",
    "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
    "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food",
    "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan",
    "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)
