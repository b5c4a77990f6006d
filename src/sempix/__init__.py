"""sempix: semantics-aware image editing.

Data flows one way: image -> features -> distances/energies -> tool -> output.

Subpackages
-----------
image     : reading/writing images (float32 RGB in [0, 1], alpha, ICC, atomic writes)
models    : model store (registry, cache, download, checksum)
features  : semantic feature backends (ade20k, segformer, lowlevel) + post-processing + cache
distance  : energy maps and pixel distances (the shared core)
carve, mask, softseg, palette, recolor, retarget : the tools
cli, web  : command line and local web editor
"""

__version__ = "0.1.0"

from sempix.errors import InputError, ModelUnavailableError, SempixError  # noqa: F401
