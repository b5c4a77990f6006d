"""Exception types shared by every sempix module.

The command line maps them to exit codes: :class:`InputError` (bad input or usage) -> 2,
:class:`ModelUnavailableError` -> 2 (the message says where to put the file), any other
exception -> 1 (internal error).
"""

from __future__ import annotations


class SempixError(Exception):
    """Base class of all errors sempix raises on purpose."""

    exit_code = 1


class InputError(SempixError, ValueError):
    """The user's input (file, argument, option value) cannot be used.

    The message must be one line that says what is wrong and, where possible, what to do.
    """

    exit_code = 2


class ModelUnavailableError(SempixError):
    """A model file is not available locally and cannot be downloaded."""

    exit_code = 2
