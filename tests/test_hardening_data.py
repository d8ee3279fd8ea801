"""Data files a user can get wrong: each ends in one line naming the file, exit 2, or a counted skip."""

from __future__ import annotations

import io
import json
import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_data import arrays, info_error, sine, wav_folder, write_wav  # noqa: F401 (fixture)

from archcalc.data.arrays import load_data
from archcalc.errors import DataError


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def with_header_shape(raw: bytes, old: str, new: str) -> bytes:
    """A .npy whose header claims another shape, the header kept at its length."""
    length = 10 + int.from_bytes(raw[8:10], "little")
    header = raw[10:length].decode("latin1").replace(old, new)
    header = header.rstrip(" \n")
    header = header + " " * (length - 10 - len(header) - 1) + "\n"
    return raw[:10] + header.encode("latin1") + raw[length:]


# --------------------------------------------------------------------------- .npz and .npy files

def test_truncated_member_names_the_array_and_the_bytes(cli, tmp_path):
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays().items()}
    members["X_val.npy"] = members["X_val.npy"][:5000]  # a member cut short inside a valid zip
    path = write_zip(tmp_path / "cut.npz", members)
    message = info_error(cli, path)
    assert str(path) in message and "X_val" in message and "bytes" in message


def test_truncated_archive_is_one_line(cli, tmp_path):
    np.savez(tmp_path / "good.npz", **arrays())
    raw = (tmp_path / "good.npz").read_bytes()
    for cut in (len(raw) // 3, len(raw) - 10):
        (tmp_path / "cut.npz").write_bytes(raw[:cut])
        assert "cut.npz" in info_error(cli, tmp_path / "cut.npz")


def test_zip_with_a_member_that_is_not_npy(cli, tmp_path):
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays().items()}
    members["notes.txt"] = b"hello"
    path = write_zip(tmp_path / "mixed.npz", members)
    message = info_error(cli, path)
    assert "mixed.npz" in message and "notes.txt" in message and "not a .npy" in message


@pytest.mark.parametrize("folder", [False, True])
def test_header_claiming_a_trillion_rows_is_refused_before_allocating(cli, tmp_path, folder):
    d = arrays()
    members = {f"{k}.npy": npy_bytes(v) for k, v in d.items()}
    members["X_train.npy"] = with_header_shape(members["X_train.npy"], "(6, 101, 40)", "(1000000000000, 101, 40)")
    if folder:
        path = tmp_path / "npy"
        path.mkdir()
        for name, data in members.items():
            (path / name).write_bytes(data)
    else:
        path = write_zip(tmp_path / "huge.npz", members)
    message = info_error(cli, path)
    assert "X_train" in message and "1000000000000" in message and "bytes" in message
    assert "Unable to allocate" not in message


@pytest.mark.parametrize("classes,message", [
    (np.array("yes"), "classes must be a 1-d array of class names, has shape ()"),
    (np.array(3), "classes must be a 1-d array of class names, has shape ()"),
    (np.array([["yes", "no", "up"]]), "classes must be a 1-d array of class names, has shape (1, 3)"),
    (np.array(["yes", "yes", "up"]), "classes names 'yes' twice"),
])
def test_classes_must_be_a_list_of_distinct_names(cli, tmp_path, classes, message):
    d = arrays()
    d["classes"] = classes
    np.savez(tmp_path / "bad.npz", **d)
    assert message in info_error(cli, tmp_path / "bad.npz")


def test_features_with_an_empty_axis(cli, tmp_path):
    d = arrays()
    for split in ("train", "val", "test"):
        d[f"X_{split}"] = np.zeros((6, 0, 40), np.float32)
    np.savez(tmp_path / "bad.npz", **d)
    assert "X_train has features of shape (0, 40)" in info_error(cli, tmp_path / "bad.npz")


