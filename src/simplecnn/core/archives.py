"""``make data``: unpack the offline archives (checksums verified) or download.

The shared archives are laid out like a download would be; where they are absent the
same folders are filled by torchvision's downloaders, so the loader never cares which.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from simplecnn.core.io import file_sha256
from simplecnn.core.paths import data_dir


class DataError(RuntimeError):
    """A data problem with a message that names the path and the fix."""


@dataclass(frozen=True)
class Archive:
    file: str
    sha256: str
    folder: str  # what the archive unpacks to


ARCHIVES = {
    "cifar10": Archive("cifar10-jpg.tar.gz",
                       "b4d6b53403b47a973a5b2a9be8c1d46671215710ff260ffb85e85b188866d228", "cifar10-jpg"),
    "imagenette": Archive("imagenette2-224.tar.gz",
                          "e0280d206e728c1edd99a3f60a1757fc61b440379edbdccda339d1dd8addc773", "imagenette2-224"),
}
COMPLETE = ".complete"  # marker written after a folder is fully in place


def is_ready(folder: Path) -> bool:
    return (folder / COMPLETE).exists()


def unpack(archive: Path, expected_sha256: str, dest: Path, folder: str) -> Path:
    """Verify ``archive`` and unpack it so that ``dest/folder`` appears complete or not at all."""
    target = dest / folder
    if is_ready(target):
        return target
    digest = file_sha256(archive)
    if digest != expected_sha256:
        raise DataError(f"{archive} has sha256 {digest}, expected {expected_sha256}: the file is damaged "
                        f"or a different release; replace it with the archive listed in ../shared/data/README.md")
    staging = dest / f".{folder}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    unpacked = staging / folder
    if not unpacked.is_dir():
        raise DataError(f"{archive} does not unpack to {folder}/; it is not the archive this project expects")
    shutil.rmtree(target, ignore_errors=True)
    unpacked.rename(target)
    shutil.rmtree(staging)
    (target / COMPLETE).write_text(expected_sha256 + "\n")
    return target


def download(name: str, dest: Path) -> Path:
    """Fetch a data set with torchvision's downloader (used when no archive is at hand)."""
    from torchvision import datasets

    if name == "cifar10":
        for train in (True, False):
            datasets.CIFAR10(dest, train=train, download=True)
        target = dest / "cifar-10-batches-py"
    elif name == "imagenette":
        datasets.Imagenette(dest, split="train", size="320px", download=True)
        target = dest / "imagenette2-320"
    else:
        raise DataError(f"no downloader for {name!r}; known: {sorted(ARCHIVES)}")
    (target / COMPLETE).write_text("downloaded\n")
    return target


def prepare(names: list[str] | None = None, archives: Path | str = "../shared/data",
            dest: Path | None = None, allow_download: bool = True) -> dict[str, Path]:
    """Make each named data set available under ``dest`` and return where it is."""
    dest = Path(dest) if dest is not None else data_dir()
    dest.mkdir(parents=True, exist_ok=True)
    archives = Path(archives)
    out = {}
    for name in names or list(ARCHIVES):
        if name not in ARCHIVES:
            raise DataError(f"unknown data set {name!r}; known: {sorted(ARCHIVES)}")
        spec = ARCHIVES[name]
        archive = archives / spec.file
        if is_ready(dest / spec.folder):
            out[name] = dest / spec.folder
        elif archive.exists():
            print(f"unpacking {archive} -> {dest / spec.folder}", flush=True)
            out[name] = unpack(archive, spec.sha256, dest, spec.folder)
        elif allow_download:
            print(f"{archive} not found; downloading {name} with torchvision", flush=True)
            out[name] = download(name, dest)
        else:
            raise DataError(f"{archive} not found and downloads are off; put the archive there "
                            f"(see ../shared/data/README.md) or pass --archives DIR")
    return out
