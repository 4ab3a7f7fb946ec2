"""The edit session: the fader values of one photo's faces, what changed, and snapshots of them.

Qt-free and light (numbers only; no image, no model), so the window keeps one on the GUI thread,
where its widgets write it and listen to it, and `PhotoEdit` keeps one for `edit`, `batch` and
`sweep`: every front end converts values, resets and decides "changed?" with this code.

A face's value of an attribute is held as a *slider value*, what the user set:
- a number: the attribute's value itself (binary: the slider position alpha; an attribute with
  more than two values: the index of a pure value);
- ``Towards(target, strength)``: an attribute with more than two values moved from the face's own
  mix of values towards the pure value `target` (strength 0: the face's own code, 1: the pure
  value, beyond: exaggerated) -- the window's faders for such attributes;
- a tuple of n weights: the code itself (a recipe's list).
`value()` turns it into the core value the engine decodes (`core.attributes.Value`).

A face's *own* value of an attribute is where its fader starts and what an edit is measured from
(the edit is the decode at the values less the decode at the own values): the classifier's
reading when the photo is opened, which the user may correct (`set_own`) where it misread the face.

A face may also have an *edit mask* (core.edit_mask.EditMask, painted with the window's edit
brush): where the edit applies. It does not change the values or "changed?"; it only keeps the
edit away from where the user erased it.

Snapshots are immutable and comparable: an undo step is a (before, after) pair of them, and a
render request carries one to the worker thread, which never sees the session itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

from .attributes import Attribute, Value, counted, own_value_wording, quoted, same_value, towards, unknown_attribute
from .errors import FaderError

#: The face selection "every face" (edits apply to all faces at once).
ALL_FACES = -1


@dataclass(frozen=True)
class Towards:
    """A fader of an attribute with more than two values: from the face's own code towards `target`."""

    target: int
    strength: float


def own_slider(attr: Attribute, own: Value):
    """The slider value that reproduces the face's own value (where Reset goes back to)."""
    if attr.is_binary:
        return float(own)
    weights = [float(x) for x in own]
    return Towards(max(range(len(weights)), key=weights.__getitem__), 0.0)


def slider_of(value) -> object:
    """A core value (number or list of weights) as an immutable slider value."""
    if isinstance(value, Towards):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(float(x) for x in value)
    return float(value)


def to_value(attr: Attribute, slider, own: Value) -> Value:
    """Slider value -> the core value the engine decodes (see the module docstring)."""
    if isinstance(slider, Towards):
        return towards(own, slider.target, slider.strength)
    if isinstance(slider, (list, tuple)):
        return [float(x) for x in slider]
    return float(slider)


@dataclass(frozen=True)
class Snapshot:
    """Every face's slider values at one moment: per face a tuple of (attribute, slider value);
    per face a tuple of (attribute, own value), so that an undo or a render request also
    carries a corrected reading (empty: the own values are left as they are); and per face its
    edit mask or None (empty: the masks are left as they are)."""

    faces: tuple
    own: tuple = ()
    masks: tuple = ()

    def face(self, i: int) -> dict:
        return dict(self.faces[i])


@dataclass(frozen=True)
class Change:
    """One change of a session, as its listeners receive it.

    kind: "set" (a fader), "reset", "own" (a face's own value corrected), "mask" (the edit
    brush), "restore" (a snapshot put back: undo/redo) or "select".
    name: the attribute (None for a whole face); faces: the faces whose values changed.
    merge: equal non-None keys mark one continuous edit (a slider drag: one undo step).
    label: the caller's description (an undo text), passed through.
    """

    kind: str
    before: Snapshot
    after: Snapshot
    name: Optional[str] = None
    faces: tuple = ()
    merge: object = None
    label: str = ""

    @property
    def values_changed(self) -> bool:
        return self.before != self.after


def snapshot_edited(attributes: Sequence[Attribute], snapshot: Snapshot, face: int) -> bool:
    """Whether `face` of `snapshot` differs from its own values: EditSession.is_modified's rule,
    for a snapshot that is not the session's (a state in the undo history)."""
    sliders, own = dict(snapshot.faces[face]), dict(snapshot.own[face])
    return any(not same_value(a, to_value(a, sliders[a.name], own[a.name]), own[a.name]) for a in attributes)


def shared_edit(snapshot: Snapshot) -> dict:
    """The slider values every face of `snapshot` has and at least one was moved to (an edit made
    under All faces): {attribute: value}."""
    out = {}
    for k, (name, value) in enumerate(snapshot.faces[0] if snapshot.faces else ()):
        values = [face[k][1] for face in snapshot.faces]
        if all(v == value for v in values) and any(v != own[k][1] for v, own in zip(values, snapshot.own)):
            out[name] = value
    return out


