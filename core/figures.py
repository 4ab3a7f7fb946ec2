"""A model file's recorded figures read as `fader-desktop info` and the model card show them (no Qt)."""
from __future__ import annotations


def split_circular(per: dict, circular) -> tuple:
    """(own, apart, mean) of a per-attribute figure `{attribute: value}`: the attributes not in
    `circular`, those in it (a fine-tune's attributes its data did not label, labelled by its starting
    model's classifier: their figures are judged against that model's own readings), and the own
    ones' mean, None where there are none or one is not a number."""
    own = {k: v for k, v in per.items() if k not in circular}
    apart = {k: v for k, v in per.items() if k in circular}
    numbers = own and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v for v in own.values())
    return own, apart, (sum(own.values()) / len(own) if numbers else None)
