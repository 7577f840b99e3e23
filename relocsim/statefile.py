"""Data-only state files: a tree of plain data stored as JSON plus NumPy arrays in one ``.npz``.

Owns the encoding of a model's state for checkpoints. What it stores:

- ``None``, bools, ints, floats and strings as JSON; lists, tuples, dicts (any hashable keys),
  sets and paths as tagged JSON nodes;
- NumPy arrays (numeric, bool, fixed-width text) as ``.npz`` members, NumPy scalars by dtype;
  object arrays of text by their distinct values and codes; object arrays of weak references to
  Mesa agents (the firm table's agent column) by their length only (the agents are the model's
  face and are rebuilt from the tables);
- ``numpy.random.Generator`` and ``random.Random`` by their state;
- pandas DataFrames column by column (numeric, text, categorical);
- instances of relocsim's own classes (dataclasses or plain classes) by their attributes, so new
  state fields need no code here. Objects referenced twice are stored once and come back shared.

Reading never unpickles (``allow_pickle=False``) and rebuilds only classes of already imported
``relocsim`` modules, without calling their constructors. A SHA-256 checksum over the JSON tree
and every array's dtype, shape and bytes is checked before anything is decoded.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
import weakref
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

FORMAT = "relocsim-state"
FORMAT_VERSION = 2  # 2: text arrays as distinct values and codes
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class StateFileError(ValueError):
    """A state that cannot be stored, or a file that is not an intact relocsim state file."""


def _is_agent(value: Any) -> bool:
    import mesa

    return isinstance(value, mesa.Agent)


def _is_agent_reference(value: Any) -> bool:
    """A weak reference to a Mesa agent (the firm table's agent column), or a dead one."""
    return isinstance(value, weakref.ref) and (value() is None or _is_agent(value()))


def _relocsim_type(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return module == "relocsim" or module.startswith("relocsim.")


class _Encoder:
    """Turns a state tree into a JSON-able tree plus a list of arrays."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # holds encoded objects so that their ids stay unique

    def _shared(self, value: Any) -> dict | None:
        ref = self.memo.get(id(value))
        return None if ref is None else {"$t": "ref", "id": ref}

    def _remember(self, value: Any) -> int:
        ref = len(self.memo)
        self.memo[id(value)] = ref
        self.keep.append(value)
        return ref

    def _array(self, value: np.ndarray, where: str) -> dict:
        shared = self._shared(value)
        if shared:
            return shared
        ref = self._remember(value)
        if value.dtype == object:
            flat = value.ravel()
            if all(v is None or _is_agent_reference(v) for v in flat):
                return {"$t": "agents", "id": ref, "shape": list(value.shape)}
            if pd.api.types.infer_dtype(flat, skipna=False) == "string":
                return self._strings(flat, ref, value.shape)
            raise StateFileError(f"{where}: an object array holding {type(flat[0]).__name__}")
        if value.dtype.hasobject or value.dtype.kind not in "biufcUSM m":
            raise StateFileError(f"{where}: arrays of dtype {value.dtype} cannot be stored")
        self.arrays.append(np.ascontiguousarray(value))
        return {"$t": "array", "id": ref, "i": len(self.arrays) - 1}

    def _strings(self, flat: np.ndarray, ref: int, shape: tuple[int, ...]) -> dict:
        """Text by its distinct values and codes: a decision panel's pool names, stored as
        fixed-width text, took 120 bytes a cell and made checkpoints of 600 MB."""
        codes, distinct = pd.factorize(flat)
        self.arrays.append(codes.astype(np.int32 if len(distinct) < 2**31 else np.int64))
        self.arrays.append(np.asarray(distinct, dtype=str))
        n = len(self.arrays)
        return {"$t": "strings", "id": ref, "codes": n - 2, "values": n - 1, "shape": list(shape)}

    def _frame(self, frame: pd.DataFrame, where: str) -> dict:
        columns = []
        for name in frame.columns:
            series = frame[name]
            if isinstance(series.dtype, pd.CategoricalDtype):
                columns.append(
                    {
                        "kind": "category",
                        "codes": self.encode(series.cat.codes.to_numpy(), where),
                        "categories": self.encode(series.cat.categories.to_numpy(), where),
                        "ordered": bool(series.cat.ordered),
                    }
                )
            else:
                columns.append(
                    {"kind": "plain", "values": self.encode(series.to_numpy(), f"{where}.{name}")}
                )
        index = frame.index
        default = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        return {
            "$t": "frame",
            "names": [self.encode(n, where) for n in frame.columns],
            "columns": columns,
            "index": None if default else self.encode(index.to_numpy(), where),
            "length": len(frame),
        }

    def _object(self, value: Any, where: str) -> dict:
        shared = self._shared(value)
        if shared:
            return shared
        cls = type(value)
        if not _relocsim_type(cls) or _is_agent(value) or not hasattr(value, "__dict__"):
            raise StateFileError(f"{where}: a {cls.__module__}.{cls.__qualname__} cannot be stored")
        ref = self._remember(value)
        fields = {k: self.encode(v, f"{where}.{k}") for k, v in vars(value).items()}
        return {
            "$t": "object",
            "id": ref,
            "type": f"{cls.__module__}:{cls.__qualname__}",
            "fields": fields,
        }

    def encode(self, value: Any, where: str = "state") -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float) and type(value) in (int, float):
            return value
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, np.generic):
            return {"$t": "scalar", "dtype": value.dtype.str, "v": value.item()}
        if isinstance(value, list | tuple | set | frozenset):
            kind = type(value).__name__ if type(value) in (list, tuple, set, frozenset) else None
            if kind is None:
                raise StateFileError(f"{where}: a {type(value).__name__} cannot be stored")
            items = sorted(value, key=repr) if kind in ("set", "frozenset") else value
            return {"$t": kind, "v": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(items)]}
        if isinstance(value, dict):
            shared = self._shared(value)
            if shared:
                return shared
            ref = self._remember(value)
            return {
                "$t": "dict",
                "id": ref,
                "k": [self.encode(k, where) for k in value],
                "v": [self.encode(v, f"{where}.{k}") for k, v in value.items()],
            }
        if isinstance(value, PurePath):
            return {"$t": "path", "v": str(value)}
        if isinstance(value, np.random.Generator):
            state = value.bit_generator.state
            return {"$t": "generator", "state": self.encode(state, where)}
        if isinstance(value, random.Random):
            return {"$t": "random", "state": self.encode(value.getstate(), where)}
        if isinstance(value, pd.DataFrame):
            return self._frame(value, where)
        return self._object(value, where)


class _Decoder:
    """Rebuilds a state tree from its JSON tree and arrays."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        self.memo: dict[int, Any] = {}

    def _class(self, name: str) -> type:
        module_name, _, qualname = name.partition(":")
        module = sys.modules.get(module_name)
        if not (module_name == "relocsim" or module_name.startswith("relocsim.")) or not module:
            raise StateFileError(f"refers to {name!r}, which is not a loaded relocsim class")
        cls: Any = module
        for part in qualname.split("."):
            cls = getattr(cls, part, None)
        if not isinstance(cls, type) or not _relocsim_type(cls) or _is_agent_type(cls):
            raise StateFileError(f"refers to {name!r}, which is not a relocsim data class")
        return cls

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        kind = node.get("$t")
        if kind == "ref":
            return self.memo[node["id"]]
        if kind == "array":
            value = self.arrays[node["i"]]
            self.memo[node["id"]] = value
            return value
        if kind == "strings":
            distinct = self.arrays[node["values"]].astype(object)
            value = distinct[self.arrays[node["codes"]]].reshape(node["shape"])
            self.memo[node["id"]] = value
            return value
        if kind == "agents":
            value = np.full(tuple(node["shape"]), None, dtype=object)
            self.memo[node["id"]] = value
            return value
        if kind == "scalar":
            return np.dtype(node["dtype"]).type(node["v"])
        if kind in ("list", "tuple", "set", "frozenset"):
            items = [self.decode(v) for v in node["v"]]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
        if kind == "dict":
            value: dict = {}
            self.memo[node["id"]] = value
            for k, v in zip(node["k"], node["v"], strict=True):
                value[self.decode(k)] = self.decode(v)
            return value
        if kind == "path":
            return Path(node["v"])
        if kind == "generator":
            return _generator(self.decode(node["state"]))
        if kind == "random":
            rng = random.Random()
            rng.setstate(self.decode(node["state"]))
            return rng
        if kind == "frame":
            return self._frame(node)
        if kind == "object":
            cls = self._class(node["type"])
            value = object.__new__(cls)
            self.memo[node["id"]] = value
            for name, field_node in node["fields"].items():
                object.__setattr__(value, name, self.decode(field_node))
            return value
        raise StateFileError(f"unknown node {kind!r}")

    def _frame(self, node: dict) -> pd.DataFrame:
        data = {}
        for name_node, column in zip(node["names"], node["columns"], strict=True):
            name = self.decode(name_node)
            if column["kind"] == "category":
                data[name] = pd.Categorical.from_codes(
                    self.decode(column["codes"]),
                    self.decode(column["categories"]),
                    ordered=column["ordered"],
                )
            else:
                data[name] = self.decode(column["values"])
        index = None if node["index"] is None else self.decode(node["index"])
        frame = pd.DataFrame(data, index=index)
        if not data:
            frame = pd.DataFrame(index=index if index is not None else range(node["length"]))
        return frame


def _is_agent_type(cls: type) -> bool:
    import mesa

    return issubclass(cls, mesa.Agent | mesa.Model)


def _generator(state: dict) -> np.random.Generator:
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise StateFileError(f"unknown bit generator {name!r}")
    bit_generator = getattr(np.random, name)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _checksum(tree: bytes, arrays: Iterable[np.ndarray]) -> str:
    digest = hashlib.sha256(tree)
    for array in arrays:
        digest.update(f"|{array.dtype.str}|{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _json_bytes(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, sort_keys=True).encode(), dtype=np.uint8)


def prepare(header: dict[str, Any], state: Any) -> Callable[[Path], None]:
    """Encode ``state`` under the JSON-able ``header`` now, and return what writes the state file
    to a path: a checkpoint streams its arrays to the disk, not through a copy in memory.

    Raises:
        StateFileError: a part of ``state`` cannot be stored as data (the message names it).
    """
    encoder = _Encoder()
    tree = json.dumps(encoder.encode(state), sort_keys=True).encode()
    full_header = {
        **header,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sha256": _checksum(tree, encoder.arrays),
    }
    members = {f"a{i}": a for i, a in enumerate(encoder.arrays)}

    def write(path: Path) -> None:
        with open(path, "wb") as handle:  # a path not ending in .npz would get the suffix added
            np.savez(
                handle,
                header=_json_bytes(full_header),
                tree=np.frombuffer(tree, dtype=np.uint8),
                **members,
            )

    return write


def dumps(header: dict[str, Any], state: Any) -> bytes:
    """The bytes of a state file holding ``state`` under the JSON-able ``header`` (see
    :func:`prepare`)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.npz"
        prepare(header, state)(path)
        return path.read_bytes()


def read_header(path: Path) -> tuple[dict[str, Any], Any]:
    """The header of the state file at ``path`` and an opened archive to :func:`read_state` from.

    Raises:
        StateFileError: not a readable relocsim state file (damaged, another format, a folder).
    """
    if path.is_dir():
        raise StateFileError("is a folder, not a checkpoint file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise StateFileError(f"is not a relocsim checkpoint ({_short(exc)})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise StateFileError("is not a relocsim checkpoint (a bare array, not an archive)")
    try:
        header = json.loads(archive["header"].tobytes())
    except Exception as exc:  # any damage in the header: refuse
        archive.close()
        raise StateFileError(f"has a damaged header ({_short(exc)})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        archive.close()
        raise StateFileError("is not a relocsim checkpoint (no relocsim header)")
    if header.get("format_version") != FORMAT_VERSION:
        archive.close()
        raise StateFileError(
            f"has format version {header.get('format_version')!r}; this relocsim reads "
            f"{FORMAT_VERSION}"
        )
    return header, archive


def read_state(header: dict[str, Any], archive: Any) -> Any:
    """Check the checksum of an archive opened by :func:`read_header` and decode its state.

    Raises:
        StateFileError: the checksum does not match or the content is malformed.
    """
    try:
        with archive:
            tree = archive["tree"].tobytes()
            count = sum(1 for name in archive.files if name.startswith("a"))
            arrays = [archive[f"a{i}"] for i in range(count)]
    except Exception as exc:  # a damaged member (zip CRC, truncated data): refuse
        raise StateFileError(f"is damaged ({_short(exc)})") from exc
    if _checksum(tree, arrays) != header.get("sha256"):
        raise StateFileError("is damaged (its SHA-256 checksum does not match its content)")
    try:
        return _Decoder(arrays).decode(json.loads(tree))
    except StateFileError:
        raise
    except Exception as exc:  # a well-formed archive with a malformed tree
        raise StateFileError(f"has a malformed state ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
