"""One ``APIRouter`` per tool of the web app; :func:`sempix.web.app.create_app` includes them all.

``core`` (pages, config, image upload, sessions), ``jobs`` (progress, server-sent events, cancel,
result files), ``mask``, ``resize``, ``softseg``, ``palette``, ``recolor``, ``adjust`` (styles).
"""

ROUTERS = ("core", "jobs", "mask", "resize", "softseg", "palette", "recolor", "adjust")

__all__ = ["ROUTERS"]
