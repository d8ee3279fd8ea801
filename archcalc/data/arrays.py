"""Speech data sets as arrays: load and validate the course arrays, save atomically.

A data set is six arrays, ``X_train, y_train, X_val, y_val, X_test, y_test`` (X float of shape
(n, 101, 40), y integer class ids), in one ``.npz`` or a directory of ``.npy`` files, with an
optional ``classes`` array of names. Arrays are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from archcalc.atomic import atomic_open
from archcalc.errors import DataError

SPLITS = ("train", "val", "test")
KEYS = tuple(f"{a}_{s}" for s in SPLITS for a in ("X", "y"))


@dataclass(frozen=True)
class SpeechData:
    """Features and labels per split, with the class names and where they came from."""

    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: tuple[str, ...]
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.X["train"].shape[1:])

    def sizes(self) -> dict[str, int]:
        return {s: int(self.y[s].shape[0]) for s in SPLITS}

    def digest(self) -> str:
        """A short SHA-256 of every array, to record which data a result came from."""
        h = hashlib.sha256()
        for s in SPLITS:
            for arr in (self.X[s], self.y[s]):
                h.update(str(arr.dtype).encode() + str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]


def load_data(path: str | Path, feature_shape: tuple[int, ...] | None = None) -> SpeechData:
    """Read and validate a ``.npz`` file or a directory of ``.npy`` files."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", source=str(path))
    arrays = _read_dir(path) if path.is_dir() else _read_npz(path)
    return validate(arrays, str(path), feature_shape)


NPZ_HINT = "a data set is one .npz (numpy.savez) or a folder of .npy files"


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror})", source=str(path)) from None
    # np.load takes any file that is neither a zip archive nor a .npy array for a pickle, and then
    # refuses it as "pickled data": look at the first bytes so that the message says what the file is
    if not head:
        raise DataError(f"is empty; {NPZ_HINT}", source=str(path))
    if head[:1] == b"\x80":
        raise DataError(f"holds pickled Python objects, which archcalc never loads (unpickling can run "
                        f"code); {NPZ_HINT}", source=str(path))
    if head.startswith(b"\x93NUMPY"):
        raise DataError("holds one array, not the six of a data set (X_train, y_train, ...)",
                        source=str(path))
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise DataError(f"not a readable .npz file: it is not a zip archive; {NPZ_HINT}",
                        source=str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_members(archive, path)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"not a readable .npz file ({exc})", source=str(path)) from None


def _read_members(archive: zipfile.ZipFile, path: Path) -> dict[str, np.ndarray]:
    """Every member a .npy array, each header checked against its size before any array is made."""
    infos = [info for info in archive.infolist() if not info.is_dir()]
    other = [info.filename for info in infos if not info.filename.endswith(".npy")]
    if other:
        raise DataError(f"holds {other[0]!r}, which is not a .npy array; a data set .npz holds only "
                        f".npy arrays ({NPZ_HINT})", source=str(path))
    arrays = {}
    for info in infos:
        key = info.filename[:-len(".npy")]
        with archive.open(info) as handle:
            arrays[key] = _read_npy(handle, info.file_size, key, str(path))
    return arrays


