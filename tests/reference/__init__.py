"""Slow, obviously-correct reference implementations the package kernels are tested against.

Never imported by the package (``tests/test_layering.py`` walks only ``src/sempix``).
"""
