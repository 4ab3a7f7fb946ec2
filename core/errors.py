"""User-facing error types: each message names the file and the problem in one line."""

import errno


class FaderError(ValueError):
    """Base class for errors caused by user input (files, options, data)."""


class ImageError(FaderError):
    """An image file is missing, unreadable, truncated, not an image or too large."""


class ModelFileError(FaderError):
    """A model file is missing, malformed, fails validation or is unsafe to load."""


class NoFaceError(FaderError):
    """No face usable by the model was found in a photo."""


def printable(text) -> str:
    """`text` with control characters (newlines, terminal escapes, ...) shown as escapes (\\n, \\x1b),
    so that a file name or a model's metadata can neither split a one-line message nor drive the
    terminal."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in s)


def os_reason(exc: OSError) -> str:
    """A short human reason for an OS-level error (no Python class names, no paths)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or exc.__class__.__name__


def without_path(msg: str, path) -> str:
    """`msg` less its leading "PATH: " (errors start with the file's path), for a list or report
    that already names the file."""
    s = str(path) if path is not None else ""
    if s and msg.startswith(s + ": "):
        return msg[len(s) + 2:]
    return msg
