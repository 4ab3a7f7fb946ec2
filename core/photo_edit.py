"""The photo-edit document: one photo, its faces, their values (an EditSession) and rendering.

Qt-free, so the window (through its worker), the `edit` command, `batch` and `sweep` all open
photos, decide which faces are editable, convert values, decide what changed and render with
this code: one photo gets the same result from each. Each face is aligned and encoded once; a
value change costs one decode of that face plus a paste-back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np

from .alignment import AlignedFace, aligned_crop, align_face, crop_corners, crop_mask, paste_back, region_matrix
from .attributes import Value, counted
from .edit_session import EditSession, Snapshot, no_such_face
from .engine import Engine, Latent
from .errors import FaderError, NoFaceError
from .image_io import load_image
from .recipe import make_recipe

# A face whose eyes are closer than this fraction of the model's crop width would be upsampled so
# much that an edit only adds blur; such faces are reported instead of edited.
MIN_EYE_DISTANCE_FRACTION = 0.25
# An image whose aspect ratio is within this of the model's alignment frame (CelebA: 178x218), no
# more than ALIGNED_MAX_SCALE times its size, and in which no face is detected is treated as an
# already-aligned crop: detectors often miss faces that fill the whole frame, and such crops are
# exactly what the models were trained on. The size limit keeps ordinary photos of a similar shape
# (4:5 portraits such as 1080x1350, 8x10 scans) out: a faceless one must not get a face painted on.
ALIGNED_ASPECT_TOLERANCE = 0.03
ALIGNED_MAX_SCALE = 2.0


@dataclass
class SkippedFace:
    """A detected face that is not edited, and why."""

    box: tuple
    reason: str


@dataclass
class FoundFaces:
    """The editable faces of a photo, aligned for the model, and the faces left out."""

    alignments: list                     # AlignedFace per editable face, in reading order
    boxes: list                          # (x0, y0, x1, y1) per face; None for an aligned crop
    landmarks: list                      # float32 (5, 2) per face; None for an aligned crop
    skipped: list = field(default_factory=list)   # SkippedFace
    aligned: bool = False                # the image is edited as one aligned crop
    fallback: bool = False               # ... because no face was detected and its framing fits
    search_scale: float = 1.0            # the scale the detector last searched the photo at (found faces at)
    size: tuple = (0, 0)                 # the photo's (width, height)

    def no_face_message(self, name) -> str:
        """What to tell the user when no face is editable: why, and what to try."""
        if self.skipped:
            return f"{name}: no face found; {counted(len(self.skipped), 'face')} too small for the model"
        hint = reduced_search_hint(self.search_scale, *self.size)
        return f"{name}: no face found ({hint})" if hint else f"{name}: no face found"


def reduced_search_hint(search_scale: float, width: int, height: int) -> str:
    """Why a photo searched below its own size can show no face, and what to do; "" otherwise."""
    if search_scale >= 1.0:
        return ""
    return (f"the {width}x{height} photo was searched at {search_scale:.0%} of its size, where a small "
            "face can be missed: crop the photo around the face")


def small_faces_hint(search_scale: float, width: int, height: int) -> str:
    """Where faces were found in a photo searched below its own size: the size under which a
    face was not looked for, and what to do; "" where every face from 40 px up was looked for.
    A 4000x3000 group photo is searched at a quarter of its size, so its 40-78 px faces in the
    back rows were missed without a word."""
    smallest = 20.0 / search_scale if search_scale > 0 else 0.0
    if search_scale >= 1.0 or smallest <= 40.0:
        return ""
    return (f"faces under {smallest:.0f} px were not looked for in the {width}x{height} photo: "
            "to edit a smaller one, crop the photo around it")


def main_face(faces) -> int:
    """The face a one-face view takes when none is named (the window's first selection, `sweep`,
    `--raw`): the first in reading order (top row, leftmost), unless another is at least twice its
    area. A small background face or a detector's false face (a patch of hair, a collar) is often
    the first. `faces`: anything
    with a `.box` (x0, y0, x1, y1), or None for an aligned crop."""
    if not faces or any(getattr(f, "box", None) is None for f in faces):   # an aligned crop: one face
        return 0
    area = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    best = max(range(len(faces)), key=area.__getitem__)
    return best if area[best] >= 2 * area[0] else 0


def check_face_search(aligned: bool, find_more_faces: bool) -> None:
    """FaderError where the command line asks for both: an aligned image is not searched at all."""
    if aligned and find_more_faces:
        raise FaderError("--aligned and --find-more-faces exclude each other: --aligned takes each image as one "
                         "aligned face, without a search")


def face_search(aligned: bool = False, find_more_faces: bool = False):
    """The detector `find_faces` is given for the command line's --aligned and --find-more-faces
    (edit, sweep, batch): None for the ordinary search (the shared detector), a ThoroughDetector
    for --find-more-faces; check_face_search's error for both."""
    check_face_search(aligned, find_more_faces)
    if not find_more_faces:
        return None
    from .faces import ThoroughDetector
    return ThoroughDetector()


