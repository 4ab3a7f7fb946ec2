"""Attribute metadata and the conversion between slider values and decoder codes.

An attribute is categorical with n >= 2 values. A binary attribute is driven by one real slider
value alpha (0 = first value, 1 = second) and decoded with the code [1 - alpha, alpha]; alpha may
leave [0, 1] to exaggerate. An attribute with n > 2 values is driven by its code directly (a list of
n weights, one-hot for a pure value).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence, Union

if TYPE_CHECKING:
    import torch

from .errors import FaderError

Value = Union[float, list]


@dataclass(frozen=True)
class Attribute:
    """One categorical attribute: its name, value labels and recommended slider range."""

    name: str
    values: tuple = ("no", "yes")
    range: tuple = (-1.0, 2.0)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise FaderError(f"attribute name must be a non-empty string, got {self.name!r}")
        # --set, recipes and the window strip what they are given: ' Male' (a model trained from a
        # folder whose name ends in a space) could never be named
        object.__setattr__(self, "name", self.name.strip())
        vals = tuple(str(v) for v in self.values)
        if len(vals) < 2:
            raise FaderError(f"attribute {self.name!r} needs at least 2 values, got {len(vals)}")
        if len(set(vals)) != len(vals):
            raise FaderError(f"attribute {self.name!r} has duplicate values {vals}")
        lo, hi = (float(self.range[0]), float(self.range[1]))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise FaderError(f"attribute {self.name!r} has an invalid slider range {self.range!r}")
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "range", (lo, hi))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def is_binary(self) -> bool:
        return len(self.values) == 2

    def to_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values), "range": list(self.range)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Attribute":
        return cls(name=d["name"], values=tuple(d["values"]), range=tuple(d.get("range", (-1.0, 2.0))))


#: How far beyond its slider range a value may go, in widths of that range (range -1..2: -10..11).
#: Enough to exaggerate; far past it the decoder's output saturates and the face turns into a
#: black or white patch (measured on the default model: at 20 the crop differs from the plain
#: reconstruction by 55-90 grey levels on average), so such values are refused, not clamped.
EXAGGERATION_WIDTHS = 3.0


def value_limits(attr: Attribute) -> tuple:
    """The accepted (lowest, highest) slider value (or code weight) of an attribute."""
    lo, hi = attr.range
    w = EXAGGERATION_WIDTHS * (hi - lo)
    return lo - w, hi + w


def check_value(attr: Attribute, v: float, what: str = "value") -> float:
    """`v` as a float, or FaderError when it is not finite or outside `value_limits(attr)`."""
    v = float(v)
    lo, hi = value_limits(attr)
    if not math.isfinite(v):
        raise FaderError(f"{what} for {attr.name!r} must be finite, got {v!r}")
    if not lo <= v <= hi:
        raise FaderError(f"{what} {v:g} for {attr.name!r} is outside {lo:g} .. {hi:g} (the slider range "
                         f"{attr.range[0]:g} .. {attr.range[1]:g} widened {EXAGGERATION_WIDTHS:g} times its "
                         "width each way; further out the face turns into a flat patch)")
    return v


def listed(items: Iterable[str], last: str = "and") -> str:
    """Texts joined as a sentence lists them: "a, b and c" (`last` "or": "a, b or c")."""
    items = [str(x) for x in items]
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def quoted(names: Iterable[str], last: str = "and", most: int | None = None) -> str:
    """Names as a message lists them, in the order given: "'Smiling', 'Male' and 'Young'". Each is
    quoted, so that a name holding a comma, a space, an "=", " and " or a quote (a model trained
    from the user's folders) still reads as one name. With `most`, the names past it are counted:
    "'a', 'b' and 3 more"."""
    names = [repr(str(n)) for n in names]
    if most is not None and len(names) > most:
        return f"{', '.join(names[:most])} {last} {len(names) - most} more"
    return listed(names, last)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun in the number it takes: "1 photo", "2 photos", "0 photos" (`plural` where
    adding "s" is wrong: counted(3, "copy", "copies"))."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def did_you_mean(text: str, known: Iterable[str]) -> str:
    """" (did you mean 'Smiling'?)": the one of `known` closest to `text`, letter case aside (names
    and labels are matched regardless of it); "" when none is close."""
    import difflib
    lower = {}
    for k in known:
        lower.setdefault(str(k).strip().lower(), str(k))
    t = str(text).strip().lower()
    near = difflib.get_close_matches(t, list(lower), n=1, cutoff=0.6)   # 'Smile' for 'Smiling' reads 0.67
    if not near and len(t) >= 3:
        # a name cut short or a part of one: 'Mouth' for 'Mouth_Slightly_Open', 'glasses' for 'Eyeglasses'
        near = [k for k in lower if k.startswith(t)] or [k for k in lower if t in k]
        near = near if len(near) == 1 else []
    return f" (did you mean {lower[near[0]]!r}?)" if near else ""


def unknown_attribute(name: str, attributes: Sequence[Attribute]) -> str:
    """The message for an attribute name the model lacks: the name, the model's closest one and the
    model's names in its own order (the window's faders)."""
    names = [a.name for a in attributes]
    return f"unknown attribute {name.strip()!r}{did_you_mean(name, names)}; the model has {quoted(names)}"


def own_value_wording(attr: Attribute, given: str) -> str:
    """The refusal of `given` as a face's own value of `attr`, which is one of its pure values (a
    correction of the classifier's reading), whatever the slider range."""
    numbers = listed((str(i) for i in range(attr.n)), "or") if attr.n <= 5 else f"0 .. {attr.n - 1}"
    return f"{attr.name}: a face's own value is {numbers} ({quoted(attr.values, 'or')}), not {given}"