def carry_over(was: Snapshot, now: Snapshot, carried: Sequence[Optional[int]], share: bool) -> Snapshot:
    """`was` (a photo's faces before it was searched again: Find more faces, a marked face, Not a
    face) on the faces it has now (`now`, each at its own values): face i takes old face
    ``carried[i]``'s values, own values and mask; a face found since (None) keeps `now`'s, with the
    edit every old face shares laid over it where `share` (an All-faces edit is every face's)."""
    faces, own, masks = list(now.faces), list(now.own), list(now.masks)
    shared = shared_edit(was) if share and was.faces else {}
    for i, j in enumerate(carried):
        if j is not None:
            faces[i] = was.faces[j]
            own[i] = was.own[j] if was.own else own[i]
            masks[i] = was.masks[j] if was.masks else masks[i]
        elif shared:
            faces[i] = tuple((n, shared.get(n, v)) for n, v in faces[i])
    return Snapshot(tuple(faces), tuple(own), tuple(masks))


# A reading the classifier gives a probability under this is unsure: the window marks it and
# `edit` names it. On 500 validation faces (default model) readings under 0.8 were wrong in
# 29-40 % (Smiling, Young, Mouth open), those above in 1-9 %; 13 % of Smiling and 15 % of Young
# readings are under it.
UNSURE_READING = 0.8


def no_such_face(face: int, n: int) -> str:
    """"face 3 does not exist; the photo has 2 editable faces" ("no editable face" for none: it
    said "0 editable faces")."""
    return f"face {face} does not exist; the photo has {counted(n, 'editable face') if n else 'no editable face'}"


def sure_percent(p: float) -> str:
    """A reading's probability as a whole percent, rounded down: 0.796 is "79%", never the "80%"
    that rounding gave an unsure reading (under UNSURE_READING)."""
    # rounded to a thousandth of a percent first: a float32 0.52 is 0.51999998, which is 52 %
    return f"{math.floor(round(float(p) * 100, 3))}%"


