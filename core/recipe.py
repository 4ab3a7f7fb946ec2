"""Recipes: an edit saved as JSON (the window's Save edit as recipe…) and applied by `batch`.

A recipe is ``{"format": "fader-recipe", "version": 1, "model": NAME, "values": {attribute: value}}``
with the values of the attributes the edit changed; every photo keeps its own value for the others.
"""
from __future__ import annotations

import json
import math
import reprlib
from pathlib import Path
from typing import Mapping

from .attributes import did_you_mean, parse_value, quoted, value_to_code
from .errors import FaderError

RECIPE_FORMAT = "fader-recipe"
RECIPE_VERSION = 1
MAX_RECIPE_BYTES = 1 << 20


def make_recipe(values: Mapping, model_name: str = "") -> dict:
    """The recipe object for a values dict."""
    return {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, "model": model_name,
            "values": {k: (list(map(float, v)) if isinstance(v, (list, tuple)) else float(v)) for k, v in values.items()}}


def load_recipe(path, attributes) -> dict:
    """Read and validate a recipe file -> values dict.

    A value is a number (slider position), a value label ("yes") or, for an attribute with more
    than two values, a list of weights. Raises FaderError naming the file and the problem.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_dir() and not p.is_file():
            # a pipe would block the read until a writer comes; /dev/zero would fill the memory
            raise FaderError(f"{p}: recipe is not a regular file (a pipe or a device)")
        if p.is_file() and p.stat().st_size > MAX_RECIPE_BYTES:
            raise FaderError(f"{p}: recipe file is {p.stat().st_size:,} bytes; a recipe is a few hundred")
        text = p.read_text(encoding="utf-8-sig")   # Windows editors may start the file with a BOM
    except FileNotFoundError:
        raise FaderError(f"{p}: recipe file not found") from None
    except IsADirectoryError:
        raise FaderError(f"{p}: recipe is a folder, not a file") from None
    except UnicodeDecodeError:   # Python's "'utf-8' codec can't decode byte 0xff in position 0" was shown
        raise FaderError(f"{p}: recipe is not a text file (a recipe is JSON text, as File ▸ Save edit as recipe "
                         "writes it)") from None
    except OSError as e:
        raise FaderError(f"{p}: cannot read recipe ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FaderError(f"{p}: recipe is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise FaderError(f"{p}: recipe is not a usable JSON file (nested too deeply)") from None
    except ValueError:   # an integer of thousands of digits (Python's int conversion limit)
        raise FaderError(f"{p}: recipe is not a usable JSON file (a number too long)") from None
    return recipe_values(data, attributes, name=str(p))


def recipe_values(data, attributes, name: str = "recipe") -> dict:
    """Validate a parsed recipe object against the model's attributes -> values dict."""
    if not isinstance(data, dict):
        raise FaderError(f"{name}: a recipe must be a JSON object")
    if data.get("format") != RECIPE_FORMAT:
        raise FaderError(f"{name}: not a Fader recipe ('format' must be {RECIPE_FORMAT!r})")
    ver = data.get("version")
    if not isinstance(ver, int) or isinstance(ver, bool) or ver < 1:
        raise FaderError(f"{name}: recipe 'version' must be a positive integer")
    if ver > RECIPE_VERSION:
        raise FaderError(f"{name}: recipe version {ver} is newer than this app supports ({RECIPE_VERSION})")
    vals = data.get("values")
    if not isinstance(vals, dict):
        raise FaderError(f"{name}: recipe 'values' must be an object {{attribute: value}}")
    by_name = {a.name.lower(): a for a in attributes}
    out = {}
    for key, v in vals.items():
        a = by_name.get(str(key).lower())
        if a is None:
            names = [x.name for x in attributes]
            raise FaderError(f"{name}: unknown attribute {_short(key)}{did_you_mean(str(key)[:200], names)}; "
                             f"the model has {quoted(names)}")
        try:
            if isinstance(v, str):
                out[a.name] = parse_value(a, v)
            elif isinstance(v, bool) or not isinstance(v, (int, float, list)):
                raise FaderError(f"value for {a.name!r} must be a number, a label or a list of numbers, got {_short(v)}")
            else:
                nums = v if isinstance(v, list) else [v]
                if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and _finite(x) for x in nums):
                    raise FaderError(f"value for {a.name!r} must be finite numbers, got {_short(v)}")
                value_to_code(a, v)  # checks the length / index
                out[a.name] = [float(x) for x in v] if isinstance(v, list) else float(v)
        except FaderError as e:
            raise FaderError(f"{name}: {e}") from None
    return out


def _finite(x) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:   # an integer too large for a float
        return False


def _short(v) -> str:
    """repr for a message: long numbers and deep or long lists cut short (reprlib), one line."""
    return reprlib.repr(v)