def looks_aligned(image: np.ndarray, template) -> bool:
    """Whether the image has the template frame's aspect ratio and at most ALIGNED_MAX_SCALE times
    its size (an aligned crop such as CelebA's 178x218, or one upscaled up to 2x)."""
    fw, fh = template.frame
    h, w = image.shape[:2]
    return (0 < h <= ALIGNED_MAX_SCALE * fh and w <= ALIGNED_MAX_SCALE * fw
            and abs((w / h) / (fw / fh) - 1.0) <= ALIGNED_ASPECT_TOLERANCE)


def aligned_shape_note(image: np.ndarray, template) -> Optional[str]:
    """Where an image taken as an aligned crop (--aligned) is not of the template frame's shape, what
    --aligned did with it (stretched to that framing) and the likely fix, else None. A whole photo
    given with --aligned was edited as one squashed face and read "nothing changed", without a word."""
    fw, fh = template.frame
    h, w = image.shape[:2]
    if h and abs((w / h) / (fw / fh) - 1.0) <= ALIGNED_ASPECT_TOLERANCE:
        return None
    return (f"{w}x{h} is not the shape of the aligned crops --aligned takes ({fw}x{fh}, CelebA's framing): it was "
            f"stretched to that framing as one face; if it is a whole photo, leave out --aligned to find and align "
            f"its faces")


def find_faces(image: np.ndarray, template, size: int, aligned: bool = False, detector=None) -> FoundFaces:
    """The usable faces of a photo, aligned for the model.

    `aligned=True` treats the image as a CelebA-style aligned crop. Otherwise faces are detected;
    faces too small for the model are skipped, and when none is usable but the image has the
    template's framing and size (looks_aligned) it is edited as one aligned crop (`fallback`). The one place that decides
    which faces are editable: the window, `edit`, `batch` and `sweep` all call it.
    """
    if aligned:
        return FoundFaces([aligned_crop(image, template, size)], [None], [None], [], aligned=True)
    if detector is None:
        from .faces import shared_detector
        detector = shared_detector()
    found = detector.detect(image)
    tmpl_eye = float(np.linalg.norm(np.subtract(template.landmarks[1], template.landmarks[0])))
    crop_w = float(template.crop_box[2] - template.crop_box[0])
    # eye distance the face needs at photo resolution so that the model's crop is not mostly upsampling
    needed = MIN_EYE_DISTANCE_FRACTION * size * tmpl_eye / crop_w
    scale = getattr(detector, "search_scale", None)
    # the scale the faces were found at (the first, unless only a second look found them), or
    # where none was, the last one searched
    searched = (max(getattr(f, "search_scale", 1.0) for f in found) if found
                else scale(*image.shape[:2]) if scale else 1.0)
    faces = FoundFaces([], [], [], [], search_scale=searched,
                       size=(image.shape[1], image.shape[0]))
    for f in found:
        eye = float(np.linalg.norm(f.landmarks[1] - f.landmarks[0]))
        if eye < needed:
            faces.skipped.append(SkippedFace(tuple(map(float, f.box)),
                                             f"face too small for the model ({eye:.0f} px between the eyes, needs {needed:.0f})"))
            continue
        faces.alignments.append(align_face(image, f.landmarks, template, size))
        faces.boxes.append(tuple(map(float, f.box)))
        faces.landmarks.append(np.asarray(f.landmarks, np.float32))
    # the fallback keeps to the detector's size rule too: a 9x11 grey image had a face painted on it
    big_enough = tmpl_eye * image.shape[1] / template.frame[0] >= needed
    if not faces.alignments and big_enough and looks_aligned(image, template):
        return FoundFaces([aligned_crop(image, template, size)], [None], [None], [], aligned=True, fallback=True)
    return faces