def default_value(attr: Attribute) -> Value:
    """The neutral value: the first value of the attribute (alpha = 0 / one-hot on value 0)."""
    if attr.is_binary:
        return 0.0
    return [1.0] + [0.0] * (attr.n - 1)


def value_to_code(attr: Attribute, value: Value) -> list:
    """The decoder code (n floats) for a slider value."""
    if attr.is_binary:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise FaderError(f"attribute {attr.name!r} takes one number, got {value!r}")
            return [check_value(attr, value[0], "weight"), check_value(attr, value[1], "weight")]
        a = check_value(attr, value)
        return [1.0 - a, a]
    if isinstance(value, (int, float)):
        # A number for a multi-valued attribute selects a value by index.
        idx = int(round(value))
        if not 0 <= idx < attr.n:
            raise FaderError(f"attribute {attr.name!r} has {attr.n} values; index {value} is out of range")
        code = [0.0] * attr.n
        code[idx] = 1.0
        return code
    code = [check_value(attr, v, "weight") for v in value]
    if len(code) != attr.n:
        raise FaderError(f"attribute {attr.name!r} needs {attr.n} weights, got {len(code)}")
    return code


def towards(code: Sequence[float], target: int, t: float) -> list:
    """A code moved from `code` towards the pure value `target`: t = 0 is `code`, 1 the one-hot code
    of `target`, beyond 1 exaggerates (a fader of an attribute with more than two values, a sweep)."""
    t = float(t)
    return [(1.0 - t) * float(c) + t * (1.0 if j == target else 0.0) for j, c in enumerate(code)]


#: Two values whose codes differ by no more than this are the same value (the one "changed?" rule).
SAME_VALUE_TOLERANCE = 1e-9


def same_value(attr: Attribute, a: Value, b: Value) -> bool:
    """Whether two values of `attr` decode the same: their codes agree within SAME_VALUE_TOLERANCE."""
    return all(abs(x - y) <= SAME_VALUE_TOLERANCE for x, y in zip(value_to_code(attr, a), value_to_code(attr, b)))


def pure_label(attr: Attribute, value: float) -> str:
    """The label of a two-valued attribute's pure value nearest ``value`` (1.0 -> its second
    label), as a reading of a face is named to the user."""
    return attr.values[int(round(min(1.0, max(0.0, float(value)))))]


def code_to_value(attr: Attribute, probs: Sequence[float]) -> Value:
    """The slider value matching a probability vector (e.g. a classifier's softmax)."""
    p = [float(x) for x in probs]
    if attr.is_binary:
        s = p[0] + p[1]
        return p[1] / s if s > 0 else 0.0
    return p


def attribute_code(attrs: Sequence[Attribute], values_list: Sequence[Mapping[str, Value]],
                   device=None, dtype=None) -> "torch.Tensor":
    """Stack per-item value dicts into the decoder's code tensor (B, sum of n).

    Attributes missing from a dict take their default value; unknown names are an error.
    `dtype` defaults to float32.
    """
    import torch  # here, not at the top: the window reads attributes before torch is loaded
    names = {a.name for a in attrs}
    rows = []
    for values in values_list:
        unknown = [n for n in values if n not in names]
        if unknown:
            model = [a.name for a in attrs]
            named = listed(repr(n) + did_you_mean(n, model) for n in unknown)
            raise FaderError(f"unknown attribute{'s' if len(unknown) > 1 else ''} {named}; "
                             f"the model has {quoted(model)}")
        row = []
        for a in attrs:
            row.extend(value_to_code(a, values.get(a.name, default_value(a))))
        rows.append(row)
    return torch.tensor(rows, dtype=dtype or torch.float32, device=device).reshape(len(rows), sum(a.n for a in attrs))


