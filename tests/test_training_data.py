import numpy as np
import pytest

from infogan.contract import InfoganError
from infogan.files import read_idx
from infogan.training.data import load_split, verify


def _write_idx(path, arr: np.ndarray):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_real_mnist_files_verify_and_parse(data_dir):
    verify(data_dir, "mnist")
    x, y = load_split(data_dir, "mnist", "train")
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and set(np.unique(y)) == set(range(10))
    xt, yt = load_split(data_dir, "mnist", "test")
    assert xt.shape == (10000, 1, 28, 28)
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]  # the canonical first test labels


def test_idx_round_trip(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    _write_idx(tmp_path / "x", arr)
    assert np.array_equal(read_idx(tmp_path / "x", 3), arr)


def test_truncated_idx_gives_one_clear_line(tmp_path):
    arr = np.zeros((5, 28, 28))
    _write_idx(tmp_path / "x", arr)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-10])
    with pytest.raises(InfoganError, match="truncated or corrupted") as e:
        read_idx(tmp_path / "x", 3)
    assert "\n" not in str(e.value)


def test_bad_magic_and_wrong_rank_are_refused(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x1f\x8b\x08\x00" + b"0" * 100)  # a gzip header, not IDX
    with pytest.raises(InfoganError, match="not an IDX file"):
        read_idx(tmp_path / "junk", 3)
    _write_idx(tmp_path / "labels", np.zeros(4))
    with pytest.raises(InfoganError, match="expected unsigned bytes with 3 dims"):
        read_idx(tmp_path / "labels", 3)


def test_mismatched_or_missing_file_names_the_file_and_the_fetch_command(tmp_path, data_dir):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in (data_dir / "mnist").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 10008)
    with pytest.raises(InfoganError, match="t10k-labels-idx1-ubyte is corrupted.*infogan data"):
        verify(tmp_path, "mnist")
    (folder / "train-images-idx3-ubyte").unlink()
    with pytest.raises(InfoganError, match="train-images-idx3-ubyte is missing.*infogan data --dataset mnist"):
        verify(tmp_path, "mnist")


def test_unknown_dataset_is_refused():
    with pytest.raises(InfoganError, match="dataset='cifar'"):
        verify("data", "cifar")


def test_a_failed_fetch_names_each_source_and_its_own_reason(tmp_path, monkeypatch):
    """A file with the wrong bytes is reported as an MD5 mismatch, not as a network failure."""
    import dataclasses
    import gzip

    from infogan.training import data

    source = tmp_path / "debian"
    source.mkdir()
    spec = dataclasses.replace(data.DATASETS["fashion-mnist"], debian_dir=str(source), mirrors=())
    for fname in spec.md5:
        with gzip.open(source / (fname + ".gz"), "wb") as f:
            f.write(b"not the real bytes")
    monkeypatch.setitem(data.DATASETS, "fashion-mnist", spec)
    with pytest.raises(InfoganError) as err:
        data.fetch(tmp_path / "data", "fashion-mnist")
    message = str(err.value)
    assert f"{source}: " in message and "has MD5" in message and "expected" in message
    assert "no mirrors" in message and "\n" not in message
    assert not list((tmp_path / "data" / "fashion-mnist").glob("*"))  # nothing half-written is left
