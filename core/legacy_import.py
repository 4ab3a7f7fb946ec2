"""Import checkpoints saved by the reference implementation (facebookresearch/FaderNetworks).

The reference repo saves whole modules with `torch.save(ae, path)`: a pickle of a
`src.model.AutoEncoder` object (zip format with `data.pkl`, or the legacy pre-1.6 format). Loading
such a file with plain `torch.load` would import `src.model` and run whatever the pickle asks for.
Here nothing from the file is ever executed:

* the pickle is read by torch's own (zip or legacy) storage loader, but with a restricted
  `pickle.Unpickler` whose `find_class` never imports anything. It resolves
  - a short allow-list of tensor-rebuild helpers (re-implemented here with argument checks),
    `collections.OrderedDict`, `set`/`frozenset`, `torch.Size` and dtypes to real objects,
  - any other standard-library global (`os.system`, `builtins.eval`, `subprocess.Popen`, ...) to an
    immediate ModelFileError, before it could be called,
  - every other global (`src.model.AutoEncoder`, `torch.nn.modules.conv.Conv2d`, ...) to an inert
    stand-in class that only records its constructor arguments and pickled state;
* the stand-in tree is then walked reading only tensors and plain fields (ints, floats, strings,
  bools and lists/tuples of those) to rebuild an `ArchConfig`, the attributes and a state dict, which
  is loaded into our own `core.networks` modules with strict name, structure and shape checks.
"""
from __future__ import annotations

import collections
import hashlib
import math
import pickle
import sys
import types
import warnings
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import torch

from .attributes import Attribute, counted, quoted
from .errors import FaderError, ModelFileError
from .model_file import (FaderModel, check_attributes, check_file, is_torchscript, state_dict_advice,
                         train_checkpoint_advice)
from .networks import ArchConfig, AutoEncoder, Classifier

LICENSE = "unknown (imported)"
MAX_FILE_BYTES = 4 << 30
_MAX_DEPTH = 64
_MAX_MESSAGE = 400  # characters of an error message (see import_reference_checkpoint)


# -- the restricted unpickler -----------------------------------------------------------------
class _Refused(Exception):
    """A pickle referenced a global that could run code (converted to ModelFileError)."""


class Stub:
    """Inert stand-in for any class or function a pickle names: records arguments and state only."""

    _fader_module = ""
    _fader_name = ""
    dump_patches = False  # read by torch's legacy loader when it compares saved module sources

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["_fader_args"] = args
        obj.__dict__["_fader_state"] = None
        obj.__dict__["_fader_items"] = {}
        obj.__dict__["_fader_list"] = []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_fader_state"] = state

    def __setitem__(self, key, value):  # SETITEM(S) on a dict-like stand-in
        self.__dict__["_fader_items"][key] = value

    def append(self, value):  # APPEND(S) on a list-like stand-in
        self.__dict__["_fader_list"].append(value)

    def extend(self, values):
        self.__dict__["_fader_list"].extend(values)

    @classmethod
    def qualified_name(cls) -> str:
        return f"{cls._fader_module}.{cls._fader_name}"

    def __repr__(self):
        return f"<stand-in for {self.qualified_name()}>"


class _ParameterHolder:
    """Old (torch < 0.4) pickles build parameters as `Parameter(data)` + state; keep only data."""

    def __init__(self, data=None, requires_grad=True):
        self.data = data

    def __setstate__(self, state):
        pass


def _check_tensor_args(storage, storage_offset, size, stride):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise _Refused(f"a tensor is built from {type(storage).__name__}, not a storage")
    ints = lambda s: isinstance(s, (tuple, list)) and all(type(v) is int for v in s)  # noqa: E731
    if type(storage_offset) is not int or storage_offset < 0 or not ints(size) or not ints(stride) \
            or len(size) != len(stride) or any(v < 0 for v in size):
        raise _Refused("a tensor has an invalid offset, size or stride")


def _rebuild_tensor(storage, storage_offset, size, stride):
    _check_tensor_args(storage, storage_offset, size, stride)
    return torch._utils._rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise _Refused(f"a parameter is built from {type(data).__name__}, not a tensor")
    return data


def _safe_set(items=()):
    items = list(items) if isinstance(items, (list, tuple, set, frozenset)) else None
    if items is None or not all(isinstance(v, (str, int, float, bool, type(None))) for v in items):
        raise _Refused("a set holds something other than plain values")
    return set(items)


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _ParameterHolder,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): _safe_set,
    ("__builtin__", "set"): _safe_set,
    ("builtins", "frozenset"): _safe_set,
    ("__builtin__", "frozenset"): _safe_set,
    ("torch", "Size"): torch.Size,
}