def split_setting(text: str, attributes: Sequence[Attribute]) -> tuple:
    """`NAME=VALUE` -> (NAME, VALUE), VALUE None without "=".

    A model's attribute names are free text and may hold "=" themselves ("A=B=1"): the text is cut
    at the last "=" whose left part names one of `attributes` (case-insensitive), else at the last
    "=" (values are numbers or labels, which in practice have no "="), so that an unknown name
    is reported whole.
    """
    names = {a.name.strip().lower() for a in attributes}
    cuts = [i for i, c in enumerate(text) if c == "="]
    for i in reversed(cuts):
        if text[:i].strip().lower() in names:
            return text[:i], text[i + 1:]
    return (text[:cuts[-1]], text[cuts[-1] + 1:]) if cuts else (text, None)


def parse_value(attr: Attribute, text: str) -> Value:
    """Parse a command-line value: a number (slider position; for an attribute with more than two
    values, the index of a value) or one of the attribute's labels (case-insensitive).

    A label that is itself a number naming another value (labels '1' and '0' in that order, or
    '1' and '2' as fader-train names a 1/2 column) makes that text mean two things: it is refused,
    with a spelling for each (it silently took the number: --set Smiling=1 gave label '0').
    """
    t = text.strip()
    lowered = [x.lower() for x in attr.values]
    idx = lowered.index(t.lower()) if t.lower() in lowered else None
    try:
        v = float(t)
    except ValueError:
        v = None
    if v is not None and not math.isfinite(v):
        if idx is None:
            raise FaderError(f"value for {attr.name!r} must be finite, got {text!r}")
        v = None   # a label such as 'inf' or 'NaN'
    if v is not None:
        try:
            number = check_value(attr, v) if attr.is_binary else value_to_code(attr, v)
        except FaderError:
            if idx is None:
                raise
            number = None   # no valid number: the label is the one reading ('3' of labels 1/2/3)
        if idx is None:
            return number
        if number is not None and not same_value(attr, number, _pure(attr, idx)):
            what = "slider position" if attr.is_binary else "value number"
            raise FaderError(
                f"{t!r} for {attr.name!r} means two things: the label {attr.values[idx]!r} is {what} {idx}, the "
                f"number {v:g} is {what} {v:g}; write {_spelled(attr, idx)} for the label or {_spelled(attr, v)} "
                "for the number")
    if idx is not None:
        return _pure(attr, idx)
    raise FaderError(f"bad value {text!r} for {attr.name!r}{did_you_mean(t, attr.values)}: give a number or a "
                     f"label, {quoted(attr.values, 'or')}")


def parse_own(attr: Attribute, text: str) -> Value:
    """Parse a command-line own value (`--own NAME=VALUE`): one of the attribute's pure values, as a
    label or its number (0 or 1; more values: a value's index). Anything else is refused as not an
    own value, never as outside the slider range: --own says what the face is, and 5 was told the
    --set range where 0.5 was told the own value is 0 or 1."""
    t = text.strip()
    if t.lower() in (x.lower() for x in attr.values):
        return parse_value(attr, t)   # a label, or the refusal of one that also reads as a number
    try:
        v = float(t)
    except ValueError:
        raise FaderError(own_value_wording(attr, repr(t) + did_you_mean(t, attr.values))) from None
    if v not in range(attr.n):   # NaN and inf too
        raise FaderError(own_value_wording(attr, f"{v:g}"))
    return _pure(attr, int(v))


def label_text(attr: Attribute, idx: int) -> str:
    """What to type after NAME= for `attr`'s value number `idx`: its label, or the number where the
    label would read as another value (labels '1', '2')."""
    try:
        if same_value(attr, parse_value(attr, attr.values[idx]), _pure(attr, idx)):
            return attr.values[idx]
    except FaderError:
        pass
    return _spelled(attr, idx)


def _pure(attr: Attribute, idx: int) -> Value:
    """The value of `attr`'s label number `idx`: its slider position, or its one-hot code."""
    if attr.is_binary:
        return float(idx)
    return [1.0 if j == idx else 0.0 for j in range(attr.n)]


def _spelled(attr: Attribute, x: float) -> str:
    """The number `x` written so that it is none of `attr`'s labels ("1.0" where "1" is one)."""
    labels = {v.lower() for v in attr.values}
    for text in (f"{x:.1f}", f"{x:.2f}", f"{x:.3f}", f"{x:+.1f}"):
        if text not in labels:
            return text
    return f"{x:+.4f}"
