"""``make data``: checksums, atomic unpacking, and the torchvision download path on a local file."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from simplecnn.core import archives
from simplecnn.core.archives import DataError, prepare, unpack
from simplecnn.core.data import load_dataset


def make_tar(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unpack_verifies_and_marks_complete(tmp_path):
    digest = make_tar(tmp_path / "a.tar.gz", {"pack/x/1.txt": b"hello"})
    target = unpack(tmp_path / "a.tar.gz", digest, tmp_path / "out", "pack")
    assert (target / "x" / "1.txt").read_bytes() == b"hello" and archives.is_ready(target)


def test_checksum_mismatch_is_refused(tmp_path):
    make_tar(tmp_path / "a.tar.gz", {"pack/x/1.txt": b"hello"})
    with pytest.raises(DataError, match="sha256"):
        unpack(tmp_path / "a.tar.gz", "0" * 64, tmp_path / "out", "pack")
    assert not (tmp_path / "out" / "pack").exists()


def test_missing_archive_without_download_is_explained(tmp_path):
    with pytest.raises(DataError, match="not found"):
        prepare(["cifar10"], tmp_path / "no-archives", tmp_path / "data", allow_download=False)


def fake_cifar_tarball(path: Path, per_batch: int = 20) -> dict:
    """CIFAR-10 in its original pickled layout, small; returns the md5s torchvision checks."""
    rng = np.random.default_rng(0)
    files, md5s = {}, {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 255, (per_batch, 3072), dtype=np.uint8),
                 "labels": [i % 10 for i in range(per_batch)]}
        files[name] = pickle.dumps(batch)
        md5s[name] = hashlib.md5(files[name]).hexdigest()
    files["batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
    md5s["batches.meta"] = hashlib.md5(files["batches.meta"]).hexdigest()
    make_tar(path, {f"cifar-10-batches-py/{k}": v for k, v in files.items()})
    return md5s


@pytest.fixture
def mirror(tmp_path):
    """A loopback HTTP server over a local folder: torchvision downloads from it for real."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_path_through_torchvision_on_a_local_file(tmp_path, monkeypatch, cache, mirror):
    from torchvision.datasets import CIFAR10

    folder, url = mirror
    tarball = folder / "cifar-10-python.tar.gz"
    md5s = fake_cifar_tarball(tarball)
    monkeypatch.setattr(CIFAR10, "url", f"{url}/{tarball.name}")
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(tarball.read_bytes()).hexdigest())
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5s[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5s["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5s["batches.meta"]})
    dest = tmp_path / "data"
    out = prepare(["cifar10"], tmp_path / "no-archives", dest)
    assert out["cifar10"] == dest / "cifar-10-batches-py"
    monkeypatch.setenv("SIMPLECNN_DATA", str(dest))
    splits = load_dataset("cifar10", 32, val_fraction=0.1, cache=cache)
    assert splits.sizes() == {"train": 90, "val": 10, "test": 20}
    assert splits.classes[:2] == ["c0", "c1"]


def test_a_reduced_imagenette_travels_and_loads_as_imagenette(tmp_path, monkeypatch, mixed_folder):
    source = tmp_path / "imagenette2-224"
    for split in ("train", "val"):
        mixed_folder(source / split, classes=2, per_class=6)
    archive = archives.reduce_imagenette(source, tmp_path / "reduced", size=40, limit_bytes=10_000_000)
    assert archive.stat().st_size < 10_000_000
    assert (archive.parent / (archive.name + ".sha256")).read_text().split()[0] == archives.file_sha256(archive)
    dest = tmp_path / "data"
    monkeypatch.setenv("SIMPLECNN_DATA", str(dest))
    out = prepare(["imagenette"], tmp_path / "reduced", dest, allow_download=False)
    assert out["imagenette"] == dest / "imagenette2-160"
    splits = load_dataset("imagenette", 32, split_seed=0)
    original = load_dataset(str(source), 32, split_seed=0)
    assert splits.sizes() == original.sizes() and splits.num_classes == 2 and splits.train.resolution == 32
    with pytest.raises(ValueError, match="at most 160"):
        archives.reduce_imagenette(source, tmp_path / "big", size=224)
