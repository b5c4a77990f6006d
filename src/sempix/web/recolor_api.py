"""Compatibility name: the recolor API now lives in :mod:`sempix.web.routes.recolor`."""

from sempix.web.routes.recolor import (
    MAX_IMAGES,
    SALIENCY_MODELS,
    WORK_PIXELS,
    RecolorSession,
    SolveParams,
    resolve_saliency,
    router,
)

__all__ = ["MAX_IMAGES", "SALIENCY_MODELS", "WORK_PIXELS", "RecolorSession", "SolveParams",
           "resolve_saliency", "router"]
