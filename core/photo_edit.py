"""The photo-edit document: one photo, its faces, per-face attribute values, and rendering.

Qt-free, so the window, the `edit` command and the batch command all drive the same code. Each
face is aligned and encoded once; a value change costs one decode of that face plus a paste-back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .alignment import AlignedFace, aligned_crop, align_face, paste_back
from .attributes import Value
from .engine import Engine, Latent
from .errors import FaderError, NoFaceError
from .image_io import load_image

# A face whose eyes are closer than this fraction of the model's crop width would be upsampled so
# much that an edit only adds blur; such faces are reported instead of edited.
MIN_EYE_DISTANCE_FRACTION = 0.25


@dataclass
class FaceEdit:
    """One face of the photo: where it is, its encoded crop and its slider values."""

    index: int
    aligned: AlignedFace
    latent: Latent
    own_values: dict
    values: dict
    reconstruction: np.ndarray  # float32 (S, S, 3): the decode at own_values
    box: Optional[tuple] = None
    landmarks: Optional[np.ndarray] = None
    _cache_key: object = field(default=None, repr=False)
    _cache_img: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def is_modified(self) -> bool:
        return _values_key(self.values) != _values_key(self.own_values)


def _values_key(values: Mapping) -> tuple:
    items = []
    for k in sorted(values):
        v = values[k]
        items.append((k, tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v)))
    return tuple(items)


def find_faces(image: np.ndarray, template, size: int, aligned: bool = False, detector=None):
    """Usable faces of a photo, aligned for the model.

    Returns (aligned faces, boxes, landmarks, skipped faces). `aligned=True` treats the image as a
    CelebA-style aligned crop. The one place that decides which faces are editable, shared by the
    document and the batch pipeline so their outputs agree.
    """
    if aligned:
        return [aligned_crop(image, template, size)], [None], [None], []
    if detector is None:
        from .faces import detect_faces
        found = detect_faces(image)
    else:
        found = detector.detect(image)
    tmpl_eye = float(np.linalg.norm(np.subtract(template.landmarks[1], template.landmarks[0])))
    crop_w = float(template.crop_box[2] - template.crop_box[0])
    # eye distance the face needs at photo resolution so that the model's crop is not mostly upsampling
    needed = MIN_EYE_DISTANCE_FRACTION * size * tmpl_eye / crop_w
    alignments, boxes, lms, skipped = [], [], [], []
    for f in found:
        eye = float(np.linalg.norm(f.landmarks[1] - f.landmarks[0]))
        if eye < needed:
            skipped.append(SkippedFace(tuple(map(float, f.box)),
                                       f"face too small for the model ({eye:.0f} px between the eyes, needs {needed:.0f})"))
            continue
        alignments.append(align_face(image, f.landmarks, template, size))
        boxes.append(tuple(map(float, f.box)))
        lms.append(np.asarray(f.landmarks, np.float32))
    return alignments, boxes, lms, skipped


@dataclass
class SkippedFace:
    """A detected face that is not edited, and why."""

    box: tuple
    reason: str


class PhotoEdit:
    """An open photo with its faces. Not thread-safe: drive it from one thread (the worker)."""

    def __init__(self, image: np.ndarray, engine: Engine, faces: list, skipped: list | None = None,
                 path: Optional[Path] = None, aligned: bool = False):
        self.image = image
        self.engine = engine
        self.faces: list[FaceEdit] = faces
        self.skipped: list[SkippedFace] = list(skipped or [])
        self.path = path
        self.aligned = aligned

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, source, engine: Engine, aligned: bool = False, detector=None,
             require_face: bool = True) -> "PhotoEdit":
        """Load a photo (path or RGB array), find and align its faces, encode them once.

        `aligned=True`: the image is already a CelebA-style aligned crop; its central square is
        the face. Raises NoFaceError when no usable face is found and `require_face` is set.
        """
        path = None
        if isinstance(source, (str, Path)):
            path = Path(source)
            image = load_image(path)
        else:
            image = np.ascontiguousarray(source, dtype=np.uint8)
            if image.ndim != 3 or image.shape[2] != 3:
                raise FaderError(f"expected an RGB image array, got shape {image.shape}")
        name = str(path) if path else "image"
        model = engine.model
        template = model.alignment()
        size = engine.image_size
        alignments, boxes, lms, skipped = find_faces(image, template, size, aligned, detector)
        if not alignments and require_face:
            why = f"; {len(skipped)} face(s) too small for the model" if skipped else ""
            raise NoFaceError(f"{name}: no face found{why}")
        faces = []
        if alignments:
            crops = np.stack([a.crop for a in alignments])
            latent = engine.encode(crops)
            own = engine.predict_values(crops)
            recon = engine.decode_float(latent, own)
            for i, a in enumerate(alignments):
                faces.append(FaceEdit(i, a, latent[i], dict(own[i]), dict(own[i]), recon[i], boxes[i], lms[i]))
        return cls(image, engine, faces, skipped, path, aligned)

    # -- values --------------------------------------------------------------------------------
    def _targets(self, face: Optional[int]) -> list:
        if face is None:
            return self.faces
        if not 0 <= face < len(self.faces):
            name = f"{self.path}: " if self.path is not None else ""
            raise FaderError(f"{name}face {face} does not exist; the photo has {len(self.faces)} editable face(s)")
        return [self.faces[face]]

    def set_value(self, name: str, value: Value, face: Optional[int] = None) -> None:
        """Set one attribute's slider value on one face (or every face when face is None)."""
        if name not in {a.name for a in self.engine.attributes}:
            raise FaderError(f"unknown attribute {name!r}; the model has {[a.name for a in self.engine.attributes]}")
        for f in self._targets(face):
            f.values[name] = value

    def set_values(self, values: Mapping[str, Value], face: Optional[int] = None) -> None:
        """Set several values (see set_value); `face` is checked even when `values` is empty."""
        self._targets(face)
        for k, v in values.items():
            self.set_value(k, v, face)

    def reset(self, face: Optional[int] = None, name: Optional[str] = None) -> None:
        """Back to the face's own values (one attribute or all)."""
        for f in self._targets(face):
            if name is None:
                f.values = dict(f.own_values)
            else:
                f.values[name] = f.own_values[name]

    # -- rendering -----------------------------------------------------------------------------
    def render_face_crop(self, i: int) -> np.ndarray:
        """The model's output for face i at its current values: float32 (S, S, 3) in [0, 255]."""
        f = self.faces[i]
        key = _values_key(f.values)
        if f._cache_key != key:
            f._cache_img = self.engine.decode_float(f.latent, [f.values])[0]
            f._cache_key = key
        return f._cache_img

    def render_faces(self, indices: Sequence[int]) -> None:
        """Decode several faces in one batch (faster than one at a time), filling the caches."""
        todo = [i for i in indices if self.faces[i]._cache_key != _values_key(self.faces[i].values)]
        if len(todo) > 1:
            lat = Latent.cat([self.faces[i].latent for i in todo])
            out = self.engine.decode_float(lat, [self.faces[i].values for i in todo])
            for k, i in enumerate(todo):
                self.faces[i]._cache_img = out[k]
                self.faces[i]._cache_key = _values_key(self.faces[i].values)

    def render(self) -> np.ndarray:
        """The full-resolution edited photo (a new array; the original is never modified)."""
        out = self.image.copy()
        modified = [f.index for f in self.faces if f.is_modified]
        self.render_faces(modified)
        for i in modified:
            f = self.faces[i]
            out = paste_back(out, self.render_face_crop(i), f.reconstruction, f.aligned.matrix, out=out,
                             crop=f.aligned.crop)
        return out

    def render_raw(self, i: int = 0) -> np.ndarray:
        """The model's own output for face i at model resolution, uint8."""
        return np.rint(self.render_face_crop(i)).astype(np.uint8)

    def recipe(self, face: int = 0) -> dict:
        """The current values of a face as a JSON-able recipe (what the batch command applies)."""
        f = self._targets(face)[0]
        return {"format": "fader-recipe", "version": 1, "model": self.engine.model.name,
                "values": {k: (list(v) if isinstance(v, (list, tuple)) else float(v)) for k, v in f.values.items()
                           if _values_key({k: v}) != _values_key({k: f.own_values[k]})}}
