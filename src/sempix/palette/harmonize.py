"""Palette-based colour harmonization via colour naming (Xue et al. 2024), and the C-Harmony
baseline.

``method="names"``:

1. extract the image palette (:func:`sempix.palette.extract_palette`, k in 2..7 automatic);
2. match every palette colour to its nearest saturated prototype among its plausible names
   (:func:`sempix.palette.prototypes.match_prototypes`);
3. the target of palette colour i is ``(L_i, a_proto, b_proto)``: the palette colour's own
   lightness with the prototype's chromaticity;
3b. (``keep_names=True``, the default) if that target colour's most probable name differs from
    the palette colour's, the ab step towards the nearest prototype is shortened (75, 50, 25 %)
    until the name is kept; failing that, the other candidate prototypes are tried in order of
    ab distance (after the palette colour's L and gamut mapping are applied); failing that, the
    colour stays. So palette colours never change name (the plain
    rule of the paper changes some: ``keep_names=False``). Shortening first avoids jumps to a far
    prototype when a colour's top names are nearly tied (a beige wall 23% green / 23% grey);
3c. (``neutral_safe=True``, the default) keep neutrals neutral and never desaturate:
    a neutral palette colour (most probable name black, grey or white; or CIE chroma C* < 5; or
    no name above 20 %, see :func:`neutral_palette_colours`) is a fixed point (target = source),
    so it anchors the neutral pixels in the IDW; a target is capped at ``CHROMA_GAIN`` (2) times
    its palette colour's chroma (hue and L kept; dropped if the cap would change the name); a
    target less chromatic than its palette colour is dropped (pure red stays pure red); and the
    IDW runs with the chroma guard (each palette shift scaled by min(1, pixel C* / palette C*)),
    so white and grey pixels get no colour cast. ``neutral_safe=False`` is the method as
    published, which gave e.g. kodim05's whites a lime cast and kodim09's sails a turquoise one;
3d. ``strength`` in [0, 1] scales every palette colour's ab step (1 = the method as published);
4. recolour with IDW in ab (:func:`sempix.palette.recolor_palette`); L* of every pixel is kept;
   the harmony guard (``guard``) judges this palette step;
5. (``fit_template=True``, the default; issue 19) template fit: the result's best Cohen-Or
   template is measured and hues are compressed into it
   (:func:`~sempix.palette.hue_templates.compress_into_template`: smooth, order-keeping, hues
   outside end a pixel's 8-bit hue error inside the border). A hue turns in
   HSV, then the pixel's own L* is restored; a pixel whose basic name would change takes half or
   a quarter of the turn, else none. Of the pixels outside, the most saturated enter first, as
   many as keep MITS >= input MITS + max(``TEMPLATE_MITS_KEEP`` x the palette step's MITS gain,
   ``TEMPLATE_MITS_MIN_GAIN``). When the guard rejects every palette step, a *saturation-only*
   step (palette hues kept, chroma of the targets) + the fit is tried before keeping the input.

``method="cohen-or"``: hue shift into the best Cohen-Or template
(:mod:`sempix.palette.hue_templates`).

Speed: every step up to the template fit's pixel selection depends only on a pixel's colour, so
it runs once per distinct colour of the input (:func:`sempix.color.unique_colours`, class
``_Indexed``) and is gathered per pixel; sums run over the pixels in pixel order, so the result
is bit-identical to the per-pixel computation (images with mostly distinct colours take that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from sempix.color import lab_to_srgb, srgb_to_hsv, srgb_to_lab, unique_colours
from sempix.errors import InputError
from sempix.palette.extract import MAX_SAMPLES, Palette, extract_palette, palette_from_colours
from sempix.palette.naming import neutral_palette_colours
from sempix.progress import ProgressFn, report, sub_progress

METHODS = ("names", "cohen-or")
GUARDS = ("reduce", "warn", "off")
#: relative increase of the F score (per pixel) that the guard still accepts as "not worse"
GUARD_TOLERANCE = 0.0
#: a palette colour's target chroma is at most this many times its own chroma
CHROMA_GAIN = 2.0
#: width (degrees) of the band inside each template border where hues are compressed (step 5)
TEMPLATE_KNEE = 10.0
#: step 5 moves hues into the template while the in-template saturation (MITS) keeps at least this
#: share of the gain of steps 1-4 over the input
TEMPLATE_MITS_KEEP = 0.5
#: ... and at least this much above the input's MITS
TEMPLATE_MITS_MIN_GAIN = 0.005
#: step 5 leaves pixels with CIE chroma C* below this alone (0 = every chromatic pixel may move)
TEMPLATE_MIN_CHROMA = 0.0


class _Indexed:
    """An image as a table of colours and the colour of every pixel (see "Time" in the docs).

    Every step before the template fit's pixel selection is a function of a pixel's colour, so it
    runs once per distinct colour and is gathered per pixel: bit-identical to running it per
    pixel, and 4-20 x less work on an 8-bit photo. ``inverse`` is None when the image has too many
    distinct colours to gain anything; ``colours`` then holds every pixel.
    """

    def __init__(self, colours: np.ndarray, inverse: np.ndarray | None, shape: tuple):
        self.colours = colours
        self.inverse = inverse
        self.shape = shape
        self._hsv: np.ndarray | None = None
        self._sat: np.ndarray | None = None
        self._score = None

    @classmethod
    def of(cls, img: np.ndarray) -> _Indexed:
        flat = np.ascontiguousarray(img.reshape(-1, 3), dtype=np.float32)
        u = unique_colours(flat, max_share=0.5)
        if u is None:
            return cls(flat, None, img.shape)
        return cls(np.ascontiguousarray(flat[u[0]]), u[1], img.shape)

    def with_colours(self, colours: np.ndarray) -> _Indexed:
        """The same pixels with a new colour table (a per-colour result)."""
        return _Indexed(np.ascontiguousarray(colours, dtype=np.float32), self.inverse, self.shape)

    @property
    def n_pixels(self) -> int:
        return int(np.prod(self.shape[:-1]))

    def expand(self, x: np.ndarray) -> np.ndarray:
        """Per-colour values -> per-pixel values."""
        return x if self.inverse is None else np.take(x, self.inverse, axis=0)

    def image(self) -> np.ndarray:
        """(H, W, 3) float32 image (a new array)."""
        out = self.colours.copy() if self.inverse is None else self.expand(self.colours)
        return out.reshape(self.shape)

    def hsv(self) -> np.ndarray:
        """(m, 3) HSV of the colour table."""
        if self._hsv is None:
            self._hsv = srgb_to_hsv(self.colours)
        return self._hsv

    def sat_pixels(self) -> np.ndarray:
        """Per-pixel HSV saturation (float64)."""
        if self._sat is None:
            self._sat = np.ascontiguousarray(self.expand(self.hsv()[:, 1].astype(np.float64)))
        return self._sat

    def score(self):
        """:func:`_harmony` of the image (cached)."""
        if self._score is None:
            self._score = _harmony(self)
        return self._score


def _harmony(x: _Indexed):
    """:func:`~sempix.palette.hue_templates.harmony_metrics` of an image, computed per distinct
    colour (bit-identical): the measure of the guard and of the template fit."""
    from sempix.palette.hue_templates import harmony_from_hs

    hsv = x.hsv()
    return harmony_from_hs(hsv[:, 0], hsv[:, 1], inverse=x.inverse)


def _neutral_safe_targets(pal, src_names, tgt_lab, keep_names, model_path):
    """Neutral-safe rules on the palette targets (module doc, step 3c).

    Neutral palette colours stay fixed; a target is capped at ``CHROMA_GAIN`` times its palette
    colour's chroma (hue kept); a target less chromatic than its palette colour is dropped; with
    ``keep_names``, a capped target that would change the name is dropped too.
    Returns the adjusted (k, 3) targets and a per-colour note ("" when unchanged).
    """
    from sempix.palette.naming import NAMES, name_index, name_probabilities

    tgt = np.asarray(tgt_lab, dtype=np.float32).copy()
    notes = [""] * len(pal)
    neutral = neutral_palette_colours(pal.lab, name_probabilities(pal.rgb, model_path=model_path))
    c_src = np.hypot(pal.lab[:, 1], pal.lab[:, 2])
    for i in range(len(pal)):
        if neutral[i]:
            tgt[i] = pal.lab[i]
            notes[i] = "neutral-fixed"
            continue
        out = srgb_to_lab(lab_to_srgb(tgt[i][None]))[0]  # as it will come out (gamut-mapped)
        c_out = float(np.hypot(out[1], out[2]))
        if c_out > CHROMA_GAIN * c_src[i]:
            tgt[i, 1:] = out[1:] * (CHROMA_GAIN * c_src[i] / c_out)
            notes[i] = f"chroma-capped-x{CHROMA_GAIN:g}"
            if keep_names and int(
                name_index(lab_to_srgb(tgt[i]), model_path=model_path)
            ) != NAMES.index(src_names[i]):
                tgt[i] = pal.lab[i]
                notes[i] = "capped-would-rename"
        elif c_out < c_src[i] - 1e-3:
            tgt[i] = pal.lab[i]
            notes[i] = "kept-chroma"
    return tgt, notes


def _template_fit(out: _Indexed, score, mits_floor, model_path):
    """Bring out-of-template hues of ``out`` into ``score``'s template (module doc, step 5).

    Every chromatic pixel gets its hue from :func:`compress_into_template` (hue turned in HSV,
    then its own CIE L* restored, gamut-mapped; a shorter turn, 50 or 25 %, where the basic colour
    name would change, else none). Pixels inside the template near a border are compressed
    smoothly; of the pixels outside, the most saturated (after the turn) are taken first, as many
    as keep the mean in-template saturation (MITS, with this template) >= ``mits_floor``.
    The turns are computed once per distinct colour of ``out``; the selection is per pixel.
    Returns the new image (:class:`_Indexed`) and a dict of counts (share of pixels moved,
    name-locked).
    """
    from sempix.color import hsv_to_srgb
    from sempix.palette._template_kernels import _compress_hues
    from sempix.palette.hue_templates import ACHROMATIC
    from sempix.palette.naming import name_index

    n = max(out.n_pixels, 1)
    if not getattr(score, "sectors", None):  # no template (a stand-in metric): nothing to fit
        return out, {"moved": 0.0, "outside_before": 0.0, "name_locked": 0.0,
                     "mits_floor": mits_floor}
    colours = out.colours
    hsv = out.hsv()  # per distinct colour ("_u" below: per colour, else per pixel)
    h = np.ascontiguousarray(hsv[:, 0])
    s_u = hsv[:, 1].astype(np.float64)
    chrom_u = s_u > ACHROMATIC
    sectors = score.absolute_sectors()
    cen = np.array([c for c, _ in sectors], dtype=np.float64)
    wid = np.array([w for _, w in sectors], dtype=np.float64)

    def compress(hue, sat, val):
        # hue error of one 8-bit level of the pixel (S * V = max - min): hues land that far inside
        margin = np.float32(60.0 / 255.0) / np.maximum(sat * val, np.float32(1e-6))
        nh, dist = np.empty_like(hue), np.empty_like(hue)
        _compress_hues(np.ascontiguousarray(hue), np.ascontiguousarray(margin, np.float32), cen,
                       wid, float(TEMPLATE_KNEE), nh, dist)
        return nh, dist

    new_h, dist = compress(h, hsv[:, 1], hsv[:, 2])
    if TEMPLATE_MIN_CHROMA > 0:
        lab = srgb_to_lab(colours)
        chrom_u &= np.hypot(lab[:, 1], lab[:, 2]) >= TEMPLATE_MIN_CHROMA
    outside_u = (s_u > ACHROMATIC) & (dist > 1e-6)
    # candidates: chromatic pixels outside, and inside ones that the compression moves
    cand_u = chrom_u & (outside_u | (np.abs(new_h - h) > 1e-4))
    outside = out.expand(outside_u)
    idx = np.flatnonzero(out.expand(cand_u))  # candidate pixels
    info = {"moved": 0.0, "outside_before": float(outside.sum()) / n, "name_locked": 0.0,
            "mits_floor": float(mits_floor)}
    if not len(idx):
        return out, info
    cu = np.flatnonzero(cand_u)  # candidate colours
    loc = np.full(len(colours), -1, dtype=np.int64)
    loc[cu] = np.arange(len(cu))
    kc = loc[out.inverse[idx]] if out.inverse is not None else loc[idx]
    n0 = name_index(colours[cu], model_path=model_path)
    l0 = srgb_to_lab(colours[cu])[:, 0]
    h0 = h[cu].astype(np.float64)
    dh = (new_h[cu].astype(np.float64) - h0 + 180.0) % 360.0 - 180.0
    cand = colours[cu].copy()
    todo = np.ones(len(cu), dtype=bool)
    for t in (1.0, 0.5, 0.25):  # a pixel whose basic name would change takes a shorter turn
        j = np.flatnonzero(todo)
        if not len(j):
            break
        trial = hsv[cu[j]].copy()
        trial[:, 0] = ((h0[j] + t * dh[j]) % 360.0).astype(np.float32)
        # the hue turns in HSV (S, V kept); then CIE L* is set back to the pixel's own, as in
        # every other step (gamut-mapped along the hue line)
        lab = srgb_to_lab(hsv_to_srgb(trial))
        lab[:, 0] = l0[j]
        rgb = lab_to_srgb(lab)
        good = name_index(rgb, model_path=model_path) == n0[j]
        cand[j[good]] = rgb[good]
        todo[j[good]] = False
    # where the candidates end up (S and hue change a little with L* restored)
    hc = srgb_to_hsv(cand)
    s_c = hc[:, 1].astype(np.float64)[kc]  # per candidate pixel from here on
    in_c = (compress(hc[:, 0], hc[:, 1], hc[:, 2])[1] <= 1e-6)[kc]
    s = out.sat_pixels()
    was_out = outside[idx]
    # pixels that were inside stay as compressed (when still inside); the outside ones are taken
    # most saturated first while MITS >= floor
    keep_in = ~was_out & in_c
    inside = ~outside
    n_in = float(inside.sum())
    s_sum = float(s[inside].sum()) + float((s_c[keep_in] - s[idx[keep_in]]).sum())
    go = np.flatnonzero(was_out & in_c)
    go = go[np.argsort(-s_c[go], kind="stable")]
    means = (s_sum + np.cumsum(s_c[go])) / (n_in + np.arange(1, len(go) + 1))
    ok = np.flatnonzero(means >= mits_floor)
    if len(ok):
        n_move = int(ok[-1]) + 1
    elif len(go) and means.max() > s_sum / max(n_in, 1.0):
        n_move = int(np.argmax(means)) + 1
    else:
        n_move = 0
    sel = np.concatenate([np.flatnonzero(keep_in), go[:n_move]])
    info.update(moved=n_move / n, name_locked=float(todo[kc].sum()) / n)
    if out.inverse is None:
        res = colours.copy()
        res[idx[sel]] = cand[kc[sel]]
        return _Indexed(res, None, out.shape), info
    inverse = out.inverse.copy()
    inverse[idx[sel]] = len(colours) + kc[sel]
    return _Indexed(np.concatenate([colours, cand]), inverse, out.shape), info


def _saturation_only(pal, full_lab, strength, src_names, model_path):
    """Targets with each palette colour's own hue (ab direction) and the chroma of its full
    target (scaled by ``strength``), where that is higher and keeps the name; None when no colour
    gains chroma. (k, 3) Lab."""
    from sempix.palette.naming import NAMES, name_index

    c_src = np.hypot(pal.lab[:, 1], pal.lab[:, 2])
    c_tgt = np.hypot(full_lab[:, 1], full_lab[:, 2])
    c_new = c_src + float(strength) * (c_tgt - c_src)
    lab = pal.lab.astype(np.float32).copy()
    up = (c_new > c_src + 1e-3) & (c_src > 1e-6)
    lab[up, 1:] *= (c_new[up] / c_src[up])[:, None]
    for i in np.flatnonzero(up):
        if int(name_index(lab_to_srgb(lab[i]), model_path=model_path)) != NAMES.index(
            src_names[i]
        ):
            lab[i] = pal.lab[i]
            up[i] = False
    return lab if up.any() else None


@dataclass
class HarmonizeResult:
    """Result of :func:`harmonize_image`.

    Attributes
    ----------
    image : (H, W, 3) float32 harmonized image
    method : ``names`` or ``cohen-or``
    source : Palette of the input
    target_rgb : (k, 3) where each palette colour went (sRGB, gamut-mapped; for ``cohen-or`` the
        palette colours' hue-shifted versions)
    prototypes : (k, 3) chosen prototypes (``names`` only; else None)
    source_names, target_names : basic colour names of the palette colours before and after
    info : extra details (candidate names, template of the baseline...)
    """

    image: np.ndarray
    method: str
    source: Palette
    target_rgb: np.ndarray
    prototypes: np.ndarray | None
    source_names: list[str]
    target_names: list[str]
    info: dict = field(default_factory=dict)

    @property
    def names_kept(self) -> float:
        """Share (0..1) of palette colours whose basic colour name did not change."""
        same = [a == b for a, b in zip(self.source_names, self.target_names)]
        return float(np.mean(same)) if same else 1.0


def _keep_names(pal, src_names, cands, protos, tgt_lab, model_path, per_name):
    """Adjust targets so that each palette colour keeps its most probable name (module doc, 3b)."""
    from sempix.palette.naming import NAMES, name_index
    from sempix.palette.prototypes import get_prototypes

    allp = get_prototypes(model_path, per_name=per_name)
    allp_lab = srgb_to_lab(allp.rgb)
    protos = protos.copy()
    tgt_lab = tgt_lab.copy()
    how = []
    for i in range(len(pal)):
        want = NAMES.index(src_names[i])
        if int(name_index(lab_to_srgb(tgt_lab[i]), model_path=model_path)) == want:
            how.append("nearest")
            continue
        done = False
        for t in (0.75, 0.5, 0.25):  # first: a shorter step towards the nearest prototype
            lab = pal.lab[i].copy()
            lab[1:] = pal.lab[i, 1:] + t * (tgt_lab[i, 1:] - pal.lab[i, 1:])
            if int(name_index(lab_to_srgb(lab), model_path=model_path)) == want:
                tgt_lab[i] = lab
                how.append(f"shortened-{int(t * 100)}%")
                done = True
                break
        if done:
            continue
        sel = np.flatnonzero(np.isin(allp.name, [NAMES.index(n) for n in cands[i]]))
        # L is kept, so what counts is the chromaticity step: nearest in ab first
        trial = np.column_stack([np.full(len(sel), pal.lab[i, 0]), allp_lab[sel, 1:]]).astype(
            np.float32
        )
        trial = srgb_to_lab(lab_to_srgb(trial))  # as it will come out (gamut-mapped)
        order_idx = np.argsort(((trial[:, 1:] - pal.lab[i, 1:]) ** 2).sum(1), kind="stable")
        order, trial = sel[order_idx], trial[order_idx]
        ok = np.flatnonzero(name_index(lab_to_srgb(trial), model_path=model_path) == want)
        if len(ok):
            j = int(ok[0])
            protos[i] = allp.rgb[order[j]]
            tgt_lab[i] = trial[j]
            how.append("next-prototype")
        else:
            tgt_lab[i] = pal.lab[i]
            how.append("unchanged")
    return protos, tgt_lab, how


def harmonize_image(
    image: np.ndarray,
    *,
    method: str = "names",
    k: int | None = None,
    palette: Palette | None = None,
    keep_names: bool = True,
    strength: float = 1.0,
    neutral_safe: bool = True,
    model_path: str | os.PathLike | None = None,
    guard: str = "reduce",
    fit_template: bool = True,
    prototypes_per_name: int = 10,
    progress: ProgressFn | None = None,
) -> HarmonizeResult:
    """Harmonize an image's colours.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1]
    method : ``"names"`` (palette -> saturated same-name prototypes, L kept) or ``"cohen-or"``
    k : palette size (None = automatic 2..7)
    palette : precomputed palette of ``image`` (skips extraction)
    keep_names : (``names`` only) make sure every palette colour keeps its basic colour name
        (see the module doc, step 3b); False = the plain nearest-prototype rule
    strength : 0..1, fraction of each palette colour's ab step that is applied (``names`` only)
    neutral_safe : (``names`` only) keep neutrals neutral and never desaturate (module doc, step
        3c): neutral palette colours (:func:`neutral_palette_colours`) are fixed points, targets
        are capped at ``CHROMA_GAIN`` x the palette colour's chroma, a target less chromatic than
        its palette colour is dropped, and the IDW uses the chroma guard.
        False = the method as published (whites and greys can get colour casts)
    model_path : explicit ``w2c`` model file (None = model store)
    guard : what to do when the result is less harmonious than the input by its own measure
        (:func:`~sempix.palette.hue_templates.harmony_metrics`: best-template F per pixel higher
        than the input's by more than ``GUARD_TOLERANCE``):
        ``"reduce"`` (default) applies the step at half, then a quarter of ``strength`` and keeps
        the strongest version that is not worse; when none is (or for ``cohen-or``), it returns the
        input unchanged. ``"warn"`` returns the result anyway; ``"off"`` does not measure.
        ``info["guard"]`` says what happened: ``f_input``, ``f_result`` (of the returned image),
        ``f_full`` (of the full-strength result), ``strength`` applied, ``action`` one of
        ``"none"`` (not worse), ``"reduced"``, ``"saturation-only"`` (issue 19, with
        ``fit_template``: when no weaker step is accepted, the palette colours keep their own hues
        and only take their targets' chroma, then the template fit; taken when the result's F is
        not above the input's), ``"kept-input"``, ``"warned"``; and ``worse`` (the
        returned image is worse than the input: only with ``"warn"``). ``info["harmony"]`` holds the
        :class:`~sempix.palette.hue_templates.HarmonyScore` of the input and of the returned image.
        The check costs two to four harmony measurements (about 5 ms CPU each on a 0.25 MP
        8-bit photo, measured per distinct colour).
    fit_template : (``names`` only) step 5 of the module doc: after the palette recolouring, move
        the most saturated out-of-template hues into the result's best Cohen-Or template (hue
        only, HSV S and V kept, each pixel keeps its basic colour name, near-neutral pixels are
        moved last and only while the mean in-template saturation stays above the input's plus
        ``TEMPLATE_MITS_KEEP`` of the gain of steps 1-4). ``info["template_fit"]`` has the
        template and the share of pixels moved. False = palette recolouring only (before issue 19)
    prototypes_per_name : (``names`` only) saturated prototypes per colour name
        (:func:`~sempix.palette.prototypes.get_prototypes`; 10 = 135 prototypes)

    Returns
    -------
    HarmonizeResult
    """
    from sempix.palette.naming import color_names, model_file

    if not 0.0 <= float(strength) <= 1.0:
        raise InputError(f"strength {strength} out of range: use a value in 0..1")
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if guard not in GUARDS:
        raise InputError(f"unknown guard {guard!r}: use one of {', '.join(GUARDS)}")
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    model_path = model_file(model_path)  # resolved once, not in every name look-up
    report(progress, 0.0, "palette")
    src = _Indexed.of(img)
    if palette is not None:
        pal = palette
    elif src.n_pixels <= MAX_SAMPLES:  # extract_palette without sampling: reuse the colours
        pal = palette_from_colours(src.colours, src.inverse, k=k)
    else:
        pal = extract_palette(img, k=k)
    src_names = list(color_names(pal.rgb, model_path=model_path))
    report(progress, 0.2, "matching")
    if method == "names":
        from sempix.palette.prototypes import match_prototypes
        from sempix.palette.transfer import recolor_palette

        protos, proto_names, cands = match_prototypes(
            pal.rgb, model_path=model_path, per_name=prototypes_per_name
        )
        proto_lab = srgb_to_lab(protos)
        tgt_lab = np.column_stack([pal.lab[:, 0], proto_lab[:, 1:]]).astype(np.float32)
        fallback = [""] * len(pal)
        if keep_names:
            protos, tgt_lab, fallback = _keep_names(
                pal, src_names, cands, protos, tgt_lab, model_path, prototypes_per_name
            )
        notes = [""] * len(pal)
        if neutral_safe:
            tgt_lab, notes = _neutral_safe_targets(pal, src_names, tgt_lab, keep_names, model_path)
        full_lab = tgt_lab.copy()

        def _recolor(lab, prog=None):
            # per distinct colour of the input (IDW is a function of the colour)
            return src.with_colours(
                recolor_palette(src.colours, pal.lab, lab, chroma_guard=neutral_safe,
                                progress=prog)
            )

        def _apply(st, prog):
            lab = full_lab.copy()
            if st != 1.0:
                lab[:, 1:] = pal.lab[:, 1:] + float(st) * (full_lab[:, 1:] - pal.lab[:, 1:])
            return _recolor(lab, prog), lab

        end = 0.7 if guard != "off" else 0.8
        out, tgt_lab = _apply(float(strength), sub_progress(progress, 0.3, end))
        tgt_rgb = lab_to_srgb(tgt_lab)
        info = {
            "candidates": cands,
            "prototype_names": proto_names,
            "name_fix": fallback,
            "neutral_fix": notes,
        }
    else:
        from sempix.color import hsv_to_srgb
        from sempix.palette.hue_templates import cohen_or_harmonize, shift_hues

        out_img, score = cohen_or_harmonize(img)
        out = _Indexed(out_img.reshape(-1, 3), None, img.shape)
        hsv = srgb_to_hsv(pal.rgb)
        hsv[:, 0] = shift_hues(hsv[:, 0], score.absolute_sectors())
        tgt_rgb = hsv_to_srgb(hsv)
        protos = None
        info = {"template": score.template, "alpha": score.alpha}
    fit = method == "names" and fit_template and float(strength) > 0
    s_in = src.score() if (fit or guard != "off") else None
    s_out = None
    if guard != "off":
        report(progress, 0.7, "checking harmony")
        s_out = out.score()
        f_in = s_in.f_score
        f_out = f_full = s_out.f_score
        g = {"f_input": f_in, "f_full": f_full, "strength": float(strength), "action": "none",
             "worse": False}
        if f_out > f_in * (1.0 + GUARD_TOLERANCE) + 1e-9:
            if guard == "warn":
                g.update(action="warned", worse=True)
            else:
                done = False
                if method == "names" and strength > 0:
                    for frac in (0.5, 0.25):
                        st = float(strength) * frac
                        cand, lab = _apply(st, None)
                        s_c = cand.score()
                        f_c = s_c.f_score
                        if f_c <= f_in * (1.0 + GUARD_TOLERANCE) + 1e-9:
                            out, tgt_lab, f_out, s_out, done = cand, lab, f_c, s_c, True
                            tgt_rgb = lab_to_srgb(tgt_lab)
                            g.update(action="reduced", strength=st)
                            break
                if not done and fit:
                    # issue 19: the palette colours' own hues with the targets' chroma (no hue
                    # shift, so no mint sand), then the template fit; taken when the result is
                    # not less harmonious than the input
                    sat_lab = _saturation_only(pal, full_lab, strength, src_names, model_path)
                    if sat_lab is not None:
                        cand = _recolor(sat_lab)
                        s_c = cand.score()
                        floor = s_in.mits + max(
                            TEMPLATE_MITS_KEEP * max(s_c.mits - s_in.mits, 0.0),
                            TEMPLATE_MITS_MIN_GAIN,
                        )
                        fitted, tf = _template_fit(cand, s_c, floor, model_path)
                        s_f = fitted.score()
                        if s_f.f_score <= f_in * (1.0 + GUARD_TOLERANCE) + 1e-9:
                            out, s_out, f_out, done = fitted, s_f, s_f.f_score, True
                            tgt_lab = sat_lab
                            tgt_rgb = lab_to_srgb(tgt_lab)
                            info["template_fit"] = dict(
                                tf, template=s_c.template, alpha=s_c.alpha, attempts=1
                            )
                            fit = False  # done here
                            g.update(action="saturation-only", strength=float(strength))
                if not done:
                    out, f_out, s_out = src, f_in, s_in
                    tgt_rgb = pal.rgb.copy()
                    g.update(action="kept-input", strength=0.0)
        g["f_result"] = f_out
        info["guard"] = g
    if fit:
        # step 5 after the guard: it judged the palette step (steps 1-4); the template fit only
        # turns hues into the template, so it never raises F
        report(progress, 0.8, "fitting hues to the template")
        s_pal = s_out if s_out is not None else out.score()
        if s_pal.sectors:
            gain = max(s_pal.mits - s_in.mits, 0.0)
            floor = s_in.mits + max(TEMPLATE_MITS_KEEP * gain, TEMPLATE_MITS_MIN_GAIN)
            fitted, tf = _template_fit(out, s_pal, floor, model_path)
            tf.update(template=s_pal.template, alpha=s_pal.alpha, attempts=1)
            if guard != "off":
                s_fit = fitted.score()
                if s_fit.mits < s_in.mits + TEMPLATE_MITS_MIN_GAIN and s_fit.sectors:
                    # the best template of the result (by F) is another rotation or type, with a
                    # lower MITS: fit again to that template and keep the better of the two
                    f2, tf2 = _template_fit(out, s_fit, floor, model_path)
                    s_f2 = f2.score()
                    if s_f2.mits > s_fit.mits:
                        fitted, s_fit = f2, s_f2
                        tf = dict(tf2, template=s_fit.template, alpha=s_fit.alpha)
                    tf["attempts"] = 2
                s_out = s_fit
                info["guard"]["f_result"] = s_out.f_score
            out = fitted
            info["template_fit"] = tf
    if guard != "off":
        # HarmonyScore of the input and of the returned image
        info["harmony"] = {"input": s_in, "result": s_out}
    report(progress, 1.0, "done")
    return HarmonizeResult(
        image=out.image(),
        method=method,
        source=pal,
        target_rgb=np.asarray(tgt_rgb, dtype=np.float32),
        prototypes=protos,
        source_names=src_names,
        target_names=list(color_names(tgt_rgb, model_path=model_path)),
        info=info,
    )