class EditSession:
    """The slider values of one photo's faces and the face selection, with change listeners.

    Not thread-safe: one thread drives a session (the GUI thread, or `edit`/`batch`'s own).
    """

    def __init__(self, attributes: Sequence[Attribute], own_values: Sequence[Mapping],
                 snapshot: Optional[Snapshot] = None, certainty: Optional[Sequence] = None):
        """``certainty``: per face, the classifier's probability of each reading ({name: p}, or
        None where unknown), which says where the window should mark a reading as unsure."""
        self.attributes = list(attributes)
        self._attr = {a.name: a for a in self.attributes}
        self.own: list = [{a.name: own[a.name] for a in self.attributes} for own in own_values]
        self._read = [dict(o) for o in self.own]   # the classifier's readings, before any correction
        self._certainty = list(certainty) if certainty is not None else [None] * len(self.own)
        if len(self._certainty) != len(self.own):
            raise FaderError(f"certainty for {counted(len(self._certainty), 'face')}, own values for {len(self.own)}")
        self._sliders: list = [{a.name: own_slider(a, own[a.name]) for a in self.attributes} for own in self.own]
        self.masks: list = [None] * len(self.own)   # EditMask per face; None: the edit everywhere
        self.selected = 0
        self._listeners: list = []
        if snapshot is not None:
            self._put(snapshot)

    # -- listeners -----------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call `listener(change)` after every change; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return unsubscribe

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # -- reading -------------------------------------------------------------------------------
    @property
    def n_faces(self) -> int:
        return len(self.own)

    def attribute(self, name: str) -> Attribute:
        a = self._attr.get(name)
        if a is None:
            raise FaderError(unknown_attribute(name, self.attributes))
        return a

    def shown_face(self) -> int:
        """The face the faders show: the selected one (the first when every face is selected)."""
        if self.selected == ALL_FACES or not self.own:
            return 0
        return min(self.selected, self.n_faces - 1)

    def targets(self) -> list:
        """The faces an edit of the faders applies to."""
        return list(range(self.n_faces)) if self.selected == ALL_FACES else [self.shown_face()] if self.own else []

    def slider(self, name: str, face: Optional[int] = None):
        return self._sliders[self.shown_face() if face is None else face][name]

    def own_slider(self, name: str, face: Optional[int] = None):
        i = self.shown_face() if face is None else face
        return own_slider(self.attribute(name), self.own[i][name])

    def value(self, name: str, face: int) -> Value:
        """The core value of one attribute of one face."""
        return to_value(self.attribute(name), self._sliders[face][name], self.own[face][name])

    def values(self, face: int) -> dict:
        """Every attribute's core value of one face."""
        return {a.name: self.value(a.name, face) for a in self.attributes}

    def is_modified(self, face: Optional[int] = None, name: Optional[str] = None) -> bool:
        """Whether a face (any face when None) differs from its own values (one attribute or any).

        The one rule for "changed?": the decoder codes differ (core.attributes.same_value).
        """
        faces = range(self.n_faces) if face is None else [face]
        names = [a.name for a in self.attributes] if name is None else [name]
        return any(not same_value(self._attr[n], self.value(n, i), self.own[i][n]) for i in faces for n in names)

    def reading_certainty(self, name: str, face: int) -> Optional[float]:
        """The classifier's probability of the face's reading of `name` while the reading stands
        (None: unknown, or the user has corrected it, which settles it)."""
        self.attribute(name)
        c = self._certainty[face]
        if not c or name not in c or not same_value(self._attr[name], self.own[face][name], self._read[face][name]):
            return None
        return float(c[name])

    def unsure_readings(self, face: int, names: Iterable[str]) -> dict:
        """{name: probability} of the named two-valued attributes whose standing reading on
        `face` the classifier was unsure of (under UNSURE_READING)."""
        out = {}
        for n in names:
            p = self.reading_certainty(n, face)
            if p is not None and p < UNSURE_READING and self._attr[n].is_binary:
                out[n] = p
        return out

    def corrected(self, face: int) -> list:
        """The attributes whose reading the user has corrected on `face` (set_own), in model order."""
        return [a.name for a in self.attributes
                if not same_value(a, self.own[face][a.name], self._read[face][a.name])]

    def modified_faces(self) -> list:
        return [i for i in range(self.n_faces) if self.is_modified(i)]

    def changed_values(self, face: int) -> dict:
        """The core values of the attributes changed on `face` (what a recipe or a batch applies)."""
        return {a.name: self.value(a.name, face) for a in self.attributes if self.is_modified(face, a.name)}

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(tuple((a.name, s[a.name]) for a in self.attributes) for s in self._sliders),
                        tuple(tuple((a.name, slider_of(o[a.name])) for a in self.attributes) for o in self.own),
                        tuple(self.masks))

    # -- writing -------------------------------------------------------------------------------
    def _faces(self, face: Optional[int]) -> list:
        if face is None:
            return list(range(self.n_faces))
        if not 0 <= face < self.n_faces:
            raise FaderError(no_such_face(face, self.n_faces))
        return [face]

    def _change(self, kind: str, faces: Iterable[int], new: Callable[[int, str], object],
                name: Optional[str] = None, merge=None, label: str = "", clear_masks: bool = False) -> bool:
        faces = tuple(faces)
        names = [a.name for a in self.attributes] if name is None else [name]
        before = self.snapshot()
        for i in faces:
            for n in names:
                self._sliders[i][n] = new(i, n)
            if clear_masks:
                self.masks[i] = None
        after = self.snapshot()
        if after == before:
            return False
        self._emit(Change(kind, before, after, name, faces, merge, label))
        return True

    def set_slider(self, name: str, slider, faces: Optional[Iterable[int]] = None, merge=None,
                   label: str = "") -> bool:
        """Set one attribute's slider value on `faces` (default: the selected face or faces).

        Returns whether anything changed (writing the value a face already has changes nothing).
        """
        self.attribute(name)
        slider = slider_of(slider)
        return self._change("set", self.targets() if faces is None else faces, lambda i, n: slider, name, merge, label)

    def set_value(self, name: str, value: Value, face: Optional[int] = None) -> bool:
        """Set one attribute's core value on one face (every face when face is None)."""
        self.attribute(name)
        return self.set_slider(name, value, self._faces(face))

    def set_values(self, values: Mapping[str, Value], faces: Optional[Iterable[int]] = None, label: str = "") -> bool:
        """Set several attributes' core values on `faces` (default: the selected face or faces) in
        one change, one undo step (a pasted edit); the other attributes stay as they are."""
        sliders = {self.attribute(n).name: slider_of(v) for n, v in values.items()}
        chosen = tuple(self.targets() if faces is None else faces)
        for i in chosen:
            self._faces(i)
        before = self.snapshot()
        for i in chosen:
            self._sliders[i].update(sliders)
        after = self.snapshot()
        if after == before:
            return False
        self._emit(Change("set", before, after, None, chosen, None, label))
        return True

    def reset(self, face: Optional[int] = None, name: Optional[str] = None, faces: Optional[Iterable[int]] = None,
              label: str = "") -> bool:
        """Back to the faces' own values (one attribute or all) on one face, the given faces, or every
        face. A whole face's reset clears its edit-brush strokes too: strokes left behind would keep
        erasing the next edit there, with nothing on screen to say why."""
        if name is not None:
            self.attribute(name)
        chosen = list(faces) if faces is not None else self._faces(face)
        if name is None:
            for i in chosen:
                self._faces(i)
        return self._change("reset", chosen, lambda i, n: own_slider(self._attr[n], self.own[i][n]), name, None,
                            label, clear_masks=name is None)

    def set_own(self, name: str, value: Value, faces: Optional[Iterable[int]] = None, label: str = "") -> bool:
        """Correct one attribute's own value on `faces` (default: the selected face or faces) where
        the classifier misread it: edits of it are measured from `value` from now on, and its fader
        goes there, so the face itself does not change. Returns whether anything changed."""
        attr = self.attribute(name)
        if attr.is_binary:
            value = float(value)
            if value not in (0.0, 1.0):
                raise FaderError(own_value_wording(attr, f"{value:g}"))
        else:
            value = [float(x) for x in value]
            if len(value) != attr.n or min(value) < 0 or abs(sum(value) - 1) > 1e-6:
                raise FaderError(f"{name}: a face's own value is {attr.n} weights that sum to 1")
        faces = tuple(self.targets() if faces is None else faces)
        for i in faces:
            self._faces(i)
        before = self.snapshot()
        for i in faces:
            self.own[i][name] = value if attr.is_binary else list(value)
            self._sliders[i][name] = own_slider(attr, value)
        after = self.snapshot()
        if after == before:
            return False
        self._emit(Change("own", before, after, name, faces, None, label))
        return True

    def set_masks(self, masks: Mapping[int, object], merge=None, label: str = "") -> bool:
        """Give faces new edit masks ({face: EditMask or None}); consecutive changes with the same
        non-None `merge` are one brush stroke. Returns whether anything changed."""
        for i in masks:
            self._faces(i)
        before = self.snapshot()
        for i, m in masks.items():
            self.masks[i] = m
        after = self.snapshot()
        if after == before:
            return False
        self._emit(Change("mask", before, after, None, tuple(masks), merge, label))
        return True

    def restore(self, snapshot: Snapshot) -> bool:
        """Put a snapshot's values back (undo, redo, another model's faces with the same names)."""
        before = self.snapshot()
        self._put(snapshot)
        after = self.snapshot()
        if after == before:
            return False
        self._emit(Change("restore", before, after, None, tuple(range(self.n_faces))))
        return True

    def _put(self, snapshot: Snapshot) -> None:
        sliders = self._per_face(snapshot.faces)
        own = self._per_face(snapshot.own) if snapshot.own else None   # older snapshots: own as it is
        if snapshot.masks and len(snapshot.masks) != self.n_faces:
            raise FaderError(f"the snapshot has masks for {counted(len(snapshot.masks), 'face')}, the photo {self.n_faces}")
        self._sliders = sliders
        if snapshot.masks:
            self.masks = list(snapshot.masks)
        if own is not None:
            self.own = [{n: v if isinstance(v, float) else list(v) for n, v in face.items()} for face in own]

    def _per_face(self, faces: tuple) -> list:
        """A snapshot's per-face (attribute, value) pairs as dicts in the model's order, checked."""
        if len(faces) != self.n_faces:
            raise FaderError(f"the snapshot has {counted(len(faces), 'face')}, the photo {self.n_faces}")
        out = []
        for pairs in faces:
            values = dict(pairs)
            if set(values) != set(self._attr):
                raise FaderError(f"the snapshot's attributes ({quoted(sorted(values))}) are not the model's "
                                 f"({quoted(a.name for a in self.attributes)})")
            out.append({a.name: values[a.name] for a in self.attributes})
        return out

    def select(self, face: int) -> None:
        """Choose the face the faders show and edit (ALL_FACES: every face)."""
        face = int(face)
        if face != ALL_FACES and not 0 <= face < max(1, self.n_faces):
            raise FaderError(no_such_face(face, self.n_faces))
        if face == self.selected:
            return
        self.selected = face
        snap = self.snapshot()
        self._emit(Change("select", snap, snap, None, tuple(self.targets())))
