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
# A reduced Imagenette for machines the full archive cannot travel to (``make data-reduced``):
# its checksum travels beside it in ``<file>.sha256``, since each user makes their own.
REDUCED = Archive("imagenette2-reduced.tar.gz", "", "imagenette2-160")


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
        reduced = archives / REDUCED.file
        if is_ready(dest / spec.folder):
            out[name] = dest / spec.folder
        elif archive.exists():
            print(f"unpacking {archive} -> {dest / spec.folder}", flush=True)
            out[name] = unpack(archive, spec.sha256, dest, spec.folder)
        elif name == "imagenette" and (is_ready(dest / REDUCED.folder) or reduced.exists()):
            print(f"using the reduced Imagenette {reduced} -> {dest / REDUCED.folder}", flush=True)
            sidecar = reduced.with_name(reduced.name + ".sha256")
            out[name] = (dest / REDUCED.folder if is_ready(dest / REDUCED.folder) else
                         unpack(reduced, sidecar.read_text().split()[0], dest, REDUCED.folder))
        elif allow_download:
            print(f"{archive} not found; downloading {name} with torchvision", flush=True)
            out[name] = download(name, dest)
        else:
            raise DataError(f"{archive} not found and downloads are off; put the archive there "
                            f"(see ../shared/data/README.md) or pass --archives DIR")
    return out


def reduce_imagenette(source: Path, out_dir: Path, size: int = 144, limit_bytes: int = 60_000_000,
                      qualities: tuple[int, ...] = (85, 75, 65, 55)) -> Path:
    """Write ``out_dir/imagenette2-reduced.tar.gz`` (+ ``.sha256``): every image of the
    unpacked Imagenette at ``source`` resized to ``size`` px (≤ 160, so the loader's
    resolutions up to that are exact) and re-encoded at the highest JPEG quality that keeps
    the archive under ``limit_bytes``. It unpacks to ``imagenette2-160/`` in the same
    layout, which ``make data ARCHIVES=out_dir`` and the loader take as Imagenette."""
    from PIL import Image

    if size > 160:
        raise ValueError(f"size must be at most 160 px (the reduced archive's folder promises that), got {size}")
    files = sorted(p for p in Path(source).rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"no images under {source}: unpack Imagenette first (`make data`)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / REDUCED.file
    for quality in qualities:
        staging = out_dir / ".reduced"
        shutil.rmtree(staging, ignore_errors=True)
        for path in files:
            target = staging / REDUCED.folder / path.relative_to(source).with_suffix(".JPEG")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with Image.open(path) as img:
                    img.convert("RGB").resize((size, size), Image.BICUBIC).save(target, "JPEG", quality=quality)
            except OSError as exc:
                raise DataError(f"{path} is not a readable image ({exc}); remove it or restore it from the archive")
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(staging / REDUCED.folder, arcname=REDUCED.folder)
        shutil.rmtree(staging)
        if archive.stat().st_size <= limit_bytes:
            break
    else:
        raise DataError(f"{archive} is {archive.stat().st_size / 1e6:.0f} MB even at JPEG quality {qualities[-1]}; "
                        f"pass a smaller size")
    (out_dir / (REDUCED.file + ".sha256")).write_text(f"{file_sha256(archive)}  {REDUCED.file}\n")
    return archive