def test_a_huge_label_without_classes_is_refused_without_allocating(cli, tmp_path):
    d = arrays()
    d["y_train"] = d["y_train"].copy()
    d["y_train"][0] = 10**12
    np.savez(tmp_path / "bad.npz", **d)
    message = info_error(cli, tmp_path / "bad.npz")
    assert "y_train holds label 1000000000000" in message and "classes" in message


def test_labels_without_classes_may_be_any_used_range(tmp_path):
    np.savez(tmp_path / "ok.npz", **arrays())
    assert load_data(tmp_path / "ok.npz").classes == ("0", "1", "2")


def test_info_counts_by_class_index(cli, tmp_path):
    d = arrays()
    d["classes"] = np.array(["yes", "no", "up"])
    np.savez(tmp_path / "ok.npz", **d)
    doc = json.loads(cli("data", "info", tmp_path / "ok.npz", "--json").stdout)
    assert doc["splits"]["train"]["per_class"] == {"yes": 2, "no": 2, "up": 2}


def test_duplicate_class_names_in_memory_are_shown_apart():
    from archcalc.data.arrays import SpeechData
    from archcalc.render.data import data_document

    y = {s: np.array([0, 0, 0, 1, 2]) for s in ("train", "val", "test")}
    X = {s: np.zeros((5, 2, 2), np.float32) for s in ("train", "val", "test")}
    doc = data_document(SpeechData(X, y, ("yes", "yes", "up")))
    per_class = doc["splits"]["train"]["per_class"]
    assert sum(per_class.values()) == 5 and len(per_class) == 3


# --------------------------------------------------------------------------- WAV folders

@pytest.mark.parametrize("word", ["../d", "../../d", "a/b", ".", "..", "a\\b", "/tmp"])
def test_prepare_words_must_be_plain_folder_names(cli, wav_folder, tmp_path, word):  # noqa: F811
    (tmp_path / "d").mkdir(exist_ok=True)  # wav_folder/../d exists: outside the data folder
    result = cli("data", "prepare", wav_folder, "--words", f"yes,{word}", "--out", tmp_path / "x.npz")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "plain folder name" in result.stderr and word in result.stderr
    assert not (tmp_path / "x.npz").exists()


def test_prepare_refuses_a_word_given_twice(cli, wav_folder, tmp_path):  # noqa: F811
    result = cli("data", "prepare", wav_folder, "--words", "yes,no,yes", "--out", tmp_path / "x.npz")
    assert result.exit_code == 2 and "'yes' twice" in result.stderr


@pytest.mark.parametrize("kind", ["latin1", "folder"])
def test_prepare_unreadable_list_file(cli, wav_folder, tmp_path, kind):  # noqa: F811
    target = wav_folder / "validation_list.txt"
    if kind == "folder":
        target.mkdir()
    else:
        target.write_bytes("yes/spk0_nohash_0.wav\nno/caf\xe9.wav\n".encode("latin1"))
    result = cli("data", "prepare", wav_folder, "--out", tmp_path / "x.npz")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "validation_list.txt" in result.stderr
    assert ("UTF-8" if kind == "latin1" else "is a folder") in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_prepare_skips_a_fifo_named_wav(cli, wav_folder, tmp_path):  # noqa: F811
    (wav_folder / "validation_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\n")
    (wav_folder / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\n")
    os.mkfifo(wav_folder / "yes" / "pipe_nohash_0.wav")
    (wav_folder / "no" / "dir_nohash_0.wav").mkdir()

    def hung(*_):
        raise TimeoutError("prepare blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        result = cli("data", "prepare", wav_folder, "--out", tmp_path / "x.npz")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.exit_code == 0, result.output
    assert "2 not a regular file" in result.stdout and "skipped 6 files" in result.stdout


def test_data_error_is_raised_by_the_library(tmp_path):
    d = arrays()
    d["classes"] = np.array("yes")
    np.savez(tmp_path / "bad.npz", **d)
    with pytest.raises(DataError):
        load_data(tmp_path / "bad.npz")