# Modules whose globals are refused outright (rather than replaced by a stand-in) because a pickle
# has no business naming them: the standard library (os, subprocess, builtins, ...).
_STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {
    "__builtin__", "copy_reg", "builtins", "os", "posix", "nt", "subprocess", "sys", "shutil", "importlib",
    "runpy", "socket", "pickle", "_pickle", "code", "ctypes", "io", "pathlib", "webbrowser", "pty",
    "commands", "popen2", "operator", "functools", "types", "marshal", "copyreg", "inspect",
}


def _storage_nbytes(saved_id) -> tuple:
    """(key, bytes) a storage reference of torch's pickles claims, or raise _Refused."""
    # zip: ('storage', type, key, location, numel); legacy: (..., numel, view_metadata)
    if len(saved_id) not in (5, 6):
        raise _Refused("a tensor storage reference is malformed")
    storage_type, key, numel = saved_id[1], saved_id[2], saved_id[4]
    if type(numel) is not int or numel < 0:
        raise _Refused("a tensor storage has an invalid size")
    try:
        elsize = 1 if storage_type is torch.UntypedStorage else \
            torch._utils._element_size(storage_type.dtype)
    except Exception:
        elsize = 16  # the widest element: never under-count
    return key, numel * elsize


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that never imports: allow-listed tensor helpers, otherwise inert stand-ins.

    `fader_budget` bounds the bytes the pickle's tensor storages may claim (together): a
    checkpoint cannot hold more tensor data than its own size, so a claim beyond it is refused
    before torch allocates anything for it.
    """

    def __init__(self, file, *args, fader_budget: Optional[int] = None, **kwargs):
        super().__init__(file, *args, **kwargs)
        self._stubs = {}
        self._budget = fader_budget
        self._claimed: dict = {}

    # torch's loaders assign their storage loader to `persistent_load`: wrap it with the budget.
    @property
    def persistent_load(self):
        return self._bounded_load

    @persistent_load.setter
    def persistent_load(self, fn):
        def bounded(saved_id):
            if isinstance(saved_id, tuple) and saved_id and saved_id[0] in ("storage", b"storage") \
                    and self._budget is not None:
                key, nbytes = _storage_nbytes(saved_id)
                if key not in self._claimed:
                    self._claimed[key] = nbytes
                    total = sum(self._claimed.values())
                    if total > self._budget:
                        raise _Refused(f"its tensors claim {total:,} bytes, more than the file's "
                                       f"{self._budget:,}")
            return fn(saved_id)
        self._bounded_load = bounded
        base = getattr(pickle.Unpickler, "persistent_load", None)
        if hasattr(base, "__set__"):  # the C unpickler keeps its own reference
            base.__set__(self, bounded)

    def find_class(self, module, name):
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Refused(f"a pickle global with a non-string name {module!r}.{name!r}")
        fn = _ALLOWED.get((module, name))
        if fn is not None:
            return fn
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.split(".")[0] in _STDLIB:
            raise _Refused(f"the file references {module}.{name}, which could run code")
        key = (module, name)
        cls = self._stubs.get(key)
        if cls is None:
            short = name.rsplit(".", 1)[-1] or "Global"
            cls = type(short, (Stub,), {"_fader_module": module, "_fader_name": name,
                                        "__module__": __name__, "__qualname__": f"Stub[{module}.{name}]"})
            self._stubs[key] = cls
        return cls


def _safe_load(file, **kwargs):
    return SafeUnpickler(file, **kwargs).load()


# What torch.load needs from a `pickle_module`.
safe_pickle = types.SimpleNamespace(__name__="core.legacy_import.safe_pickle", Unpickler=SafeUnpickler,
                                    load=_safe_load, UnpicklingError=pickle.UnpicklingError)


def safe_torch_load(path):
    """Read a torch.save file (zip or legacy format) into plain data + inert stand-ins.

    Raises ModelFileError naming the file; never imports or calls anything named by the pickle
    except the allow-listed tensor helpers.
    """
    path = Path(path)
    check_file(path, "checkpoint", MAX_FILE_BYTES)
    with open(path, "rb") as f:
        head = f.read(4)
    size = path.stat().st_size
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ModelFileError(f"{path}: corrupt checkpoint (bad zip archive: {e})") from None
        names = [i.filename for i in infos]
        # torch.save stores every record uncompressed: a compressed one could inflate to any size
        packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
        if packed:
            raise ModelFileError(f"{path}: refused to load: the archive holds compressed records "
                                 f"({packed[0]}{' …' if len(packed) > 1 else ''}), which torch.save never "
                                 "writes (a compressed record can expand to any size)")
        if sum(i.file_size for i in infos) > size:
            raise ModelFileError(f"{path}: corrupt checkpoint (its records claim more bytes than the file holds)")
        if is_torchscript(names):
            raise ModelFileError(f"{path}: is a TorchScript archive (contains code), not a reference checkpoint")
        if not any(n.endswith("data.pkl") for n in names):
            raise ModelFileError(f"{path}: not a PyTorch checkpoint (zip archive without data.pkl)")
    elif head[:1] != b"\x80":
        # torch.save's legacy format starts with a pickled magic number (protocol 2+); the pre-2017
        # tar format and anything else is refused here.
        raise ModelFileError(f"{path}: not a PyTorch checkpoint (neither zip nor pickle data)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=safe_pickle,
                              fader_budget=size)
    except _Refused as e:
        raise ModelFileError(f"{path}: refused to load: {e} (pickled code is never executed)") from None
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(f"{path}: corrupt checkpoint (it claims more memory than is available)") from None
    except Exception as e:  # corrupt data of any kind: EOF, bad opcodes, bad storages
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        if head[:1] == b"\x80" and "magic number" in msg.lower():
            # torch's legacy format starts with its magic number: a pickle without it is no torch.save file
            raise ModelFileError(f"{path}: is a plain Python pickle, not saved by torch.save: not a checkpoint "
                                 "import-reference reads (it reads whole-model saves of facebookresearch/FaderNetworks)") from None
        raise ModelFileError(f"{path}: corrupt or unsupported checkpoint ({msg})") from None


# -- reading the stand-in tree ----------------------------------------------------------------
def _state(obj) -> dict:
    """The pickled attribute dict of a stand-in (empty when it has none)."""
    if not isinstance(obj, Stub):
        return {}
    st = obj._fader_state
    if isinstance(st, tuple) and len(st) == 2 and all(s is None or isinstance(s, dict) for s in st):
        merged = {}
        for s in st:
            merged.update(s or {})
        st = merged
    return st if isinstance(st, dict) else {}


# The most list items one field may hold in all: a pickle can share one list many times over
# (its memo), so a few kilobytes can describe more items than could ever be walked.
_MAX_FIELD_ITEMS = 100_000


def _plain(v, depth=0, count=None):
    """A plain value (int/float/str/bool/None, lists/tuples of those) or raise TypeError."""
    if depth > 8:
        raise TypeError("nested too deeply")
    count = [0] if count is None else count  # items met so far, shared by the whole walk
    if isinstance(v, bytes):  # a protocol 3+ pickle's bytes (torch.save writes protocol 2: str)
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise TypeError("bytes that are not UTF-8 text") from None
    if v is None or type(v) in (int, float, str, bool):
        return v
    if type(v) in (list, tuple):
        count[0] += len(v)
        if count[0] > _MAX_FIELD_ITEMS:
            raise TypeError(f"more than {_MAX_FIELD_ITEMS:,} items")
        return [_plain(x, depth + 1, count) for x in v]
    raise TypeError(f"{type(v).__name__} is not a plain value")


class _Reader:
    def __init__(self, path: Path, obj, expected: str):
        self.path = path
        if not isinstance(obj, Stub) or obj._fader_name != expected:
            found = obj.qualified_name() if isinstance(obj, Stub) else type(obj).__name__
            why = ""
            # the same advice as loading it as a model gives (core.model_file._sniff)
            if isinstance(obj, dict) and {"step", "arch", "config"} <= set(obj):
                why = f": it is a fader-train checkpoint; {train_checkpoint_advice(path)}"
            elif isinstance(obj, dict):
                why = f": {state_dict_advice()}"
            elif isinstance(obj, Stub) and expected == "AutoEncoder" and obj._fader_name == "Classifier":
                why = ": give a classifier checkpoint with --classifier, beside the AutoEncoder's"
            raise ModelFileError(f"{path}: does not hold a reference {expected} module (found {found}){why}")
        self.obj = obj
        self.fields = _state(obj)
        self.kind = expected

    def err(self, msg):
        raise ModelFileError(f"{self.path}: {msg}")

    def field(self, name, kind):
        if name not in self.fields:
            self.err(f"the {self.kind} has no field {name!r}")
        try:
            v = _plain(self.fields[name])
        except TypeError as e:
            self.err(f"the {self.kind} field {name!r} is not a plain value ({e})")
        if kind is int and (type(v) is not int or v <= 0) and not (name == "n_skip" and type(v) is int and v == 0):
            self.err(f"the {self.kind} field {name!r} must be a positive integer, got {v!r}")
        if kind is bool:
            if v in (0, 1) and type(v) is int:
                v = bool(v)
            if type(v) is not bool:
                self.err(f"the {self.kind} field {name!r} must be true or false, got {v!r}")
        if kind is float:
            if type(v) not in (int, float) or not math.isfinite(v):
                self.err(f"the {self.kind} field {name!r} must be a number, got {v!r}")
            v = float(v)
        if kind is str and type(v) is not str:
            self.err(f"the {self.kind} field {name!r} must be a string, got {v!r}")
        return v

    def attr_list(self) -> list:
        attr = self.field("attr", list)
        n_attr = self.field("n_attr", int)
        if not isinstance(attr, list) or not attr:
            self.err(f"the {self.kind} field 'attr' must be a non-empty list of (name, n_cat), got {attr!r}")
        out = []
        for item in attr:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is str
                    and type(item[1]) is int and item[1] >= 2):
                self.err(f"the {self.kind} field 'attr' has an invalid entry {item!r} (expected (name, n_cat >= 2))")
            out.append((item[0], item[1]))
        if len({n for n, _ in out}) != len(out):
            self.err(f"the {self.kind} field 'attr' has duplicate names {[n for n, _ in out]}")
        if sum(n for _, n in out) != n_attr:
            self.err(f"the {self.kind} field n_attr={n_attr} does not match 'attr' (sum of n_cat = {sum(n for _, n in out)})")
        return out

    def state_dict(self, target: torch.nn.Module) -> dict:
        """Collect parameters/buffers from the stand-in tree, checking its structure against target."""
        tensors, structure = {}, {}
        self._collect(self.obj, "", tensors, structure, 0, set())
        ours = {name: type(m).__name__ for name, m in target.named_modules() if name}
        theirs = {name: cls for name, cls in structure.items() if name}
        for name in sorted(set(ours) | set(theirs)):
            if ours.get(name) != theirs.get(name):
                self.err(f"the {self.kind}'s layers do not match its fields: layer {name!r} is "
                         f"{theirs.get(name, 'missing')} in the file, expected {ours.get(name, 'nothing')}")
        expected = target.state_dict()
        for k, ref in expected.items():  # torch < 0.4 had no num_batches_tracked
            if k not in tensors and k.endswith("num_batches_tracked"):
                tensors[k] = torch.zeros(ref.shape, dtype=ref.dtype)
        missing = sorted(set(expected) - set(tensors))
        if missing:
            self.err(f"the {self.kind} is missing {counted(len(missing), 'tensor')}: {quoted(missing, most=3)}")
        extra = sorted(set(tensors) - set(expected))
        if extra:
            self.err(f"the {self.kind} has {counted(len(extra), 'unexpected tensor')}: {quoted(extra, most=3)}")
        out = {}
        for k, ref in expected.items():
            t = tensors[k]
            if tuple(t.shape) != tuple(ref.shape):
                self.err(f"{self.kind} tensor {k} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}")
            if ref.is_floating_point():
                if not t.is_floating_point():
                    self.err(f"{self.kind} tensor {k} must be floating point, got {t.dtype}")
                t = t.float()
                if not bool(torch.isfinite(t).all()):
                    self.err(f"{self.kind} tensor {k} contains NaN or infinite values")
                if k.endswith("running_var") and not bool((t >= 0).all()):  # NaN once the layer runs
                    self.err(f"{self.kind} tensor {k} has negative values (a variance cannot be negative)")
            out[k] = t.to(ref.dtype).clone()
        return out

    def _collect(self, obj, prefix, tensors, structure, depth, seen):
        if depth > _MAX_DEPTH or id(obj) in seen:
            self.err(f"the {self.kind}'s module tree is cyclic or too deep")
        seen.add(id(obj))
        structure[prefix[:-1]] = obj._fader_name
        st = _state(obj)
        is_instance_norm = obj._fader_name.startswith("InstanceNorm")
        non_persistent = st.get("_non_persistent_buffers_set") or set()
        if not isinstance(non_persistent, (set, frozenset)):
            self.err(f"layer {prefix[:-1] or self.kind!r} has a malformed _non_persistent_buffers_set")
        for group in ("_parameters", "_buffers"):
            d = st.get(group) or {}
            if not isinstance(d, dict):
                self.err(f"layer {prefix[:-1] or self.kind!r} has a malformed {group}")
            for k, v in d.items():
                if v is None:
                    continue
                if not isinstance(k, str):
                    self.err(f"layer {prefix[:-1] or self.kind!r} has a non-string tensor name {k!r}")
                if group == "_buffers" and (k in non_persistent or
                                            (is_instance_norm and k in ("running_mean", "running_var",
                                                                        "num_batches_tracked"))):
                    # torch < 0.4 kept (unused) running statistics in InstanceNorm layers
                    continue
                if isinstance(v, _ParameterHolder):
                    v = v.data
                if not isinstance(v, torch.Tensor):
                    self.err(f"{prefix}{k} is {type(v).__name__}, not a tensor")
                tensors[prefix + k] = v
        mods = st.get("_modules") or {}
        if not isinstance(mods, dict):
            self.err(f"layer {prefix[:-1] or self.kind!r} has malformed sub-modules")
        for k, m in mods.items():
            if m is None:
                continue
            if not isinstance(k, str) or not isinstance(m, Stub):
                self.err(f"layer {prefix}{k} is {type(m).__name__}, not a module")
            self._collect(m, f"{prefix}{k}.", tensors, structure, depth + 1, seen)


def _attributes(path: Path, ref_attr: list, attributes) -> list:
    """Our attributes for the checkpoint's (name, n_cat) list, renamed/relabelled by `attributes`."""
    def default(name, n):
        values = ("no", "yes") if n == 2 else tuple(str(i) for i in range(n))
        return Attribute(name, values, (-1.0, 2.0))
    if attributes is None:
        return [default(n, k) for n, k in ref_attr]
    attributes = list(attributes)
    if len(attributes) != len(ref_attr):
        raise ModelFileError(f"{path}: the checkpoint has {counted(len(ref_attr), 'attribute')} "
                             f"({quoted(n for n, _ in ref_attr)}), but {len(attributes)} "
                             f"{'was' if len(attributes) == 1 else 'were'} given")
    out = []
    for (ref_name, n), a in zip(ref_attr, attributes):
        if isinstance(a, str):
            a = default(a.strip(), n)
        elif isinstance(a, dict):
            a = Attribute.from_dict(a)
        elif not isinstance(a, Attribute):
            raise ModelFileError(f"{path}: attribute {a!r} must be a name or an Attribute")
        if a.n != n:
            raise ModelFileError(f"{path}: attribute {a.name!r} has {a.n} values but the checkpoint's "
                                 f"{ref_name!r} has {n}")
        out.append(a)
    if len({a.name for a in out}) != len(out):
        raise ModelFileError(f"{path}: attribute names are not unique: {[a.name for a in out]}")
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _import_autoencoder(path: Path):
    r = _Reader(path, safe_torch_load(path), "AutoEncoder")
    ref_attr = r.attr_list()
    fields = {
        "img_size": r.field("img_sz", int), "img_fm": r.field("img_fm", int),
        "init_fm": r.field("init_fm", int), "max_fm": r.field("max_fm", int),
        "n_layers": r.field("n_layers", int), "n_skip": r.field("n_skip", int),
        "deconv_method": r.field("deconv_method", str), "instance_norm": r.field("instance_norm", bool),
        "dec_dropout": r.field("dropout", float), "enc_dropout": 0.0, "n_attr": r.field("n_attr", int),
    }
    try:
        config = ArchConfig.from_dict(fields)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: {e}") from None
    # Layer shapes are compared on the meta device (nothing allocated): only an architecture
    # whose every tensor the file holds is then built for real.
    with torch.device("meta"):
        shapes = AutoEncoder(config)
    state = r.state_dict(shapes)
    ae = AutoEncoder(config)
    ae.load_state_dict(state, strict=True)
    return config, ref_attr, ae.eval(), r.obj.qualified_name()


