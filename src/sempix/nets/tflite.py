"""Convert the ADE20K DeepLabV3+ MobileNetV2 TFLite flatbuffer into a PyTorch state dict.

The converter reads the flatbuffer directly (the schema bindings shipped with ``ai-edge-litert``),
walks the operator graph and maps every weight onto :class:`sempix.nets.deeplab.DeepLabV3Plus`:

* ``CONV_2D`` (OHWI) and ``DEPTHWISE_CONV_2D`` (1HWC) weights -> ``nn.Conv2d`` (OIHW /
  C1HW); int8/uint8 weights are dequantized (``(q - zero_point) * scale``, per tensor or per
  channel along ``quantized_dimension``), float16 widened; a ``DEQUANTIZE`` op in front of a
  weight is followed to its constant;
* ``SPACE_TO_BATCH_ND`` -> depthwise (``VALID``) -> ``BATCH_TO_SPACE_ND`` is a dilated
  convolution: its block shape is the dilation, and the paddings/crops are checked to equal
  ``SAME`` padding; the ``MUL``/``ADD`` pair after it (the batch norm TFLite left unfolded)
  is folded into the weights and bias;
* fused activations are checked against the architecture (ReLU6 in the encoder, ReLU in
  ASPP/decoder, none on projections and logits), ``AVERAGE_POOL_2D`` must cover the whole map
  (image pooling), ``RESIZE_BILINEAR`` must be ``align_corners=True, half_pixel_centers=False``.

The architecture (:class:`DeepLabConfig`: channels, strides, dilations, the low-level block) is
read from the graph, not assumed. Pure function of the file's bytes: the same bytes give
bit-identical tensors. Files are read elsewhere (:mod:`sempix.features.ade20k_torch`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sempix.nets.deeplab import BlockSpec, DeepLabConfig

__all__ = ["TFLiteConversionError", "convert_deeplab_tflite", "read_graph"]

# TFLite enums (schema.fbs)
_PAD_SAME, _PAD_VALID = 0, 1
_ACT = {0: "none", 1: "relu", 3: "relu6"}
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


class TFLiteConversionError(ValueError):
    """The file is not the expected DeepLabV3+ MobileNetV2 graph."""


@dataclass
class Op:
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict


@dataclass
class Graph:
    ops: list[Op]
    tensors: list
    consts: dict[int, np.ndarray]  # constant tensors (dequantized to float32 when quantized)
    shapes: dict[int, tuple]

    def producer(self, t: int) -> Op | None:
        for op in self.ops:
            if t in op.outputs:
                return op
        return None

    def consumers(self, t: int) -> list[Op]:
        return [op for op in self.ops if t in op.inputs]


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as s
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise TFLiteConversionError(f"reading TFLite files needs ai-edge-litert ({exc})") from exc
    return s


def _dequantize(raw: np.ndarray, q) -> np.ndarray:
    a = raw.astype(np.float32)
    if q is None or q.scale is None or len(q.scale) == 0:
        return a
    scale = np.asarray(q.scale, np.float32)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros_like(scale), np.float32)
    if scale.size == 1:
        return (a - zp.reshape(())) * scale.reshape(())
    shape = [1] * a.ndim
    shape[q.quantizedDimension] = scale.size
    return (a - zp.reshape(shape)) * scale.reshape(shape)


def read_graph(data: bytes) -> Graph:
    """Parse a TFLite flatbuffer: operators (name, inputs, outputs, options) and constants.

    Constants that are quantized (int8/uint8 with scales) are returned dequantized (float32);
    float16 constants are widened to float32; integer constants without scales stay integers.
    """
    s = _schema()
    try:
        model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    except Exception as exc:
        raise TFLiteConversionError(f"not a TFLite flatbuffer ({type(exc).__name__})") from exc
    if not model.subgraphs:
        raise TFLiteConversionError("the model has no subgraph")
    g = model.subgraphs[0]
    codes = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    consts: dict[int, np.ndarray] = {}
    shapes: dict[int, tuple] = {}
    for i, t in enumerate(g.tensors):
        shape = tuple(int(v) for v in (t.shape if t.shape is not None else ()))
        shapes[i] = shape
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        raw = None
        if buf is not None and buf.data is not None and len(buf.data):
            raw = bytes(np.asarray(buf.data, np.uint8))
        elif buf is not None and getattr(buf, "offset", 0) > 1 and getattr(buf, "size", 0):
            raw = data[buf.offset : buf.offset + buf.size]
        if raw is None:
            continue
        dt = _DTYPES.get(t.type)
        if dt is None:
            raise TFLiteConversionError(f"tensor {t.name!r}: unsupported type code {t.type}")
        arr = np.frombuffer(raw, dt).reshape(shape)
        q = t.quantization
        if dt in (np.int8, np.uint8) and q is not None and q.scale is not None and len(q.scale):
            arr = _dequantize(arr, q)
        elif dt == np.float16:
            arr = arr.astype(np.float32)
        consts[i] = np.array(arr)  # own, writable copy
    ops = []
    for k, op in enumerate(g.operators):
        oc = model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        opt = op.builtinOptions
        options = dict(vars(opt)) if opt is not None else {}
        ops.append(
            Op(
                k,
                codes.get(code, str(code)),
                [int(i) for i in op.inputs],
                [int(i) for i in op.outputs],
                options,
            )
        )
    return Graph(ops, list(g.tensors), consts, shapes)


@dataclass
class _Conv:
    """One convolution after folding: torch layout weight, bias, and how it was applied."""

    kind: str  # "conv" | "depthwise"
    weight: np.ndarray  # (O, I, kh, kw)
    bias: np.ndarray
    stride: int
    dilation: int
    act: str
    inp: int  # input activation tensor (before any SPACE_TO_BATCH_ND)
    out: int  # output activation tensor (after BATCH_TO_SPACE_ND / folded MUL, ADD)
    op: int


def _weight(g: Graph, t: int) -> np.ndarray:
    if t in g.consts:
        return g.consts[t]
    p = g.producer(t)
    if p is not None and p.name == "DEQUANTIZE" and p.inputs[0] in g.consts:
        return g.consts[p.inputs[0]]
    raise TFLiteConversionError(f"weight tensor {t} is not a constant")


def _same_total(n: int, k: int, d: int) -> int:
    return (k - 1) * d


def _convs(g: Graph) -> list[_Conv]:
    out: list[_Conv] = []
    for op in g.ops:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        o = op.options
        x, wt, bt = op.inputs[:3]
        w = _weight(g, wt)
        b = g.consts.get(bt) if bt >= 0 else None
        b = (
            np.zeros(w.shape[0] if op.name == "CONV_2D" else w.shape[3], np.float32)
            if b is None
            else b
        )
        stride = int(o.get("strideH", 1))
        if int(o.get("strideW", 1)) != stride:
            raise TFLiteConversionError(f"op {op.index}: unequal strides")
        dil = int(o.get("dilationHFactor", 1))
        act = _ACT.get(int(o.get("fusedActivationFunction", 0)))
        if act is None:
            raise TFLiteConversionError(f"op {op.index}: unsupported fused activation")
        inp, res = x, op.outputs[0]
        kh = w.shape[1]
        p = g.producer(x)
        if p is not None and p.name == "SPACE_TO_BATCH_ND":
            # dilated convolution written as space-to-batch / VALID conv / batch-to-space
            block = g.consts[p.inputs[1]].astype(int).ravel()
            pads = g.consts[p.inputs[2]].astype(int).reshape(2, 2)
            if block[0] != block[1] or o.get("padding") != _PAD_VALID or stride != 1:
                raise TFLiteConversionError(f"op {op.index}: unexpected space-to-batch convolution")
            dil = int(block[0])
            if any(pads[i, 0] != (kh - 1) * dil // 2 for i in range(2)):
                raise TFLiteConversionError(f"op {op.index}: space-to-batch padding is not SAME")
            inp = p.inputs[0]
            cons = g.consumers(res)
            if len(cons) != 1 or cons[0].name != "BATCH_TO_SPACE_ND":
                raise TFLiteConversionError(f"op {op.index}: no BATCH_TO_SPACE_ND after it")
            crops = g.consts[cons[0].inputs[2]].astype(int).reshape(2, 2)
            if crops[:, 0].any():
                raise TFLiteConversionError(f"op {op.index}: batch-to-space crops the start")
            res = cons[0].outputs[0]
        elif o.get("padding") != _PAD_SAME and kh > 1:
            raise TFLiteConversionError(f"op {op.index}: VALID padding on a {kh}x{kh} convolution")
        if op.name == "CONV_2D":
            weight = w.transpose(0, 3, 1, 2)
            kind = "conv"
        else:
            if w.shape[0] != 1 or int(o.get("depthMultiplier", 1)) != 1:
                raise TFLiteConversionError(f"op {op.index}: depth multiplier != 1")
            weight = w.transpose(3, 0, 1, 2)
            kind = "depthwise"
        weight = weight.astype(np.float32)
        bias = np.asarray(b, np.float32).copy()
        # unfolded batch norm: MUL by a constant vector, then ADD a constant vector
        cons = g.consumers(res)
        if act == "none" and len(cons) == 1 and cons[0].name == "MUL":
            mul = cons[0]
            mv = [g.consts[i] for i in mul.inputs if i in g.consts]
            nxt = g.consumers(mul.outputs[0])
            if len(mv) == 1 and len(nxt) == 1 and nxt[0].name == "ADD":
                av = [g.consts[i] for i in nxt[0].inputs if i in g.consts]
                if len(av) == 1:
                    m = mv[0].astype(np.float32).ravel()
                    a = av[0].astype(np.float32).ravel()
                    weight = weight * m[:, None, None, None]
                    bias = bias * m + a
                    act = _ACT[int(nxt[0].options.get("fusedActivationFunction", 0))]
                    res = nxt[0].outputs[0]
        out.append(
            _Conv(kind, np.ascontiguousarray(weight), bias, stride, dil, act, inp, res, op.index)
        )
    return out


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise TFLiteConversionError(msg)


def convert_deeplab_tflite(data: bytes) -> tuple[DeepLabConfig, dict]:
    """Convert the bytes of a DeepLabV3+ MobileNetV2 TFLite file.

    Parameters
    ----------
    data : the ``.tflite`` file's content

    Returns
    -------
    (config, state_dict)
        ``config`` read from the graph; ``state_dict`` maps every parameter name of
        ``DeepLabV3Plus(config)`` to a float32 CPU tensor.

    Raises
    ------
    TFLiteConversionError
        If the graph is not a DeepLabV3+ MobileNetV2 of the expected form.
    """
    import torch

    g = read_graph(data)
    convs = _convs(g)
    names = [op.name for op in g.ops]
    _check("AVERAGE_POOL_2D" in names, "no AVERAGE_POOL_2D (image pooling) in the graph")
    for op in g.ops:
        if op.name == "RESIZE_BILINEAR":
            _check(
                bool(op.options.get("alignCorners")) and not op.options.get("halfPixelCenters"),
                f"op {op.index}: RESIZE_BILINEAR is not align_corners=True",
            )
        if op.name == "AVERAGE_POOL_2D":
            ins = g.shapes[op.inputs[0]]
            _check(
                op.options.get("filterHeight") == ins[1]
                and op.options.get("filterWidth") == ins[2],
                f"op {op.index}: AVERAGE_POOL_2D is not a global pooling",
            )
    pool_op = next(op for op in g.ops if op.name == "AVERAGE_POOL_2D")
    # encoder: convs before the pooling op
    enc = [c for c in convs if c.op < pool_op.index]
    head = [c for c in convs if c.op > pool_op.index]
    sd: dict[str, np.ndarray] = {}

    def put(name: str, c: _Conv, act: str) -> None:
        _check(c.act == act, f"op {c.op} ({name}): activation {c.act}, expected {act}")
        sd[name + ".weight"] = c.weight
        sd[name + ".bias"] = c.bias

    stem = enc[0]
    _check(
        stem.kind == "conv" and stem.weight.shape[1] == 3 and stem.stride == 2, "unexpected stem"
    )
    put("stem", stem, "relu6")
    blocks: list[BlockSpec] = []
    cin = stem.weight.shape[0]
    i = 1
    dw_out: list[int] = []  # output tensor of each block's depthwise conv
    while i < len(enc):
        prefix = f"blocks.{len(blocks)}"
        c = enc[i]
        expand = 1
        if c.kind == "conv":
            _check(c.weight.shape[2:] == (1, 1), f"op {c.op}: expected a 1x1 expansion")
            expand = c.weight.shape[0] // cin
            _check(expand * cin == c.weight.shape[0], f"op {c.op}: expansion is not a multiple")
            put(prefix + ".expand", c, "relu6")
            i += 1
            c = enc[i]
        _check(c.kind == "depthwise", f"op {c.op}: expected a depthwise convolution")
        put(prefix + ".depthwise", c, "relu6")
        dw = c
        dw_out.append(c.out)
        i += 1
        c = enc[i]
        _check(
            c.kind == "conv" and c.weight.shape[2:] == (1, 1), f"op {c.op}: expected a projection"
        )
        put(prefix + ".project", c, "none")
        blocks.append(BlockSpec(expand, int(c.weight.shape[0]), dw.stride, dw.dilation))
        cin = int(c.weight.shape[0])
        i += 1
    _check(len(head) == 9, f"expected 9 convolutions after the encoder, found {len(head)}")
    pool_conv, aspp_conv, aspp_proj, low, dw0, pw0, dw1, pw1, cls = head
    _check(pool_conv.inp == pool_op.outputs[0], "the image-pooling conv does not follow the pool")
    put("aspp.pool_conv", pool_conv, "relu")
    put("aspp.conv", aspp_conv, "relu")
    put("aspp.project", aspp_proj, "relu")
    _check(low.inp in dw_out, "the decoder's low-level input is not a depthwise output")
    put("decoder.low_level", low, "relu")
    put("decoder.dw0", dw0, "relu")
    put("decoder.pw0", pw0, "relu")
    put("decoder.dw1", dw1, "relu")
    put("decoder.pw1", pw1, "relu")
    put("classifier", cls, "none")
    cfg = DeepLabConfig(
        num_classes=int(cls.weight.shape[0]),
        stem_channels=int(stem.weight.shape[0]),
        blocks=tuple(blocks),
        aspp_channels=int(aspp_proj.weight.shape[0]),
        low_level_block=dw_out.index(low.inp),
        low_level_channels=int(low.weight.shape[0]),
        decoder_channels=int(pw1.weight.shape[0]),
    )
    n_res = sum(1 for op in g.ops if op.name == "ADD" and all(t not in g.consts for t in op.inputs))
    cins = [cfg.stem_channels] + [b.out for b in blocks[:-1]]
    expected_res = sum(1 for b, ci in zip(blocks, cins) if b.stride == 1 and b.out == ci)
    _check(
        n_res == expected_res, f"{n_res} residual additions in the graph, expected {expected_res}"
    )
    return cfg, {
        k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()
    }