def _read_npy(handle: IO[bytes], size: int, key: str, source: str) -> np.ndarray:
    """One .npy array; a header whose shape does not match the bytes there are is refused unread."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
    except (ValueError, EOFError, OSError) as exc:
        raise DataError(f"array {key!r} has no readable .npy header ({exc})", source=source) from None
    if dtype.hasobject:
        raise DataError(f"array {key!r} holds Python objects and cannot be loaded without pickle, "
                        "which archcalc never uses (unpickling can run code)", source=source)
    claimed = math.prod(shape) * dtype.itemsize
    held = size - handle.tell()
    if claimed != held:
        raise DataError(f"array {key!r}: its header claims shape {shape} of {dtype} ({_bytes(claimed)}), "
                        f"but the file holds {held:,} bytes of data (truncated or altered)", source=source)
    try:
        buffer = bytearray(held)
    except MemoryError:
        raise DataError(f"array {key!r} of shape {shape} ({_bytes(claimed)}) does not fit in memory",
                        source=source) from None
    view, got = memoryview(buffer), 0
    while got < held:
        n = handle.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise DataError(f"array {key!r} is cut short: {got:,} of {held:,} bytes", source=source)
        got += n
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"  # pragma: no cover


def _read_dir(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key in (*KEYS, "classes"):
        file = path / f"{key}.npy"
        if not file.exists():
            continue
        try:
            with file.open("rb") as handle:
                arrays[key] = _read_npy(handle, os.fstat(handle.fileno()).st_size, key, str(file))
        except OSError as exc:
            raise DataError(f"cannot be read ({exc.strerror or exc})", source=str(file)) from None
    return arrays


def validate(arrays: dict[str, np.ndarray], source: str,
             feature_shape: tuple[int, ...] | None = None) -> SpeechData:
    """Check names, shapes, dtypes, finiteness and labels; every problem names the array."""
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DataError(f"missing arrays {', '.join(missing)} (a data set holds {', '.join(KEYS)})",
                        source=source)
    X, y = {}, {}
    first_shape = None
    for split in SPLITS:
        x_arr, y_arr = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if not np.issubdtype(x_arr.dtype, np.floating):
            raise DataError(f"X_{split} must hold floats, has dtype {x_arr.dtype}", source=source)
        if x_arr.ndim != 3:
            raise DataError(f"X_{split} must have shape (n, frames, mels), has {x_arr.shape}",
                            source=source)
        if min(x_arr.shape[1:]) < 1:
            raise DataError(f"X_{split} has features of shape {tuple(x_arr.shape[1:])}; every axis must "
                            "be at least 1", source=source)
        first_shape = first_shape or x_arr.shape[1:]
        if x_arr.shape[1:] != first_shape:
            raise DataError(f"X_{split} has features {x_arr.shape[1:]}, X_train has {first_shape}",
                            source=source)
        if feature_shape is not None and tuple(x_arr.shape[1:]) != tuple(feature_shape):
            raise DataError(f"X_{split} has features of shape {tuple(x_arr.shape[1:])}, "
                            f"expected {tuple(feature_shape)}", source=source)
        if x_arr.shape[0] == 0:
            raise DataError(f"X_{split} is empty", source=source)
        if not np.issubdtype(y_arr.dtype, np.integer):
            raise DataError(f"y_{split} must hold integer class ids, has dtype {y_arr.dtype}",
                            source=source)
        if y_arr.shape != (x_arr.shape[0],):
            raise DataError(f"y_{split} has shape {y_arr.shape}, expected ({x_arr.shape[0]},) "
                            f"to match X_{split}", source=source)
        bad = int(np.size(x_arr) - np.count_nonzero(np.isfinite(x_arr)))
        if bad:
            raise DataError(f"X_{split} holds {bad} NaN or infinite values", source=source)
        X[split] = x_arr.astype(np.float32, copy=False)
        y[split] = y_arr.astype(np.int64, copy=False)
    classes = _classes(arrays, y, source)
    return SpeechData(X=X, y=y, classes=classes, source=source)


def _classes(arrays: dict[str, np.ndarray], y: dict[str, np.ndarray], source: str) -> tuple[str, ...]:
    """The class names: the ``classes`` array, else ``0..K-1`` when the labels use every one of them.

    Labels are checked before any list of names is made: a label of 10**12 without names must not
    make a list of 10**12 names.
    """
    for split, labels in y.items():
        if int(labels.min()) < 0:
            raise DataError(f"y_{split} holds label {int(labels.min())}; class ids start at 0", source=source)
    if "classes" in arrays:
        names = _class_names(arrays["classes"], source)
        for split, labels in y.items():
            high = int(labels.max())
            if high >= len(names):
                raise DataError(f"y_{split} holds label {high}, outside 0..{len(names) - 1} "
                                f"({len(names)} classes)", source=source)
        return names
    used = np.unique(np.concatenate(list(y.values())))
    if int(used[-1]) + 1 != used.size:  # some id below the largest label has no sample
        missing = int(np.flatnonzero(used != np.arange(used.size))[0])
        split = next(s for s, labels in y.items() if int(labels.max()) == int(used[-1]))
        raise DataError(f"y_{split} holds label {int(used[-1])}, but no sample has label {missing}: without "
                        f"a classes array the labels must be 0..K-1, each used (add a classes array "
                        f"naming the classes)", source=source)
    return tuple(str(i) for i in range(used.size))


def _class_names(classes: np.ndarray, source: str) -> tuple[str, ...]:
    if classes.ndim != 1:
        raise DataError(f"classes must be a 1-d array of class names, has shape {classes.shape}"
                        + (f" (the single value {classes.item()!r})" if classes.ndim == 0 else ""),
                        source=source)
    if not (classes.dtype.kind in "US" or np.issubdtype(classes.dtype, np.integer)):
        raise DataError(f"classes must hold names (strings), has dtype {classes.dtype}", source=source)
    names = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in classes.tolist())
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(f"classes names {name!r} twice (classes {seen[name]} and {i}); class names "
                            "must be distinct", source=source)
        seen[name] = i
    return names


def save_npz(data: SpeechData, path: str | Path) -> Path:
    """Write the data set atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    arrays = {f"X_{s}": data.X[s] for s in SPLITS} | {f"y_{s}": data.y[s] for s in SPLITS}
    arrays["classes"] = np.array(data.classes)
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return path
