"""Speech data sets as arrays: load and validate the course arrays, save atomically.

A data set is six arrays, ``X_train, y_train, X_val, y_val, X_test, y_test`` (X float of shape
(n, 101, 40), y integer class ids), in one ``.npz`` or a directory of ``.npy`` files, with an
optional ``classes`` array of names. Arrays are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

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
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise DataError(f"not a readable .npz file: it is not a zip archive; {NPZ_HINT}",
                        source=str(path))
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"not a readable .npz file ({exc})", source=str(path)) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError("holds one array, not the six of a data set (X_train, y_train, ...)",
                        source=str(path))
    arrays = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as exc:  # object arrays need pickle, which is refused
                raise DataError(f"array {key!r} cannot be loaded without pickle ({exc})",
                                source=str(path)) from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise DataError(f"array {key!r} cannot be read ({exc})", source=str(path)) from None
    return arrays


def _read_dir(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key in (*KEYS, "classes"):
        file = path / f"{key}.npy"
        if not file.exists():
            continue
        try:
            arrays[key] = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"cannot load {file.name} ({exc})", source=str(path)) from None
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
    top = max(int(a.max()) for a in y.values())
    if "classes" in arrays:
        names = tuple(str(c) for c in arrays["classes"].tolist())
    else:
        names = tuple(str(i) for i in range(top + 1))
    for split, labels in y.items():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= len(names):
            raise DataError(f"y_{split} holds label {low if low < 0 else high}, outside 0..{len(names) - 1}"
                            f" ({len(names)} classes)", source=source)
    return names


def save_npz(data: SpeechData, path: str | Path) -> Path:
    """Write the data set atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    arrays = {f"X_{s}": data.X[s] for s in SPLITS} | {f"y_{s}": data.y[s] for s in SPLITS}
    arrays["classes"] = np.array(data.classes)
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return path
