"""Exception types shared by every sempix module.

The command line maps them to exit codes: :class:`InputError` and its subclasses (bad input or
usage) -> 2, :class:`ModelUnavailableError` -> 2 (the message says where to put the file), any
other exception -> 1 (internal error). The web server maps the *classes* to HTTP status codes in
one table (``sempix.web.common.STATUS``); nothing matches words in messages.

Hierarchy (HTTP status used by the web server in brackets)::

    SempixError                      exit 1  [500]
      InputError (also ValueError)   exit 2  [400]  the user's input cannot be used
        ImageDecodeError                     [400]  corrupt, truncated, undecodable image data
        UnsupportedFormatError               [400]  not an image format / layout sempix reads
        TooLargeError                        [413]  above a size limit (pixels, bytes)
        InvalidRequestError                  [422]  well-formed but unusable request values
        NotFoundError                        [404]  unknown id / item (session, job, file)
          SessionExpiredError                [410]  that session existed but was closed
        ConflictError                        [409]  not possible in the current state
          NotReadyError                      [409]  still being computed: try again later
      ModelUnavailableError          exit 2  [503]  a model file is missing
      MissingDependencyError         exit 2  [501]  an optional package is not installed
      BusyError                      exit 1  [503]  no capacity right now: try again later
      OverBudgetError                exit 1  [507]  needs more memory than the whole budget

Every class takes an optional ``code=`` (a short machine-readable string the web server sends as
``{"error": message, "code": code}``); subclasses have a default ``code`` of their own.
"""

from __future__ import annotations


class SempixError(Exception):
    """Base class of all errors sempix raises on purpose."""

    exit_code = 1
    #: short machine-readable kind sent to web clients next to the message (None: not sent)
    code: str | None = None

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code


class InputError(SempixError, ValueError):
    """The user's input (file, argument, option value) cannot be used.

    The message must be one line that says what is wrong and, where possible, what to do.
    """

    exit_code = 2


class ImageDecodeError(InputError):
    """Image data that cannot be decoded: empty, truncated, corrupt."""

    code = "bad_image"


class UnsupportedFormatError(InputError):
    """Data that is not an image format (or layout, sample type) sempix can read."""

    code = "unsupported_format"


class TooLargeError(InputError):
    """An input above a size limit (pixels of an image, bytes of an upload, target size).

    ``size`` is the (width, height) that was refused when the limit is on pixels (else None), so
    a front can word its own message without parsing this one.
    """

    code = "too_large"

    def __init__(
        self, *args: object, code: str | None = None, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__(*args, code=code)
        self.size = size


class InvalidRequestError(InputError):
    """Request values that are well-formed but unusable (too deep, too many points, empty)."""

    code = "invalid_request"


class NotFoundError(InputError):
    """An unknown id or item (session, job, result file, image index)."""

    code = "not_found"


class SessionExpiredError(NotFoundError):
    """A session that existed but was closed (deleted or evicted to free memory)."""

    code = "session_gone"


class ConflictError(InputError):
    """The request is not possible in the current state (wrong kind of session, cancelled job)."""

    code = "conflict"


class NotReadyError(ConflictError):
    """The result is still being computed: try again when the job is done."""

    code = "not_ready"


class ModelUnavailableError(SempixError):
    """A model file is not available locally and cannot be downloaded."""

    exit_code = 2


class MissingDependencyError(SempixError):
    """An optional package needed for this feature is not installed."""

    exit_code = 2
    code = "missing_dependency"


class BusyError(SempixError):
    """No capacity right now (e.g. memory held by other requests): try again in a moment."""

    code = "busy"


class OverBudgetError(SempixError):
    """The work needs more memory than the whole budget allows (never fits, whatever the load)."""

    code = "over_budget"