@dataclass(eq=False)
class FaceEdit:
    """One face of the photo: where it is, its encoded crop, its own values and decode caches."""

    index: int
    aligned: AlignedFace
    latent: Latent
    own_values: dict      # the classifier's reading when the photo was opened (`own`: as corrected since)
    box: Optional[tuple] = None
    landmarks: Optional[np.ndarray] = None
    own_certainty: Optional[dict] = None   # the classifier's probability of each reading (None: no classifier)
    # the document's session and engine, not the document: a face holding its document made a cycle
    # (the document holds its faces) that kept every photo the window had left, 143 MB each at
    # 50 MP, until the cyclic garbage collector happened to run
    _session: Optional[EditSession] = field(default=None, repr=False)
    _engine: Optional[Engine] = field(default=None, repr=False)
    _recon: Optional[np.ndarray] = field(default=None, repr=False)
    _recon_draft: Optional[np.ndarray] = field(default=None, repr=False)
    _recon_key: object = field(default=None, repr=False)   # the own values the reconstructions are for
    _cache_key: object = field(default=None, repr=False)
    _cache_img: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def values(self) -> dict:
        """The face's current core values (from the document's session)."""
        return self._session.values(self.index)

    @property
    def own(self) -> dict:
        """The face's own values as the session holds them (the reading, or the user's correction)."""
        return self._session.own[self.index]

    @property
    def is_modified(self) -> bool:
        return self._session.is_modified(self.index)

    def _is_draft(self, draft: bool) -> bool:
        """Whether a draft decode of this face differs from the full one (only a face decoded with
        its mirror image has a faster draft); such decodes are cached apart."""
        return draft and self.latent.mirrored

    @property
    def reconstruction(self) -> np.ndarray:
        """float32 (S, S, 3): the decode at the face's own values (decoded on first use)."""
        _decode([self], edit=False)   # a no-op once decoded at the own values
        return self._recon


def _values_key(values: Mapping) -> tuple:
    items = []
    for k in sorted(values):
        v = values[k]
        items.append((k, tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v)))
    return tuple(items)


def decode_faces(items: Iterable[tuple], edit: bool = True, reconstruction: bool = True,
                 draft: bool = False) -> None:
    """Decode several faces, of one photo or of several, in one model call, filling their caches.

    items: (document, face index). Each face gets its edit at its current values and its plain
    reconstruction (either may be left out); what is already cached is not decoded again.
    ``draft``: the faster decode without mirror averaging (``Engine.decode_float``), cached apart
    (edit and reconstruction of one kind are always pasted together). render(), render_raw() and
    render_face_crop() then only paste.
    """
    _decode([doc.faces[i] for doc, i in items], edit, reconstruction, draft)


def _decode(faces: Sequence["FaceEdit"], edit: bool = True, reconstruction: bool = True, draft: bool = False) -> None:
    """decode_faces for the faces themselves."""
    jobs = []   # (face, "edit" or "recon", values, cache key, draft)
    for f in faces:
        d = f._is_draft(draft)
        if edit:
            values = f.values
            key = (_values_key(values), d)
            if f._cache_key != key:
                jobs.append((f, "edit", values, key, d))
        if reconstruction:
            own, own_key = dict(f.own), _values_key(f.own)
            if f._recon_key != own_key:   # a corrected reading: the edit is measured from it
                f._recon = f._recon_draft = None
                f._recon_key = own_key
            if (f._recon_draft if d else f._recon) is None:
                jobs.append((f, "recon", own, None, d))
    if not jobs:
        return
    engine = jobs[0][0]._engine
    # one engine, so every face's latent is mirrored or none is, and draft applies to all alike
    latents = [f.latent.plain() if d else f.latent for f, _kind, _v, _key, d in jobs]
    out = engine.decode_float(Latent.cat(latents), [v for _f, _kind, v, _key, _d in jobs])
    for (f, kind, _v, key, d), img in zip(jobs, out):
        if kind == "edit":
            f._cache_img, f._cache_key = img, key
        elif d:
            f._recon_draft = img
        else:
            f._recon = img