def _import_classifier(path: Path, img_size: int, ref_attr: list):
    r = _Reader(path, safe_torch_load(path), "Classifier")
    clf_attr = r.attr_list()
    fields = {
        "img_size": r.field("img_sz", int), "img_fm": r.field("img_fm", int),
        "init_fm": r.field("init_fm", int), "max_fm": r.field("max_fm", int),
        "hid_dim": r.field("hid_dim", int), "n_attr": r.field("n_attr", int),
    }
    if fields["img_size"] != img_size:
        raise ModelFileError(f"{path}: the classifier works on {fields['img_size']} px images, "
                             f"the auto-encoder on {img_size} px")
    fields["n_layers"] = int(math.log2(img_size)) if img_size > 0 else 1
    try:
        full_cfg = ArchConfig.from_dict(fields)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: classifier {e}") from None
    with torch.device("meta"):
        full = Classifier(full_cfg)  # shapes only (see _import_autoencoder)
    state = r.state_dict(full)
    # The reference evaluation classifier usually predicts all 40 CelebA attributes: keep the
    # output rows of the auto-encoder's attributes, in the auto-encoder's order.
    offsets, k = {}, 0
    for name, n in clf_attr:
        offsets[name] = (k, n)
        k += n
    rows = []
    for name, n in ref_attr:
        if name not in offsets:
            raise ModelFileError(f"{path}: the classifier does not predict attribute {name!r} "
                                 f"(it has {[a for a, _ in clf_attr]})")
        start, m = offsets[name]
        if m != n:
            raise ModelFileError(f"{path}: the classifier's {name!r} has {m} values, the auto-encoder's has {n}")
        rows.extend(range(start, start + n))
    last = f"proj_layers.{len(full.proj_layers) - 1}"
    index = torch.tensor(rows, dtype=torch.long)
    state[f"{last}.weight"] = state[f"{last}.weight"].index_select(0, index)
    state[f"{last}.bias"] = state[f"{last}.bias"].index_select(0, index)
    cfg = ArchConfig.from_dict({**full_cfg.to_dict(), "n_attr": len(rows)})
    clf = Classifier(cfg)
    clf.load_state_dict(state, strict=True)
    return cfg, clf.eval(), clf_attr


