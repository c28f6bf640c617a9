"""Artifact cache: decoded data, trained weights and predictions, keyed by what made them.

An entry lives in ``<root>/<kind>/<key>/`` where ``key`` hashes the entry's spec (data,
model, training settings, seed) together with the package version. The payload is written
to a temporary file and renamed into place, and a manifest holding its sha256 is written
last, so an interrupted write leaves no entry that looks complete; a payload whose checksum
does not match is dropped and recomputed. Payloads are loaded with ``weights_only=True``:
they are tensors, numbers, strings, lists and dicts, never pickled code.

A key covers the code that computes artifacts: the source of the core modules that decide
what a payload holds (``COMPUTE_MODULES``: data, augmentation, models, training, ...) and of
the study module that asks (the module of the ``compute`` function, or ``code=`` given
explicitly), so a changed training loop or study method recomputes its entries and a change
of plots or prose does not. Trained weights are also keyed by the device they were trained
on (``simplecnn.core.train``): a GPU run never reuses CPU weights, or the other way round.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from simplecnn import __version__
from simplecnn.core.io import atomic_torch_save, atomic_write_bytes, file_sha256
from simplecnn.core.paths import cache_dir

T = TypeVar("T")
PAYLOAD = "payload.pt"
MANIFEST = "manifest.json"


COMPUTE_MODULES = ("archives", "augment", "complexity", "data", "memory", "metrics", "models", "receptive",
                   "recipes", "train", "whitening")


@functools.cache
def code_digest(modules: tuple[str, ...] = ()) -> str:
    """Hash of the source of the core's compute modules and of ``modules`` (dotted names of
    modules or packages of simplecnn; a package counts with everything under it)."""
    root = Path(__file__).resolve().parents[1]
    files = [root / "core" / f"{m}.py" for m in COMPUTE_MODULES]
    for module in modules:
        rel = Path(*module.split(".")[1:])
        files += sorted((root / rel).rglob("*.py")) if (root / rel).is_dir() else [(root / rel).with_suffix(".py")]
    h = hashlib.sha256()
    for path in dict.fromkeys(files):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()


def spec_key(kind: str, spec: dict, code: tuple[str, ...] = ()) -> str:
    """Stable hash of a spec (canonical JSON, sorted keys), the package version and the
    code that computes the artifact (``code_digest``)."""
    text = json.dumps({"kind": kind, "spec": spec, "version": __version__, "code": code_digest(tuple(code))},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def study_modules(fn: Callable) -> tuple[str, ...]:
    """The study module a compute function comes from (its code is part of the key)."""
    module = getattr(fn, "__module__", "") or ""
    return (module,) if module.startswith("simplecnn.studies") else ()


def tensor_digest(t: torch.Tensor) -> str:
    """Content hash of a tensor (shape, dtype and bytes)."""
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


class Cache:
    """A folder of keyed artifacts. ``Cache()`` uses the project's cache folder."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else cache_dir()

    def entry(self, kind: str, spec: dict, code: tuple[str, ...] = ()) -> Path:
        return self.root / kind / spec_key(kind, spec, code)

    def scratch(self, kind: str, spec: dict, code: tuple[str, ...] = ()) -> Path:
        """A folder for work in progress on an entry (checkpoints), removed once it is saved."""
        path = self.entry(kind, spec, code).with_suffix(".partial")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load(self, kind: str, spec: dict, code: tuple[str, ...] = ()) -> Any | None:
        """The stored payload, or None when absent; a corrupt entry is removed and reported."""
        folder = self.entry(kind, spec, code)
        manifest, payload = folder / MANIFEST, folder / PAYLOAD
        if not manifest.exists():
            return None
        try:
            meta = json.loads(manifest.read_text())
            if not payload.exists() or payload.stat().st_size != meta["size"] or file_sha256(payload) != meta["sha256"]:
                raise ValueError("payload checksum mismatch")
            return torch.load(payload, weights_only=True, map_location="cpu")
        except Exception as exc:  # any damage means: recompute
            warnings.warn(f"cache entry {folder} is corrupt ({exc}); recomputing it", stacklevel=2)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def save(self, kind: str, spec: dict, obj: Any, code: tuple[str, ...] = ()) -> Path:
        folder = self.entry(kind, spec, code)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)  # the entry is incomplete until the manifest is back
        payload = folder / PAYLOAD
        atomic_torch_save(obj, payload)
        meta = {"kind": kind, "spec": spec, "version": __version__, "code": code_digest(tuple(code)),
                "size": payload.stat().st_size, "sha256": file_sha256(payload)}
        atomic_write_bytes(folder / MANIFEST, json.dumps(meta, indent=1, default=str).encode())
        shutil.rmtree(folder.with_suffix(".partial"), ignore_errors=True)
        return folder

    def get_or_compute(self, kind: str, spec: dict, compute: Callable[[], T],
                       code: tuple[str, ...] | None = None) -> T:
        """Load the entry for ``spec`` or compute, store and return it; ``code`` defaults to
        the study module that ``compute`` comes from."""
        code = study_modules(compute) if code is None else tuple(code)
        hit = self.load(kind, spec, code)
        if hit is not None:
            return hit
        value = compute()
        self.save(kind, spec, value, code)
        return value