def _intersect(a: tuple, b: tuple) -> tuple:
    """(x, y, w, h) of two such integer rectangles' overlap (w, h 0 when they miss, placed
    inside ``a``)."""
    x0, y0 = max(a[0], int(b[0])), max(a[1], int(b[1]))
    x1, y1 = min(a[0] + a[2], int(b[0]) + int(b[2])), min(a[1] + a[3], int(b[1]) + int(b[3]))
    x0, y0 = min(x0, a[0] + a[2]), min(y0, a[1] + a[3])
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _read(source) -> tuple:
    """(RGB image, path or None) of a path or an RGB array."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        return load_image(path), path
    image = np.ascontiguousarray(source, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise FaderError(f"expected an RGB image array, got shape {image.shape}")
    return image, None


class PhotoEdit:
    """An open photo with its faces. Not thread-safe: drive it from one thread (the worker)."""

    def __init__(self, image: np.ndarray, engine: Engine, faces: list, skipped: list | None = None,
                 path: Optional[Path] = None, aligned: bool = False, fallback: bool = False,
                 search_scale: float = 1.0):
        self.image = image
        self.engine = engine
        self.faces: list[FaceEdit] = faces
        self.skipped: list[SkippedFace] = list(skipped or [])
        self.path = path
        self.aligned = aligned
        self.fallback = fallback   # edited as an aligned crop because no face was detected
        self.search_scale = search_scale   # the scale the detector last searched the photo at
        self.session = EditSession(engine.attributes, [f.own_values for f in faces],
                                   certainty=[f.own_certainty for f in faces])
        self._scaled: Optional[tuple] = None   # (size, the photo downscaled to it): scaled_image's cache
        for f in faces:
            f._session, f._engine = self.session, engine

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, source, engine: Engine, aligned: bool = False, detector=None,
             require_face: bool = True, path: Optional[Path] = None) -> "PhotoEdit":
        """Load a photo (path or RGB array), find and align its faces, encode them once.

        `aligned=True`: the image is already a CelebA-style aligned crop; its central square is
        the face (see find_faces for the fallback when no face is detected). Raises NoFaceError
        when no usable face is found and `require_face` is set. `path`: the file an RGB array was
        read from (image_io.open_photo's, which reads its Source with it), as a path opens it.
        """
        image, read_from = _read(source)
        path = read_from if path is None else Path(path)
        found = find_faces(image, engine.model.alignment(), engine.image_size, aligned, detector)
        if not found.alignments and require_face:
            raise NoFaceError(found.no_face_message(path if path else "image"))
        return cls.encode_many([(image, found, path)], engine)[0]

    @classmethod
    def encode_many(cls, photos: Sequence[tuple], engine: Engine) -> list:
        """Documents for several photos whose faces are found: (image, FoundFaces, path) each.

        Every face of every photo is encoded and classified in one model call (batch export
        runs the model on the faces of several photos at once).
        """
        crops = [a.crop for _image, found, _path in photos for a in found.alignments]
        latent, own = None, []
        if crops:
            stack = np.stack(crops)
            latent = engine.encode(stack)
            probs = engine.predict_probabilities(stack)
            own = engine.values_from_probabilities(probs, len(stack))
            # how sure the classifier is of each reading (the window marks the unsure ones)
            sure = [None] * len(stack) if probs is None else \
                [{name: float(max(p)) for name, p in face.items()} for face in probs]
        docs, k = [], 0
        for image, found, path in photos:
            faces = []
            for j, a in enumerate(found.alignments):
                faces.append(FaceEdit(j, a, latent[k], dict(own[k]), found.boxes[j], found.landmarks[j],
                                      own_certainty=sure[k]))
                k += 1
            docs.append(cls(image, engine, faces, found.skipped, path, found.aligned, found.fallback,
                            found.search_scale))
        return docs

    # -- values (the session's, with the photo named in errors) --------------------------------
    def _targets(self, face: Optional[int]) -> list:
        if face is None:
            return self.faces
        if not 0 <= face < len(self.faces):
            name = f"{self.path}: " if self.path is not None else ""
            raise FaderError(f"{name}{no_such_face(face, len(self.faces))}")
        return [self.faces[face]]

    def set_value(self, name: str, value: Value, face: Optional[int] = None) -> None:
        """Set one attribute's value on one face (or every face when face is None)."""
        self._targets(face)
        self.session.set_value(name, value, face)

    def set_values(self, values: Mapping[str, Value], face: Optional[int] = None) -> None:
        """Set several values (see set_value); `face` is checked even when `values` is empty."""
        self._targets(face)
        for k, v in values.items():
            self.set_value(k, v, face)

    def reset(self, face: Optional[int] = None, name: Optional[str] = None) -> None:
        """Back to the face's own values (one attribute or all; all also clears its edit-brush masks)."""
        self._targets(face)
        self.session.reset(face, name)

    def set_own(self, name: str, value: Value, face: Optional[int] = None) -> None:
        """Correct a face's own value of one attribute (every face when face is None); see
        EditSession.set_own."""
        self._targets(face)
        self.session.set_own(name, value, range(len(self.faces)) if face is None else [face])

    def restore(self, snapshot: Snapshot) -> None:
        """Take the values of a snapshot (made by the window's session of this photo)."""
        self.session.restore(snapshot)

    def is_modified(self) -> bool:
        """Whether any face differs from its own values (EditSession.is_modified)."""
        return self.session.is_modified()

    def edited_faces(self) -> list:
        return self.session.modified_faces()

    # -- rendering -----------------------------------------------------------------------------
    def render_face_crop(self, i: int) -> np.ndarray:
        """The model's output for face i at its current values: float32 (S, S, 3) in [0, 255]."""
        decode_faces([(self, i)], reconstruction=False)
        return self.faces[i]._cache_img

    def render(self, draft: bool = False) -> np.ndarray:
        """The full-resolution edited photo (a new array; the original is never modified).

        Only modified faces are pasted back, so with nothing changed the pixels are the input's.
        ``draft``: the faster decode for a live preview (see ``decode_faces``); exports use the full one.
        """
        out = self.image.copy()
        pixels, (x, y) = self.render_region(draft)
        out[y:y + pixels.shape[0], x:x + pixels.shape[1]] = pixels
        return out

    def paste_mask(self, i: int) -> Optional[np.ndarray]:
        """Face i's paste-back mask: the feathered crop mask times its painted edit mask (None:
        the crop mask alone). A mask painted in another model's crop (another template or size)
        is carried into this one's, so it stays where it was painted on the face."""
        m = self.session.masks[i]
        if m is None:
            return None
        s = self.engine.image_size
        return crop_mask(s) * m.in_frame(self.faces[i].aligned.matrix, s).array

    def edit_region(self) -> tuple:
        """(x, y, w, h) bounding every pixel an edit of any face can change.

        Paste-back only writes inside the photo footprint of each face's aligned crop square, so the
        union of those footprints (plus a pixel of interpolation margin) bounds the edit.
        """
        h, w = self.image.shape[:2]
        if not self.faces:
            return (0, 0, 0, 0)
        size = self.engine.image_size
        pts = np.concatenate([crop_corners(f.aligned.matrix, size) for f in self.faces])
        x0 = max(0, int(np.floor(pts[:, 0].min())) - 2)
        y0 = max(0, int(np.floor(pts[:, 1].min())) - 2)
        x1 = min(w, int(np.ceil(pts[:, 0].max())) + 3)
        y1 = min(h, int(np.ceil(pts[:, 1].max())) + 3)
        return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def scaled_size(self, scale: float) -> tuple:
        """(width, height) of the photo at ``scale`` (< 1): the pixel grid of a scaled preview."""
        h, w = self.image.shape[:2]
        return max(1, round(w * scale)), max(1, round(h * scale))

    def scaled_image(self, scale: float) -> np.ndarray:
        """The unedited photo downscaled to ``scaled_size(scale)`` (area-averaged; read-only,
        cached for the last size): what a preview at that scale is cut from and shown over."""
        size = self.scaled_size(scale)
        if self._scaled is None or self._scaled[0] != size:
            small = cv2.resize(self.image, size, interpolation=cv2.INTER_AREA)
            small.setflags(write=False)
            self._scaled = (size, small)
        return self._scaled[1]

    def render_region(self, draft: bool = False, scale: float = 1.0, within: Optional[tuple] = None) -> tuple:
        """(pixels of the edit region of the rendered photo, (x, y) where they go): the only part
        of the photo an edit can change, e.g. what a preview needs to repaint. Only that region
        is copied and pasted into (a 12 MP photo's whole copy cost a preview 6 ms), and render()
        is built from it, so a preview and an export hold the same pixels.

        ``scale`` < 1: the region of ``scaled_image(scale)`` instead, (x, y) in its pixels, with
        the edit pasted back at that resolution: a preview shown zoomed out needs no more pixels
        than the screen has (a 48 MP photo's face region is 17 MP; the paste-back and the
        display conversion cost in proportion). The same decode and fit as at full resolution;
        only the warp of the edit lands on the smaller grid.

        ``within``: (x, y, w, h) in photo pixels, only the part of the region inside that
        rectangle (what a view zoomed in on a large photo shows): the same pixels as that part
        of the whole region's render (up to a level where the warp's sub-pixel rounding differs;
        the fit, the mask's feathering and the difference's upsampling are made in the crop and
        the photo's pixels are then edited one by one, so no margin is needed), at the cost of
        that part alone. It may come back empty (0 x 0) when the rectangle misses the region.
        """
        x, y, w, h = self.edit_region()
        if within is not None and scale >= 1.0:
            x, y, w, h = _intersect((x, y, w, h), within)
        modified = self.session.modified_faces()
        decode_faces([(self, i) for i in modified], draft=draft)
        if scale >= 1.0:
            out = self.image[y:y + h, x:x + w].copy()
            to_out = None
        else:
            small = self.scaled_image(scale)
            (sw, sh), (ih, iw) = small.shape[1::-1], self.image.shape[:2]
            kx, ky = sw / iw, sh / ih
            x0, y0 = int(np.floor(x * kx)), int(np.floor(y * ky))
            x1, y1 = min(sw, int(np.ceil((x + w) * kx)) + 1), min(sh, int(np.ceil((y + h) * ky)) + 1)
            if within is not None:   # the scaled pixels whose footprint meets the rectangle
                wx, wy, ww, wh = within
                x0, y0 = max(x0, int(np.floor(wx * kx))), max(y0, int(np.floor(wy * ky)))
                x1, y1 = min(x1, int(np.ceil((wx + ww) * kx))), min(y1, int(np.ceil((wy + wh) * ky)))
                x1, y1 = max(x0, x1), max(y0, y1)
            x, y = x0, y0
            out = small[y0:y1, x0:x1].copy()
            # scaled pixel centre (u + 0.5) / k - 0.5 in the photo: the grid cv2.resize samples
            to_out = np.array([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5], [0, 0, 1]])
        if out.size == 0:
            return out, (x, y)
        for i in modified:
            f = self.faces[i]
            recon = f._recon_draft if f._is_draft(draft) else f._recon
            m = f.aligned.matrix if to_out is None else np.asarray(f.aligned.matrix, np.float64).reshape(2, 3) @ to_out
            paste_back(out, f._cache_img, recon, region_matrix(m, x, y), out=out,
                       crop=f.aligned.crop, mask=self.paste_mask(i))
        return out, (x, y)

    def render_raw(self, i: int = 0) -> np.ndarray:
        """The model's own output for face i at model resolution, uint8."""
        return np.rint(self.render_face_crop(i)).astype(np.uint8)

    def recipe(self, face: int = 0) -> dict:
        """The changed values of a face as a JSON-able recipe (what the batch command applies)."""
        self._targets(face)
        return make_recipe(self.session.changed_values(face), self.engine.model.name)
