"""Artifact cache: decoded data, trained weights and predictions, keyed by what made them.

An entry lives in ``<root>/<kind>/<key>/`` where ``key`` hashes the entry's spec (data,
model, training settings, seed) together with the package version. The payload is written
to a temporary file and renamed into place, and a manifest holding its sha256 is written
last, so an interrupted write leaves no entry that looks complete; a payload whose checksum
does not match is dropped and recomputed. Payloads are loaded with ``weights_only=True``:
they are tensors, numbers, strings, lists and dicts, never pickled code.

Code is not part of a key: bump ``simplecnn.__version__`` when a change alters what an
artifact would hold (a training loop that computes differently, a new decoder), and every
entry is recomputed.
"""

from __future__ import annotations

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


def spec_key(kind: str, spec: dict) -> str:
    """Stable hash of a spec: canonical JSON, sorted keys, package version included."""
    text = json.dumps({"kind": kind, "spec": spec, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def tensor_digest(t: torch.Tensor) -> str:
    """Content hash of a tensor (shape, dtype and bytes)."""
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


class Cache:
    """A folder of keyed artifacts. ``Cache()`` uses the project's cache folder."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else cache_dir()

    def entry(self, kind: str, spec: dict) -> Path:
        return self.root / kind / spec_key(kind, spec)

    def scratch(self, kind: str, spec: dict) -> Path:
        """A folder for work in progress on an entry (checkpoints), removed once it is saved."""
        path = self.entry(kind, spec).with_suffix(".partial")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load(self, kind: str, spec: dict) -> Any | None:
        """The stored payload, or None when absent; a corrupt entry is removed and reported."""
        folder = self.entry(kind, spec)
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

    def save(self, kind: str, spec: dict, obj: Any) -> Path:
        folder = self.entry(kind, spec)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)  # the entry is incomplete until the manifest is back
        payload = folder / PAYLOAD
        atomic_torch_save(obj, payload)
        meta = {"kind": kind, "spec": spec, "version": __version__,
                "size": payload.stat().st_size, "sha256": file_sha256(payload)}
        atomic_write_bytes(folder / MANIFEST, json.dumps(meta, indent=1, default=str).encode())
        shutil.rmtree(folder.with_suffix(".partial"), ignore_errors=True)
        return folder

    def get_or_compute(self, kind: str, spec: dict, compute: Callable[[], T]) -> T:
        """Load the entry for ``spec`` or compute, store and return it."""
        hit = self.load(kind, spec)
        if hit is not None:
            return hit
        value = compute()
        self.save(kind, spec, value)
        return value