def import_reference_checkpoint(path, attributes: Optional[Sequence] = None,
                                classifier_path=None) -> FaderModel:
    """Convert a reference-repo `torch.save(ae)` checkpoint into a FaderModel, executing nothing.

    `attributes`: names (str) or `Attribute`s replacing the checkpoint's attribute list, in its
    order (each must have the same number of values). `classifier_path`: the reference's
    `src.model.Classifier` checkpoint, stored with the model (its outputs are restricted to the
    auto-encoder's attributes).
    """
    try:
        return _import_reference(Path(path), attributes, classifier_path)
    except ModelFileError as e:
        # messages quote what the file holds (a field's value, its attribute names): a hostile file
        # makes those as long as it likes, and a message is one line a person reads
        text = str(e)
        if len(text) <= _MAX_MESSAGE:
            raise
        raise ModelFileError(text[:_MAX_MESSAGE - 1] + "…") from None


def _import_reference(path: Path, attributes, classifier_path) -> FaderModel:
    config, ref_attr, ae, qualname = _import_autoencoder(path)
    try:
        attrs = _attributes(path, ref_attr, attributes)
    except ModelFileError:
        raise
    except (FaderError, KeyError, TypeError) as e:  # Attribute's own messages do not name the file
        raise ModelFileError(f"{path}: invalid attribute ({e})") from None
    check_attributes(attrs, path)  # what load_model would refuse is refused before anything is written
    clf = clf_cfg = None
    source = {"kind": "facebookresearch/FaderNetworks checkpoint", "file": path.name,
              "class": qualname, "sha256": _sha256(path),
              "attributes": [[n, k] for n, k in ref_attr]}
    if classifier_path is not None:
        cpath = Path(classifier_path)
        clf_cfg, clf, clf_attr = _import_classifier(cpath, config.img_size, ref_attr)
        source["classifier"] = {"file": cpath.name, "sha256": _sha256(cpath),
                                "attributes": [[n, k] for n, k in clf_attr]}
    from .alignment import CELEBA_TEMPLATE
    meta = {
        "name": path.stem,
        "description": f"imported from the reference implementation's checkpoint {path.name}",
        "source": source,
        "license": LICENSE,
        "alignment": CELEBA_TEMPLATE.to_dict(),
    }
    return FaderModel(config, attrs, ae, clf, clf_cfg, meta)
