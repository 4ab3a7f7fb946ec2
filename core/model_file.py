"""The `.fader` model file: safetensors tensors plus JSON metadata, loadable without running code.

Layout: a safetensors file whose header metadata holds `fader_meta` (JSON) and
`fader_weights_sha256` (the SHA-256 of the tensor data; absent from older files), and whose tensors
are named `autoencoder.<param>` and `classifier.<param>`. Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .atomic_write import atomic_file
from .run_files import CHECKPOINT_NAME, RUN_MARKER, app_command, train_program
from .attributes import EXAGGERATION_WIDTHS, Attribute, counted, quoted, value_limits
from .errors import FaderError, ModelFileError, os_reason
from .networks import ArchConfig, AutoEncoder, Classifier

FORMAT_NAME = "fader-model"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 4 << 30
MAX_HEADER_BYTES = 16 << 20   # the JSON header (metadata + tensor table); ours are a few KB
MAX_ATTRIBUTES = 256          # CelebA has 40
MAX_VALUES = 256              # values of one attribute
MAX_LABEL_CHARS = 255         # an attribute's name or value label: a folder name's limit (CelebA's longest: 19)
MAX_SLIDER = 1000.0           # |slider range ends|: far beyond the values a decoder makes sense of
MAX_NAME_CHARS = 200          # a model's name as shown (titles, `info`, recipes)
MAX_META_DEPTH = 32           # nesting of the metadata JSON; ours is 5 deep
MAX_TENSORS = 10_000          # tensors in one file; a model has a few hundred
DEFAULT_LICENSE = "unspecified"
MAX_TEMPLATE_PIXELS = 100_000  # |coordinates| of an alignment template (CelebA's frame is 178x218)
#: Header metadata key of the SHA-256 (hex) of the tensor data, the bytes after the header: a file
#: damaged after it was written (a flipped bit, a bad copy) is refused instead of editing with wrong
#: weights. The metadata is left out, so a retitled model keeps a valid digest; files without the
#: key (written before it, or by other tools) load as before.
WEIGHTS_DIGEST_KEY = "fader_weights_sha256"
# ... and of the rest of the header (the tensors' names, types, shapes and places, the metadata):
# a flipped digit there changes a slider's range or an attribute's name without breaking the JSON
HEADER_DIGEST_KEY = "fader_header_sha256"


@dataclass
class FaderModel:
    """A loaded model: architecture, attributes, networks and descriptive metadata."""

    config: ArchConfig
    attributes: list
    autoencoder: AutoEncoder
    classifier: Optional[Classifier] = None
    classifier_config: Optional[ArchConfig] = None
    meta: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return self.config.img_size

    @property
    def name(self) -> str:
        name = self.meta.get("name")
        # `"name": null` (or blank) is no name: it showed as "None"
        name = "unnamed model" if name is None or not str(name).strip() else str(name)
        # shown in titles, `info` and every recipe: a file's megabyte-long name is cut, not repeated
        return name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS - 1] + "…"

    def alignment(self):
        """The alignment template the model was trained with (CelebA's framing by default)."""
        from .alignment import CELEBA_TEMPLATE, Template
        d = self.meta.get("alignment")
        return Template.from_dict(d) if d else CELEBA_TEMPLATE


def new_model(config: ArchConfig, attributes, classifier_config: Optional[ArchConfig] = None,
              meta: Optional[dict] = None) -> FaderModel:
    """A freshly initialised model (used by the trainer and tests)."""
    attributes = list(attributes)
    n_attr = sum(a.n for a in attributes)
    if config.n_attr != n_attr:
        config = ArchConfig.from_dict({**config.to_dict(), "n_attr": n_attr})
    clf = None
    if classifier_config is not None:
        classifier_config = ArchConfig.from_dict({**classifier_config.to_dict(), "n_attr": n_attr,
                                                  "img_size": config.img_size})
        clf = Classifier(classifier_config)
    return FaderModel(config, attributes, AutoEncoder(config), clf, classifier_config, dict(meta or {}))


def default_model_path() -> Path:
    """The model embedded with the application (works from source and inside the frozen app)."""
    import resources
    return resources.default_model_path()


def _metadata(model: FaderModel) -> dict:
    meta = dict(model.meta)
    meta.update({
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": model.config.to_dict(),
        "attributes": [a.to_dict() for a in model.attributes],
        "image_size": model.config.img_size,
        "classifier_architecture": model.classifier_config.to_dict() if model.classifier is not None else None,
    })
    meta.setdefault("normalisation", {"color": "RGB", "input": "x / 127.5 - 1", "output": "(y + 1) * 127.5"})
    meta.setdefault("license", DEFAULT_LICENSE)
    if "alignment" not in meta:
        from .alignment import CELEBA_TEMPLATE
        meta["alignment"] = CELEBA_TEMPLATE.to_dict()
    return meta


def save_model(model: FaderModel, path, half: bool = False, replace: bool = True) -> None:
    """Write the model atomically (temp file + rename). `half` stores float tensors as float16.
    `replace=False`: a file that appeared at `path` meanwhile is left as it is (an error)."""
    from safetensors.torch import save
    from safetensors import SafetensorError
    path = Path(path)
    tensors = {}
    for prefix, module in (("autoencoder", model.autoencoder), ("classifier", model.classifier)):
        if module is None:
            continue
        for k, v in module.state_dict().items():
            t = v.detach().to("cpu").contiguous()
            if half and t.is_floating_point() and not k.endswith("num_batches_tracked"):
                t = t.half()
            tensors[f"{prefix}.{k}"] = t.clone()
    header = {"fader_meta": json.dumps(_metadata(model), sort_keys=True)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Serialised in memory and written by us: safetensors' own save_file creates files 0600.
        parts = with_digests(save(tensors, metadata=header))
        with atomic_file(path, replace) as f:
            for part in parts:
                f.write(part)
    except OSError as e:
        raise ModelFileError(f"{path}: cannot write model file: {os_reason(e)}") from e
    except SafetensorError as e:  # safetensors reports its own I/O failures (disk full, ...) this way
        raise ModelFileError(f"{path}: cannot write model file: {str(e).splitlines()[0][:200]}") from e


def with_digests(blob: bytes) -> list:
    """A serialised safetensors file as [length, header, data] with the SHA-256 of its data and
    then of its header added to the header's metadata (WEIGHTS_DIGEST_KEY, HEADER_DIGEST_KEY); the
    data bytes are `blob`'s own, untouched."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    data = memoryview(blob)[8 + n:]
    meta = header.setdefault("__metadata__", {})
    meta[WEIGHTS_DIGEST_KEY] = hashlib.sha256(data).hexdigest()
    meta[HEADER_DIGEST_KEY] = _header_digest(header)
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)   # as safetensors pads it: the data stays 8-byte aligned
    return [len(raw).to_bytes(8, "little"), raw, data]


def _header_digest(header: dict) -> str:
    """SHA-256 of a safetensors header as parsed, less its own digest (sorted, compact JSON: the
    same for the header as written and as read back)."""
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != HEADER_DIGEST_KEY}
    canonical = dict(header, __metadata__=meta)
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).hexdigest()


def _is_digest(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_header_digest(path, header: dict) -> None:
    """ModelFileError unless the header has the digest it records; no digest (older files): fine."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or HEADER_DIGEST_KEY not in meta:
        return
    if not _is_digest(meta[HEADER_DIGEST_KEY]):
        raise ModelFileError(f"{path}: damaged: the checksum saved with its header is not a SHA-256 digest")
    if _header_digest(header) != meta[HEADER_DIGEST_KEY]:
        raise ModelFileError(f"{path}: damaged: its header (names, sizes, settings) does not match the checksum "
                             "saved with it (the file changed after it was written, e.g. a disk or copy error): "
                             "copy or export it again")


def _check_weights_digest(path, meta, data) -> None:
    """ModelFileError unless `data` (the tensor bytes) has the digest `meta` records; no digest: fine."""
    if not isinstance(meta, dict) or WEIGHTS_DIGEST_KEY not in meta:
        return
    saved = meta[WEIGHTS_DIGEST_KEY]
    if not _is_digest(saved):
        raise ModelFileError(f"{path}: damaged: the checksum saved with its weights is not a SHA-256 digest")
    if hashlib.sha256(data).hexdigest() != saved:
        raise ModelFileError(f"{path}: damaged: its weights do not match the checksum saved with it (the file "
                             "changed after it was written, e.g. a disk or copy error): copy or export it again")


def check_file(path: Path, kind: str = "model", max_bytes: int = MAX_FILE_BYTES) -> int:
    """Size of a file about to be parsed; ModelFileError if it is missing, a folder, empty or huge.

    `kind` names the file in messages ("model", "checkpoint").
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: {kind} file not found") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read {kind} file: {os_reason(e)}") from None
    size = st.st_size
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{path}: is a directory, not a {kind} file")
    if not stat.S_ISREG(st.st_mode):
        # a pipe or device reports size 0 ("empty") and reading one may never end
        raise ModelFileError(f"{path}: is a device or pipe, not a {kind} file")
    if size == 0:
        raise ModelFileError(f"{path}: {kind} file is empty")
    if size > max_bytes:
        raise ModelFileError(f"{path}: {kind} file is too large ({size} bytes)")
    return size


# torch.save's legacy format begins with its magic number pickled as a 10-byte long (after the
# protocol opcode): b"\x8a\x0a" + 0x1950a86a20f9469cfc6c, little-endian
_TORCH_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _zip_has_pickle(path: Path) -> bool:
    """Whether the zip archive ``path`` holds a torch.save record (``…/data.pkl``); unreadable: True."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return True


# fader-train's checkpoints are dicts whose first entry is "format": this (training.trainer.CHECKPOINT_FORMAT)
TRAIN_CHECKPOINT_FORMAT = "fader-train-checkpoint"
_PICKLE_SCAN_BYTES = 16 << 20     # a torch.save file's pickle is small: its tensors' bytes are stored apart
_PICKLE_SCAN_OPS = 2_000_000


def is_torchscript(names) -> bool:
    """Whether a zip archive with these member names is a TorchScript archive (it holds code)."""
    return any(n.endswith(("constants.pkl", ".py")) for n in names)


def _torch_save_kind(path: Path, head: bytes) -> tuple:
    """What a torch.save file (zip or legacy format) holds, told from the names in its zip and the
    opcodes of its pickle, never unpickled (pickletools only reads them): ("torchscript", None),
    ("fader-train", None), ("data", None) (tensors and plain values: a state dict), ("module",
    "pkg.Class": a pickled network, its first class) or (None, None) where it cannot tell."""
    import io
    import pickletools
    import zipfile
    try:
        if head[:2] == b"PK":
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
                if is_torchscript([i.filename for i in infos]):
                    return "torchscript", None
                pkl = [i for i in infos if i.filename.endswith("data.pkl")]
                # a compressed record could inflate to any size: left to import-reference, which refuses it
                if not pkl or pkl[0].compress_type != zipfile.ZIP_STORED or pkl[0].file_size > _PICKLE_SCAN_BYTES:
                    return None, None
                stream, skip = io.BytesIO(z.read(pkl[0])), 0
        else:
            with open(path, "rb") as f:
                stream, skip = io.BytesIO(f.read(_PICKLE_SCAN_BYTES)), 3   # magic number, protocol, sys info
        # the last two values pushed (a string, or None for anything else) and the memo of strings:
        # protocol 4+ pushes a string used before with BINGET, e.g. a state dict's second 'torch'
        last, memo = [None, None], {}
        ops = (op for _ in range(skip + 1) for op in pickletools.genops(stream))
        for count, (op, arg, _pos) in enumerate(ops):
            if count > _PICKLE_SCAN_OPS:
                return None, None
            if skip:   # the legacy format pickles its magic number, protocol and system info first
                skip -= op.name == "STOP"
                continue
            code = op.name
            if code in ("PROTO", "FRAME"):   # a frame may start between a global's two strings
                continue
            if code in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                memo[len(memo) if code == "MEMOIZE" else arg] = last[1]
                continue
            if code in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BINSTRING",
                        "SHORT_BINSTRING", "STRING"):
                last = [last[1], str(arg)]
            elif code in ("BINGET", "LONG_BINGET", "GET"):
                last = [last[1], memo.get(arg)]
            elif code in ("GLOBAL", "STACK_GLOBAL"):
                # GLOBAL: protocols 0-3 (torch.save writes 2); STACK_GLOBAL takes the two strings pushed
                module, name = str(arg).split(" ", 1) if code == "GLOBAL" else last
                if module is None or name is None:   # not strings: a pickle no torch.save writes
                    return None, None
                if not _is_plain_global(module, name):
                    found = f"{module}.{name}"   # a hostile name may be of any length: the message is one line
                    return "module", found if len(found) <= 120 else found[:119] + "…"
                last = [last[1], None]
            else:
                last = [last[1], None]
            if last == ["format", TRAIN_CHECKPOINT_FORMAT]:
                return "fader-train", None
    except Exception:   # a damaged or hostile file of any kind: the message only loses its detail
        return None, None
    return "data", None


#: standard-library classes that only hold values (an argparse.Namespace of a run's options, dates,
#: paths): a checkpoint holding them is plain data, not a network
_PLAIN_STDLIB = {
    "argparse": {"Namespace"},
    "types": {"SimpleNamespace"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "uuid": {"UUID"},
}


def _is_plain_global(module: str, name: str) -> bool:
    """Whether a pickle global `module`.`name` only rebuilds data (tensors, storages, containers,
    arrays, plain standard-library values), not a network."""
    top = module.split(".")[0]
    if module.startswith(("torch.nn", "torch.jit")):
        return False
    if name in _PLAIN_STDLIB.get(module, ()):
        return True
    return top in ("torch", "collections", "builtins", "__builtin__", "copyreg", "copy_reg", "_codecs", "numpy")


def train_checkpoint_advice(path: Path) -> str:
    """How a fader-train checkpoint given where a model is expected becomes a model (a clause)."""
    if path.name == CHECKPOINT_NAME:
        return (f"its run's model is {path.parent / 'model.fader'}, and `{train_program()} --export-last "
                f"--out {path.parent}` makes one of its last step")
    # --export-last reads RUN/checkpoint_last.pt: another name is never found there
    return (f"copy it to FOLDER/{CHECKPOINT_NAME} (a folder of its own), and `{train_program()} --export-last "
            "--out FOLDER` makes FOLDER/model_last.fader of its last step")


def import_program() -> str:
    """The converter's command as the user can type it: `fader-desktop import-reference`, or in the
    packaged app its executable as started and `import-reference` (it has no `fader-desktop`)."""
    exe = app_command()
    return "fader-desktop import-reference" if exe is None else f"{exe} import-reference"


def state_dict_advice() -> str:
    """Why a state dict (or another dict of tensors) is no model, and where a model comes from."""
    return ("a state dict (weights without the network they belong to) or other plain data, no model: "
            f"`{import_program()}` converts whole-model saves (torch.save(model)) of "
            f"facebookresearch/FaderNetworks, and {train_program()} makes .fader models")


def _sniff(path: Path) -> None:
    """Reject files that are obviously not safetensors before parsing them."""
    size = check_file(path, "model")
    with open(path, "rb") as f:
        head = f.read(32)
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    safetensors_like = 2 <= n and 8 + n <= size and head[8:9] == b"{"
    # The first bytes of a safetensors file are its header length, which can itself start with
    # b"PK" or 0x80 (e.g. a 0x...80-byte header): only call it a pickle if it is not safetensors.
    if not safetensors_like and (head[:2] == b"PK" or head[:1] == b"\x80"):
        if head[:2] == b"PK" and not _zip_has_pickle(path):
            raise ModelFileError(f"{path}: not a Fader model file (a zip archive, not a PyTorch checkpoint)")
        # pickle protocol 4+ (torch.save(..., pickle_protocol=4)) opens a frame first: 0x95 and its length
        magic = head[11:] if head[2:3] == b"\x95" else head[2:]
        if head[:1] == b"\x80" and not magic.startswith(_TORCH_LEGACY_MAGIC):
            raise ModelFileError(f"{path}: not a Fader model file (a plain Python pickle, which is never loaded: "
                                 "it could run code)")
        named = path.name == CHECKPOINT_NAME or (path.parent / RUN_MARKER).is_file()
        kind, found = (None, None) if named else _torch_save_kind(path, head)
        # a checkpoint given where a model is expected: the way to its run's model, not import-reference
        if named or kind == "fader-train":
            raise ModelFileError(f"{path}: is a fader-train checkpoint (pickled), never loaded as a model: "
                                 + train_checkpoint_advice(path))
        if kind == "data":
            raise ModelFileError(f"{path}: is a pickled PyTorch checkpoint holding {state_dict_advice()}")
        if kind == "torchscript":
            raise ModelFileError(f"{path}: not a Fader model file (a TorchScript archive: it holds code, which is "
                                 "never run)")
        raise ModelFileError(f"{path}: is a pickled PyTorch checkpoint{f' (of {found})' if found else ''}, which is "
                             "never loaded directly (it could run code); a facebookresearch/FaderNetworks model is "
                             f"converted with `{import_program()}`")
    if len(head) < 8:
        raise ModelFileError(f"{path}: not a Fader model file (truncated header)")
    if not safetensors_like:
        raise ModelFileError(f"{path}: not a Fader model file (no safetensors header)")
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: the file's header is {n:,} bytes, more than the limit of {MAX_HEADER_BYTES:,}")


def check_model_output(out: Path, inputs) -> None:
    """Refuse (FaderError) a converted model's output that is not a .fader file, is one of the
    checkpoints read (`inputs`; None entries skipped), or lies in a folder that does not exist:
    `fader-desktop import-reference` and the window's import both ask this."""
    from .atomic_write import same_file
    from .image_io import check_output_folder
    if out.suffix.lower() != ".fader":   # Windows and macOS names are case-blind: M.FADER is a model
        raise FaderError(f"{out}: output must be a .fader file")
    for given in inputs:
        if given is not None and same_file(out, Path(given)):
            raise FaderError(f"{out}: refusing to overwrite the input checkpoint {given}; choose another output path")
    # a mistyped folder is an error, as for every other command's output (save_model would create it)
    check_output_folder(out, "cannot write model file")


def check_header(path) -> None:
    """ModelFileError unless ``path`` looks like a model file from its first bytes (missing, empty,
    a folder, a pickle, no safetensors header): the cheap check before a question about the edits."""
    _sniff(Path(path))


def _expect(cond, path, msg):
    if not cond:
        raise ModelFileError(f"{path}: {msg}")


def _depth(v) -> int:
    """Nesting depth of parsed JSON (iteratively: a hostile file may nest thousands deep)."""
    depth, level = 0, [v]
    while level:
        depth += 1
        level = [x for c in level if isinstance(c, (dict, list)) for x in (c.values() if isinstance(c, dict) else c)]
    return depth


def _attribute(d) -> Attribute:
    """An attribute from its metadata, its types checked first: Attribute.from_dict would make a
    string of values one value per character, and fail on a range of one number with IndexError."""
    if not isinstance(d, dict):
        raise TypeError(f"an attribute must be an object, got {type(d).__name__}")
    name, values, rng = d.get("name"), d.get("values"), d.get("range", [-1.0, 2.0])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("an attribute's 'values' must be a list of strings")
    longest = max([name if isinstance(name, str) else ""] + values, key=len)
    if len(longest) > MAX_LABEL_CHARS:
        raise ValueError(f"an attribute name or value label is {len(longest):,} characters long, more than "
                         f"the limit of {MAX_LABEL_CHARS}")
    # bounded before float(): 1e400 in JSON is an integer that float() cannot convert
    if not (isinstance(rng, list) and len(rng) == 2
            and all(type(v) in (int, float) and abs(v) <= MAX_SLIDER for v in rng)):
        who = repr(name) if isinstance(name, str) else "an attribute"
        raise ValueError(f"{who}: 'range' must be two numbers within ±{MAX_SLIDER:g}")
    return Attribute.from_dict(d)


def check_attributes(attrs, path) -> None:
    """ModelFileError unless `attrs` are within what a `.fader` file may hold (counts, label lengths,
    slider ranges, unique names). The importer checks them too, so it never writes a file the app
    would then refuse."""
    _expect(len(attrs) <= MAX_ATTRIBUTES, path,
            f"the model has {len(attrs):,} attributes, more than the limit of {MAX_ATTRIBUTES}")
    for a in attrs:
        longest = max((a.name,) + a.values, key=len)
        _expect(len(longest) <= MAX_LABEL_CHARS, path,
                f"an attribute name or value label is {len(longest):,} characters long, more than the "
                f"limit of {MAX_LABEL_CHARS}")
        _expect(a.n <= MAX_VALUES, path,
                f"attribute {a.name!r} has {a.n:,} values, more than the limit of {MAX_VALUES}")
        _expect(all(abs(v) <= MAX_SLIDER for v in a.range), path,
                f"attribute {a.name!r} has the slider range {a.range[0]:g} .. {a.range[1]:g}, beyond ±{MAX_SLIDER:g}")
        # a face's own value is one of the pure values (0 or 1): outside the values a fader accepts,
        # every edit of every attribute failed ("value 0 for 'Smiling' is outside 2 .. 9")
        lo, hi = value_limits(a)
        _expect(lo <= 0.0 and hi >= 1.0, path,
                f"attribute {a.name!r} has the slider range {a.range[0]:g} .. {a.range[1]:g}, too far from its pure "
                f"values 0 and 1 (a fader takes values up to {EXAGGERATION_WIDTHS:g} range widths past its range)")
    _expect(len({a.name for a in attrs}) == len(attrs), path, "attribute names are not unique")
    # `--set`, recipes and the window look names up ignoring case: 'Glasses' and 'glasses' in one
    # model made --set Glasses=1 edit the other one
    folded = {}
    for a in attrs:
        other = folded.setdefault(a.name.casefold(), a.name)
        _expect(other == a.name, path, f"attribute names {other!r} and {a.name!r} differ only in letter case")


def read_safetensors(path: Path, damaged: str, max_bytes: int = MAX_FILE_BYTES, expect=None) -> tuple:
    """(metadata, tensors on the CPU) of a safetensors file; ModelFileError "PATH: <damaged> (why)"
    if it does not parse. Never runs code from the file.

    The file is read into memory at once, never memory-mapped (safe_open): the tensors of a
    mapped file that is truncated while in use (a sync client, a copy in progress, a re-export)
    kill the process with SIGBUS when next read, where a read gives a complete copy or an error.
    `expect(metadata, table)`, given the header's {name: (dtype, shape)} before any tensor is
    built, may refuse the file: tensors a reader does not want cost no memory then.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load
    try:
        with open(path, "rb") as f:
            # the header first: what it lists is checked before the tensors' bytes are read
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise ModelFileError(f"{path}: {damaged} (more than {max_bytes:,} bytes)")
            if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
                raise ModelFileError(f"{path}: {damaged} (truncated or no safetensors header)")
            header_bytes = f.read(n)
            header = _parse_header(path, damaged, header_bytes)
            _check_header_digest(path, header)
            meta = header.get("__metadata__") or {}
            table, end = _tensor_table(header)
            if table is not None:
                # bytes beyond the last tensor (a file padded or appended to) are refused by the
                # loader as "not fully covered": said plainly, before they are read
                if size - 8 - n > end:
                    raise ModelFileError(f"{path}: {damaged} ({size - 8 - n - end:,} bytes after the last tensor's data)")
                if expect is not None:
                    expect(meta, table)
            f.seek(0)
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the file: {os_reason(e)}") from None
    if len(data) > max_bytes:   # it grew since it was checked
        raise ModelFileError(f"{path}: {damaged} (more than {max_bytes:,} bytes)")
    if end is not None and len(data) < 8 + n + end:   # shorter than its header says, or cut while read
        raise ModelFileError(f"{path}: {damaged} (truncated: {len(data):,} of {8 + n + end:,} bytes)")
    if end is not None:
        _check_weights_digest(path, meta, memoryview(data)[8 + n:8 + n + end])
    try:
        tensors = load(data)   # safetensors checks the header's dtypes, shapes and offsets
    except (SafetensorError, ValueError, RuntimeError, TypeError) as e:
        raise ModelFileError(f"{path}: {damaged} ({str(e).splitlines()[0][:200]})") from None
    return meta, tensors


def _parse_header(path, damaged: str, raw: bytes) -> dict:
    """A safetensors header's JSON object, within the limit on its tensor count."""
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as e:   # ValueError covers JSONDecodeError and bad UTF-8
        raise ModelFileError(f"{path}: {damaged} (header is not valid JSON: {str(e).splitlines()[0][:200]})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: {damaged} (header is not a JSON object)")
    count = len(header) - ("__metadata__" in header)
    if count > MAX_TENSORS:   # refused before loading them (seconds, a GB)
        raise ModelFileError(f"{path}: {damaged} ({count:,} tensors, more than the limit of {MAX_TENSORS:,})")
    return header


def _tensor_table(header: dict) -> tuple:
    """({name: (dtype, shape)}, the end of the last tensor's data) of a parsed safetensors header,
    or (None, None) where it is malformed (the loader then names what is wrong)."""
    table, end = {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            offsets = [int(x) for x in info["data_offsets"]]
            shape = tuple(int(x) for x in info["shape"])
            if len(offsets) != 2 or any(o < 0 for o in offsets):
                return None, None
            table[name] = (str(info["dtype"]), shape)
            end = max(end, offsets[1])
        except (KeyError, TypeError, ValueError):
            return None, None
    return table, end


def load_model(path, map_location: str = "cpu") -> FaderModel:
    """Load and validate a `.fader` file; raises ModelFileError naming what is wrong."""
    path = Path(path)
    _sniff(path)
    parsed: list = []

    def expect(header: dict, table: dict) -> None:
        # the metadata, names and shapes from the header alone: a file whose tensors are not the
        # model's (an extra GB-sized one, absurd shapes) is refused before any tensor is built
        parsed.append(_parse_meta(path, header))
        _check_names(parsed[0], {k: _Shape(shape) for k, (_dtype, shape) in table.items()}, path)

    header, tensors = read_safetensors(path, "corrupt model file", expect=expect)
    if not parsed:   # a header the table could not be read from, yet loaded: checked now
        parsed.append(_parse_meta(path, header))
        _check_names(parsed[0], tensors, path)
    meta, attrs, config, clf_config = parsed[0]
    ae = AutoEncoder(config)
    _load_state(ae, "autoencoder", tensors, path)
    clf = None
    if clf_config is not None:
        clf = Classifier(clf_config)
        _load_state(clf, "classifier", tensors, path)
    ae.eval()
    if clf is not None:
        clf.eval()
    for k in ("format", "format_version", "architecture", "attributes", "classifier_architecture"):
        meta.pop(k, None)
    return FaderModel(config, attrs, ae, clf, clf_config, meta)


class _Shape:
    """A tensor's shape as the header gives it, for the checks made before loading."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def read_model_header(path) -> tuple:
    """(meta, attributes, ArchConfig, classifier ArchConfig or None) of a model file from its header
    alone, checked as :func:`load_model` checks it, no tensor read (the training dialog's Size
    while fine-tuning); ModelFileError naming what is wrong."""
    path = Path(path)
    _sniff(path)
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            raw = f.read(n)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the file: {os_reason(e)}") from None
    header = _parse_header(path, "corrupt model file", raw)
    _table, end = _tensor_table(header)
    if end is not None and size < 8 + n + end:
        # as load_model says it, before anyone is asked about a model that cannot load
        raise ModelFileError(f"{path}: corrupt model file (truncated: {size:,} of {8 + n + end:,} bytes)")
    return _parse_meta(path, header.get("__metadata__") or {})


def _parse_meta(path: Path, header: dict) -> tuple:
    """(meta, attributes, ArchConfig, classifier ArchConfig or None) from a model file's metadata;
    ModelFileError naming what is wrong."""
    _expect(isinstance(header, dict) and "fader_meta" in header, path, "not a Fader model file (no fader_meta metadata)")
    _expect(isinstance(header["fader_meta"], str), path, "not a Fader model file (its fader_meta metadata is not text)")
    too_deep = f"metadata is nested too deeply (more than {MAX_META_DEPTH} levels)"
    try:
        meta = json.loads(header["fader_meta"])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({e.msg})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: {too_deep}") from None
    except ValueError:  # Python refuses integers of thousands of digits
        raise ModelFileError(f"{path}: metadata is not valid JSON (a number has too many digits)") from None
    # whatever reads the metadata later (`info`, the model card) recurses through it
    _expect(_depth(meta) <= MAX_META_DEPTH, path, too_deep)
    _expect(isinstance(meta, dict), path, "metadata must be a JSON object")
    _expect(meta.get("format") == FORMAT_NAME, path, f"metadata 'format' must be {FORMAT_NAME!r}")
    ver = meta.get("format_version")
    _expect(ver is not None, path, "metadata 'format_version' is missing")
    _expect(isinstance(ver, int) and not isinstance(ver, bool), path, f"metadata 'format_version' must be a whole number, got {ver!r}")
    _expect(ver >= 1, path, f"metadata 'format_version' must be 1 or more, got {ver}")
    _expect(ver <= FORMAT_VERSION, path, f"format version {ver if ver < 10 ** 9 else 'beyond 10^9'} is newer than this app supports ({FORMAT_VERSION}); update Fader Desktop")

    listed = meta.get("attributes") or []
    _expect(isinstance(listed, list), path, "metadata 'attributes' must be a list")
    _expect(len(listed) <= MAX_ATTRIBUTES, path,
            f"metadata lists {len(listed):,} attributes, more than the limit of {MAX_ATTRIBUTES}")
    _expect(all(not isinstance(a, dict) or not isinstance(a.get("values"), (list, tuple))
                or len(a["values"]) <= MAX_VALUES for a in listed), path,
            f"an attribute has more than {MAX_VALUES} values")
    try:
        attrs = [_attribute(a) for a in listed]
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: invalid attributes in metadata ({e})") from None
    _expect(attrs, path, "metadata lists no attributes")
    check_attributes(attrs, path)
    arch = meta.get("architecture")
    _expect(isinstance(arch, dict), path, "metadata 'architecture' is missing")
    try:
        config = ArchConfig.from_dict(arch)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: {e}") from None
    _expect(config.n_attr == sum(a.n for a in attrs), path,
            f"architecture n_attr={config.n_attr} does not match the attributes (sum of values = {sum(a.n for a in attrs)})")
    _expect(meta.get("image_size", config.img_size) == config.img_size, path, "image_size disagrees with the architecture")
    _expect(isinstance(meta.get("mirror_decode", False), bool), path,
            "metadata 'mirror_decode' must be true or false")  # bool("false") would turn it on
    if meta.get("alignment") is not None:
        from .alignment import Template
        # bounded before numpy sees them: 1e308 overflowed float32 with a RuntimeWarning before the error
        _check_template_numbers(meta["alignment"], path)
        try:
            t = Template.from_dict(meta["alignment"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: invalid alignment template ({e})") from None
        lm = t.landmarks.astype("float64")
        # landmarks are points of the frame's face: far outside it every crop missed the face
        _expect(bool((lm >= 0).all() and (lm <= t.frame).all()), path,
                f"invalid alignment template (landmarks outside its {t.frame[0]}x{t.frame[1]} frame)")
        # faces are mapped onto the landmarks by a similarity transform: points that (nearly)
        # coincide make it singular, and every edit would fail
        _expect(float(((lm - lm.mean(0)) ** 2).sum(1).mean()) ** 0.5 >= 1.0, path,
                "invalid alignment template (its landmarks coincide)")

    clf_config = None
    if meta.get("classifier_architecture") is not None:
        try:
            clf_config = ArchConfig.from_dict(meta["classifier_architecture"])
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{path}: classifier {e}") from None
        _expect(clf_config.n_attr == config.n_attr and clf_config.img_size == config.img_size, path,
                "classifier architecture does not match the model's attributes or image size")
    return meta, attrs, config, clf_config


def _check_template_numbers(d, path) -> None:
    """ModelFileError where an alignment template's frame, crop box or landmarks hold a number
    beyond ±MAX_TEMPLATE_PIXELS (shapes and types are left to Template.from_dict)."""
    if not isinstance(d, dict):
        return
    for key in ("frame", "crop_box", "landmarks"):
        v = d.get(key)
        rows = v if isinstance(v, list) else []
        for x in (x for row in rows for x in (row if isinstance(row, list) else [row])):
            # ints of any size compare exactly; 1e400 in JSON is inf
            _expect(type(x) not in (int, float) or abs(x) <= MAX_TEMPLATE_PIXELS, path,
                    f"invalid alignment template ('{key}' holds a number not within ±{MAX_TEMPLATE_PIXELS:,} pixels)")


def _check_names(parsed: tuple, tensors: dict, path) -> None:
    """The file holds exactly the tensors of its architecture, with their shapes. Compared on the
    meta device (nothing allocated): an architecture is only built when the file holds every one
    of its tensors."""
    _meta, _attrs, config, clf_config = parsed
    with torch.device("meta"):
        _check_state(AutoEncoder(config).state_dict(), "autoencoder", tensors, path)
        if clf_config is not None:
            _check_state(Classifier(clf_config).state_dict(), "classifier", tensors, path)
    extra = [k for k in tensors if not k.startswith("autoencoder.")
             and not (clf_config is not None and k.startswith("classifier."))]
    _expect(not extra, path, f"{counted(len(extra), 'unexpected tensor')}: {quoted(extra, most=3)}")


def _check_state(expected: dict, prefix: str, tensors: dict, path) -> dict:
    """The file's tensors of `prefix`, after checking their names and shapes against `expected`."""
    got = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(expected) - set(got))
    _expect(not missing, path, f"missing {counted(len(missing), prefix + ' tensor')}: {quoted(missing, most=3)}")
    unexpected = sorted(set(got) - set(expected))
    _expect(not unexpected, path, f"{counted(len(unexpected), 'unexpected ' + prefix + ' tensor')}: "
                                 f"{quoted(unexpected, most=3)}")
    for k, ref in expected.items():
        t = got[k]
        _expect(tuple(t.shape) == tuple(ref.shape), path,
                f"{prefix} tensor {k} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
    return got


def _load_state(module: nn.Module, prefix: str, tensors: dict, path) -> None:
    expected = module.state_dict()
    got = _check_state(expected, prefix, tensors, path)
    for k, ref in expected.items():
        t = got[k]
        if ref.is_floating_point():
            _expect(t.is_floating_point(), path, f"{prefix} tensor {k} must be floating point")
            t = t.float()
            _expect(bool(torch.isfinite(t).all()), path, f"{prefix} tensor {k} contains NaN or infinite values")
            # a negative batch-norm variance is finite in the file but NaN once the layer runs
            _expect(not k.endswith("running_var") or bool((t >= 0).all()), path,
                    f"{prefix} tensor {k} has negative values (a variance cannot be negative)")
        got[k] = t.to(ref.dtype)
    module.load_state_dict(got, strict=True)


def model_summary(model: FaderModel) -> dict:
    """Plain-JSON description of a model (for `info --json` and the GUI's model card). `parameters`
    counts the editing network (the auto-encoder); `classifier_parameters` the slider classifier the
    file also holds (None: none), which is most of a small model's file (7.2 M beside 56 k)."""
    n_params = sum(p.numel() for p in model.autoencoder.parameters())
    n_clf = sum(p.numel() for p in model.classifier.parameters()) if model.classifier is not None else None
    return {
        "name": model.name,
        "image_size": model.image_size,
        "attributes": [{"name": a.name, "values": list(a.values), "range": list(a.range)} for a in model.attributes],
        "architecture": model.config.to_dict(),
        "has_classifier": model.classifier is not None,
        "mirror_decode": bool(model.meta.get("mirror_decode", False)),
        "parameters": n_params,
        "classifier_parameters": n_clf,
        "alignment": model.meta.get("alignment"),
        "training": model.meta.get("training"),
        "metrics": model.meta.get("metrics"),
        "license": model.meta.get("license", DEFAULT_LICENSE),
        "description": model.meta.get("description", ""),
        "source": model.meta.get("source"),
    }


def size_text(summary: dict) -> str:
    """What a model's parameters are (from its model_summary), as `info` and the model card say it:
    the editing network's count, then the classifier the file also holds, which is most of a small
    model's file (a 29 MB file read "56,264 parameters": its 7.2 M-parameter classifier was not
    counted)."""
    n = summary.get("parameters")
    text = f"{n:,} parameters in the editing network" if isinstance(n, int) else "the editing network"
    c = summary.get("classifier_parameters")
    if isinstance(c, int) and c > 0:
        count = f"{c / 1e6:.1f} M" if c >= 1_000_000 else f"{c:,}"
        text += f"; the file also holds a classifier of {count} parameters (used to read faces)"
    elif not summary.get("has_classifier"):
        text += "; no classifier (sliders start at each attribute's first value)"
    return text
