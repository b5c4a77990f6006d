"""Registry of the model files sempix knows how to find, verify and download."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """One model file.

    Attributes
    ----------
    name : registry name (``sempix models fetch NAME``).
    filename : file name looked up in ``SEMPIX_MODEL_DIR`` / the cache.
    sha256 : full hex digest, or a hex *prefix* when only a prefix is published (torchvision
        names its files ``<name>-<first 8 hex of sha256>.pth``; we check that prefix).
    size : size in bytes, or None when not known in advance.
    licence : licence of the weights.
    urls : public download origins, tried in order.
    description : one line for ``sempix models list``.
    aliases : other file names accepted for the same content in a model directory.
    hf_repo : Hugging Face Hub repository id when the model is a *folder* fetched from the Hub
        (``filename`` is then the folder name; see :mod:`sempix.models.hub`).
    hf_revision : the pinned commit hash of ``hf_repo`` (None = ``main``, unpinned).
    hf_files : files of the folder; a ``|`` separates alternatives tried in order
        (``"model.safetensors|pytorch_model.bin"``).
    """

    name: str
    filename: str
    sha256: str
    size: int | None
    licence: str
    urls: tuple[str, ...]
    description: str
    aliases: tuple[str, ...] = field(default_factory=tuple)
    hf_repo: str | None = None
    hf_revision: str | None = None
    hf_files: tuple[str, ...] = field(default_factory=tuple)


_UCALYPTUS = (
    "https://raw.githubusercontent.com/ucalyptus/SIH-Stargazers/"
    "34dc5cb5d4ef1c0a3ae6c8c0f3093676fa26c91f/models/segmentation/"
)

# SegFormer ADE20K checkpoints (Xie et al. 2021) on the Hugging Face Hub. Revisions: the b0 pin
# is the commit whose model.safetensors third-party code pins (489d5cd...); no commit hash of
# b1..b5 could be looked up from this project's machines, so they follow ``main`` until pinned
# here (the commit actually fetched is recorded in the folder's .sempix-source.json).
_SEGFORMER = [
    # (variant, input size, revision, ADE20K val mIoU single scale as reproduced by mmsegmentation,
    #  configs/segformer/README.md)
    ("b0", 512, "489d5cd81a0b59fab9b7ea758d3548ebe99677da", 37.41),
    ("b1", 512, None, 40.97),
    ("b2", 512, None, 45.58),
    ("b3", 512, None, 47.82),
    ("b4", 512, None, 48.46),
    ("b5", 640, None, 49.62),
]


def _segformer_specs() -> list[ModelSpec]:
    out = []
    for v, size, rev, miou in _SEGFORMER:
        repo = f"nvidia/segformer-{v}-finetuned-ade-{size}-{size}"
        out.append(ModelSpec(
            name=f"segformer-{v}",
            filename=repo.split("/", 1)[1],
            sha256="",
            size=None,
            licence="NVIDIA Source Code License for SegFormer (research / non-commercial)",
            urls=(f"https://huggingface.co/{repo}",),
            description=(f"SegFormer-{v.upper()} ADE20K ({miou} mIoU, mmsegmentation), "
                         f"{size}x{size}, Hugging Face Hub"
                         + ("" if rev else " (revision not pinned)")),
            hf_repo=repo,
            hf_revision=rev,
            hf_files=("config.json", "preprocessor_config.json",
                      "model.safetensors|pytorch_model.bin"),
        ))
    return out


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="deeplabv3-mnv2-ade20k",
            filename="deeplabv3_mnv2_ade20k.tflite",
            sha256="9476784566f88bf0bdc3169f0012fb7d08857b325811d8c1aaf5ada1c0d4e4f9",
            size=2415896,
            licence="Apache-2.0",
            urls=(
                _UCALYPTUS + "lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite",
                (
                    "https://tfhub.dev/sayakpaul/lite-model/deeplabv3-mobilenetv2-ade20k/1/default/1"
                    "?lite-format=tflite"
                ),
            ),
            description=(
                "DeepLabV3+ MobileNetV2, ADE20K (150 classes), TFLite int8 weights, 513x513 input"
            ),
            aliases=("lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite",),
        ),
        ModelSpec(
            name="deeplabv3-mnv2-ade20k-labels",
            filename="deeplabv3_mnv2_ade20k_labels.txt",
            sha256="7d7a610c0c83f2fc60947759f23d5a30c9cbe8232de7d504925afe48e3f26ec8",
            size=1529,
            licence="Apache-2.0",
            urls=(_UCALYPTUS + "labels.txt",),
            description="class names (index<TAB>name) of deeplabv3-mnv2-ade20k",
            aliases=("labels.txt",),
        ),
        ModelSpec(
            name="w2c",
            filename="w2c_vandeweijer2009.mat",
            sha256="97b1f0ecd0fbecd122de319eacf3b5e23293defb06c40aa37a0446fb11d9cf45",
            size=2734783,
            licence="research use (van de Weijer et al. 2009, ColorNaming code)",
            urls=(
                (
                    "https://raw.githubusercontent.com/davidserra9/namedcurves/main/models/"
                    "joost_color_naming.mat"
                ),
            ),
            description="colour-naming model (van de Weijer 2009): 32768 x 11 name probabilities",
            aliases=("joost_color_naming.mat", "w2c.mat"),
        ),
        ModelSpec(
            name="vgg19",
            filename="vgg19-dcbb9e9d.pth",
            sha256="dcbb9e9d",  # torchvision publishes the sha256 prefix in the file name
            size=None,
            licence="CC BY 4.0 (VGG, Simonyan & Zisserman) / BSD (torchvision)",
            urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
            description="torchvision VGG-19 ImageNet weights (full network)",
        ),
        ModelSpec(
            name="vgg19-normalised-relu3_1",
            filename="vgg19_normalised_to_relu3_1.pth",
            sha256="ff8506173d3a17e7b0fbfbff242c00b6827cfbcd7c21852b46806ae6a3fd7b09",
            size=2223308,
            licence="Apache-2.0 (pietrocarbo/deep-transfer)",
            urls=(
                (
                    "https://raw.githubusercontent.com/pietrocarbo/deep-transfer/master/models/"
                    "autoencoder_vgg19/vgg19_3/vgg_normalised_conv3_1.pth"
                ),
            ),
            description="normalised (Caffe) VGG-19 up to relu3_1, nn.Sequential state dict",
            aliases=("vgg_normalised_conv3_1.pth",),
        ),
        ModelSpec(
            name="niqe-pris-params",
            filename="niqe_pris_params.npz",
            sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
            size=11850,
            licence="Apache-2.0 (BasicSR); NIQE MATLAB release parameters (Mittal et al. 2013)",
            urls=(
                (
                    "https://raw.githubusercontent.com/XPixelGroup/BasicSR/"
                    "8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a/basicsr/metrics/niqe_pris_params.npz"
                ),
            ),
            description="NIQE pristine model: mu (36), cov (36x36), 7x7 Gaussian window",
        ),
        ModelSpec(
            name="brisque-svm",
            filename="brisque_svm.txt",
            sha256="19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d",
            size=351414,
            licence="Apache-2.0 (PyPI brisque 0.2.0, rehanguha/brisque); LIVE BRISQUE model",
            urls=(
                "https://raw.githubusercontent.com/rehanguha/brisque/master/brisque/models/svm.txt",
            ),
            description="BRISQUE epsilon-SVR (LIBSVM text, RBF, 36 features) trained on LIVE",
            aliases=("svm.txt",),
        ),
        ModelSpec(
            name="brisque-range",
            filename="brisque_range.pickle",
            sha256="a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9",
            size=686,
            licence="Apache-2.0 (PyPI brisque 0.2.0, rehanguha/brisque); LIVE BRISQUE ranges",
            urls=(
                (
                    "https://raw.githubusercontent.com/rehanguha/brisque/master/brisque/models/"
                    "normalize.pickle"
                ),
            ),
            description="BRISQUE feature ranges (min_/max_ lists, pickled dict) for the SVR above",
            aliases=("normalize.pickle",),
        ),
        ModelSpec(
            name="alexnet",
            filename="alexnet-owt-7be5be79.pth",
            sha256="7be5be79",  # torchvision publishes the sha256 prefix in the file name
            size=None,
            licence="BSD (torchvision); AlexNet, Krizhevsky et al. 2012",
            urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
            description="torchvision AlexNet ImageNet weights (the LPIPS trunk)",
        ),
        ModelSpec(
            name="lpips-alex",
            filename="lpips_alex_v0.1.pth",
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            size=6009,
            licence="BSD-2-Clause (richzhang/PerceptualSimilarity, PyPI lpips 0.1.4)",
            urls=(
                (
                    "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/"
                    "weights/v0.1/alex.pth"
                ),
            ),
            description="LPIPS v0.1 linear heads for AlexNet (lin0..lin4)",
            aliases=("alex.pth",),
        ),
        ModelSpec(
            name="u2netp",
            filename="u2netp.onnx",
            sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            size=4574861,
            licence="Apache-2.0 (U-2-Net, Qin et al. 2020); ONNX export by rembg (MIT)",
            urls=(
                "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2netp.onnx",
                # mirror of the same file (same size and sha256, recorded as its LFS object id)
                "https://huggingface.co/BritishWerewolf/U-2-Netp/resolve/main/onnx/model.onnx",
            ),
            description=(
                "U^2-Net-p salient-object detector (learned saliency), ONNX, 1x3x320x320 input"
            ),
        ),
    ]
    + _segformer_specs()
}


def get_spec(name: str) -> ModelSpec:
    """Return the registry entry ``name`` or raise a ValueError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None
