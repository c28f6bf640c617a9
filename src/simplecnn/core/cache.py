"""Artifact cache: decoded data, trained weights and predictions, keyed by what made them.

An entry lives in ``<root>/<kind>/<key>/`` where ``key`` hashes the entry's spec (data,
model, training settings, seed), the package version and the code that can change the
payload. The payload is written to a temporary file and renamed into place, and a manifest
holding its sha256 is written last, so an interrupted write leaves no entry that looks
complete; a payload whose checksum does not match is dropped and recomputed. Payloads are
loaded with ``weights_only=True``: tensors, numbers, strings, lists and dicts, never code.

**Keyed by meaning, and only by the code that matters.** A module counts by its syntax tree
without docstrings (``source_digest``): comments, docstrings and formatting never reach a
key, so a refactor that keeps the code's meaning keeps every cache entry. Which modules
count depends on the artifact: trained weights on ``WEIGHTS`` (augmentation, architectures,
whitening, the training loop), on the modules that registered the model and its
augmentations (``core.train``) and on the content of the tensors they saw (not on the loader's
code); decoded images on ``core.data``; every other kind on
the modules its caller names (``code=``; by default ``WEIGHTS`` and the study module of the
``compute`` function).
Metrics, plots, complexity counting, memory measurement and results files are in no
weights' key: a change there re-runs the chapters (cheaply, from the cache), never the
training.

**What an entry cost.** Each manifest records the seconds its own computation took (nested
cache work excluded) and the entries it used; a run that loads entries can thus say what it
would have cost from an empty cache (``cold_seconds``, in every results file's provenance).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from simplecnn import __version__
from simplecnn.core import progress
from simplecnn.core.io import atomic_torch_save, atomic_write_bytes, file_sha256
from simplecnn.core.paths import cache_dir

T = TypeVar("T")
PAYLOAD = "payload.pt"
MANIFEST = "manifest.json"
PACKAGE = Path(__file__).resolve().parents[1]  # src/simplecnn

WEIGHTS = ("core.augment", "core.models", "core.whitening", "core.train", "core.distributed")
"""The modules trained weights depend on besides the tensors they were trained on (keyed by
content, ``DataSplits.content``) and the modules that registered the model and its
augmentations: augmentation, architectures and initialisation, the loop that trains."""


# --- code digests ---------------------------------------------------------------------------

def _without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` with the docstring of the module and of every class and function removed."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    tree = _without_docstrings(ast.parse(Path(path).read_text(), filename=path))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def source_digest(path: Path | str) -> str:
    """Hash of a Python file's meaning: its syntax tree without docstrings (comments and
    formatting are not in the tree)."""
    st = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def module_name(module: str) -> str:
    """``core.train`` or ``simplecnn.core.train`` -> ``core.train``."""
    return module.removeprefix("simplecnn.")


def module_path(module: str, root: Path = PACKAGE) -> Path:
    """The file of a module of the package (a package's ``__init__.py``); unknown: an error."""
    parts = module_name(module).split(".")
    base = root.joinpath(*parts)
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.is_file():
        raise ValueError(f"no module {module!r} under {root}: cache keys name the package's modules "
                         f"(e.g. 'core.train', 'studies.patches.sift')")
    return path


def code_digest(modules: Iterable[str], root: Path = PACKAGE) -> str:
    """Hash of the meaning of ``modules`` (names relative to the package; order and
    repeats do not matter)."""
    h = hashlib.sha256()
    for name in sorted({module_name(m) for m in modules}):
        h.update(name.encode())
        h.update(source_digest(module_path(name, root)).encode())
    return h.hexdigest()


def package_digest(root: Path = PACKAGE) -> str:
    """``code_digest`` of every module of the package (what a chapter's code can reach)."""
    names = [".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
             for p in sorted(root.rglob("*.py"))]
    return code_digest([n for n in names if n], root)


def modules_of(*objects: Any) -> tuple[str, ...]:
    """The package modules that define ``objects`` (functions, classes): what a cache key
    names when those objects decide a payload (a registered model or augmentation)."""
    names = (getattr(o, "__module__", "") or "" for o in objects)
    return tuple(dict.fromkeys(module_name(n) for n in names if n.startswith("simplecnn.")))


def spec_key(kind: str, spec: dict, code: tuple[str, ...] = (), root: Path = PACKAGE) -> str:
    """Stable hash of a spec (canonical JSON, sorted keys), the package version and the
    meaning of ``code``, the modules that compute the artifact."""
    text = json.dumps({"kind": kind, "spec": spec, "version": __version__, "code": code_digest(code, root)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_code(fn: Callable) -> tuple[str, ...]:
    """The code a derived artifact depends on unless its caller says otherwise: ``WEIGHTS``
    (it is computed from trained models or from the data) and the study module of the
    function that computes it."""
    return (*WEIGHTS, *(m for m in modules_of(fn) if m.startswith("studies.")))


def tensor_digest(t: torch.Tensor) -> str:
    """Content hash of a tensor (shape, dtype and bytes)."""
    h = hashlib.sha256(f"{tuple(t.shape)}|{t.dtype}".encode())
    h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


# --- what entries cost ----------------------------------------------------------------------

_OPEN: list[dict] = []  # computations in progress, innermost last: {"nested_s", "ledger"}
LEDGER: dict[str, dict] = {}  # this process's entries: "<kind>/<key>" -> {"own_s", "computed"}


def _used(ledger: dict[str, float], computed: str | None = None, elapsed: float = 0.0) -> None:
    """Note entries this process used (loaded, or ``computed`` here) in the ledger and in
    the computation that asked for them."""
    for entry, own in ledger.items():
        LEDGER.setdefault(entry, {"own_s": float(own), "computed": entry == computed})
    if computed is not None:
        LEDGER[computed]["computed"] = True
    if _OPEN:
        _OPEN[-1]["ledger"].update(ledger)
        _OPEN[-1]["nested_s"] += elapsed


def entries_used() -> dict[str, dict[str, float]]:
    """This process's entries and their own seconds: ``loaded`` (computed by an earlier run)
    and ``computed`` here. A book's cold cost counts every loaded entry once, however many
    chapters loaded it."""
    return {which: {name: e["own_s"] for name, e in sorted(LEDGER.items()) if e["computed"] == (which == "computed")}
            for which in ("loaded", "computed")}


def cold_seconds() -> float:
    """Seconds of the computations behind the entries this process loaded instead of
    computing (each counted once): what the run would have added from an empty cache."""
    return float(sum(e["own_s"] for e in LEDGER.values() if not e["computed"]))


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
        started = time.perf_counter()
        folder = self.entry(kind, spec, code)
        manifest, payload = folder / MANIFEST, folder / PAYLOAD
        if not manifest.exists():
            return None
        try:
            meta = json.loads(manifest.read_text())
            if not payload.exists() or payload.stat().st_size != meta["size"] or file_sha256(payload) != meta["sha256"]:
                raise ValueError("payload checksum mismatch")
            value = torch.load(payload, weights_only=True, map_location="cpu")
        except Exception as exc:  # any damage means: recompute
            warnings.warn(f"cache entry {folder} is corrupt ({exc}); recomputing it", stacklevel=2)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        _used(meta.get("ledger", {f"{kind}/{folder.name}": 0.0}), elapsed=time.perf_counter() - started)
        return value

    @contextlib.contextmanager
    def computing(self) -> Iterator[dict]:
        """Time a computation whose result ``save`` stores (pass it the yielded record):
        its own seconds exclude nested cache work, which the entry lists instead."""
        record = {"nested_s": 0.0, "ledger": {}}
        _OPEN.append(record)
        started = time.perf_counter()
        try:
            yield record
        finally:
            _OPEN.pop()
            record["elapsed_s"] = time.perf_counter() - started
            record["own_s"] = max(0.0, record["elapsed_s"] - record["nested_s"])

    def save(self, kind: str, spec: dict, obj: Any, code: tuple[str, ...] = (), cost: dict | None = None) -> Path:
        """Store ``obj`` under ``spec``; ``cost``: the record of ``computing`` that made it."""
        folder = self.entry(kind, spec, code)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)  # the entry is incomplete until the manifest is back
        payload = folder / PAYLOAD
        atomic_torch_save(obj, payload)
        name = f"{kind}/{folder.name}"
        ledger = {name: round(float((cost or {}).get("own_s", 0.0)), 3), **(cost or {}).get("ledger", {})}
        meta = {"kind": kind, "spec": spec, "version": __version__, "code": sorted({module_name(m) for m in code}),
                "size": payload.stat().st_size, "sha256": file_sha256(payload), "ledger": ledger}
        atomic_write_bytes(folder / MANIFEST, json.dumps(meta, indent=1, default=str).encode())
        shutil.rmtree(folder.with_suffix(".partial"), ignore_errors=True)
        _used(ledger, computed=name, elapsed=(cost or {}).get("elapsed_s", 0.0))
        return folder

    def computed_here(self, kind: str, spec: dict, code: tuple[str, ...] = ()) -> None:
        """Mark an entry this run's worker processes computed (and this process loaded) as
        computed by this run, so its seconds are not counted again as loaded."""
        name = f"{kind}/{self.entry(kind, spec, code).name}"
        if name in LEDGER:
            LEDGER[name]["computed"] = True

    def get_or_compute(self, kind: str, spec: dict, compute: Callable[[], T],
                       code: tuple[str, ...] | None = None) -> T:
        """Load the entry for ``spec`` or compute, store and return it; ``code`` (the modules
        whose meaning decides the payload) defaults to ``default_code(compute)``."""
        code = default_code(compute) if code is None else tuple(code)
        hit = self.load(kind, spec, code)
        if hit is not None:
            return hit
        with self.computing() as cost:
            value = compute()
        if cost["own_s"] >= 10:  # worth a line on the terminal
            progress.say(f"{kind} computed in {progress.minutes(cost['own_s'])} (cached)")
        self.save(kind, spec, value, code, cost)
        return value
