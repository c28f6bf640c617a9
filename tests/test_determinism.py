"""Determinism: the same run twice, from empty caches, gives the same numbers.

What is and is not deterministic. On one machine, on the CPU, with the same number of
threads and the same package versions, a run is bit-identical: every random draw (weight
initialisation, data splits, batch order, augmentation) comes from a seeded generator, and
the training state (random-generator states included) is checkpointed, so even an
interrupted and resumed run ends with the same weights. Across machines it is not: other
processors (and other builds of PyTorch, oneDNN or BLAS) pick other float kernels and
summation orders, and another thread count splits reductions differently, so weights and
logits differ in the last bits, and over many epochs those differences grow into
differences of a few tenths of a point of accuracy. On a GPU, CUDA kernels that sum with
atomics (convolution backward passes, scatter/index-add) and bf16 mixed precision make even
two runs on the same card differ by about as much. The book therefore fixes every seed and
records the device and thread count in each results file's provenance; it trains the
headline models over several seeds and reports a mean ± std or a bootstrap confidence
interval, intervals wide enough to cover run-to-run variation, so no conclusion rests on a
difference smaller than that. These tests check the first promise: same machine, same
threads, CPU, empty caches twice: identical weights, logits and accuracies, and an
identical results file through the notebook runner.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from simplecnn.core.cache import Cache
from simplecnn.core.train import TrainConfig, accuracy_of, train_model
from simplecnn.pipeline import registry, runner

from conftest import separable_task

TINY = {"channels": [8, 16], "blocks": [1, 1], "stem": "cifar", "stem_channels": 8}
CONFIG = TrainConfig(epochs=2, batch_size=32, lr=0.2, augment=("flip",), seed=5)


def train_fresh(root: Path):
    """A tiny ResNet trained on the synthetic band task with an empty cache at ``root``."""
    data = separable_task()
    trained = train_model("resnet", data, CONFIG, TINY, cache=Cache(root), device=torch.device("cpu"))
    return trained, data


def test_two_runs_from_empty_caches_are_bit_identical(tmp_path: Path):
    (a, data), (b, _) = train_fresh(tmp_path / "a"), train_fresh(tmp_path / "b")
    assert a.key == b.key
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), f"{name} differs between two identical runs"
    la, lb = a.logits(data.test, "test"), b.logits(data.test, "test")
    assert torch.equal(la, lb)
    device = torch.device("cpu")
    assert accuracy_of(a.model, data.test, CONFIG, device) == accuracy_of(b.model, data.test, CONFIG, device)
    assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in a.history] == \
           [{k: v for k, v in r.items() if k != "elapsed_s"} for r in b.history]


def payloads(root: Path) -> dict[str, object]:
    """Every cache entry's payload, by its key (the archive bytes name a temporary file, so
    they are compared loaded, not as bytes)."""
    return {str(p.parent.relative_to(root)): torch.load(p, weights_only=True) for p in sorted(root.rglob("payload.pt"))}


def same(a: object, b: object) -> bool:
    """Equal, tensors bit for bit, through dicts, lists and tuples."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_the_data_notebook_twice_from_empty_caches_writes_the_same_results(tmp_path, mixed_folder, monkeypatch):
    """The data chapter through the runner (its smoke parameters, on a small image folder)."""
    folder = mixed_folder(tmp_path / "images", classes=3, per_class=8)
    study = registry.get("data")
    params = runner.parameters(study.path, "smoke", {"datasets": [str(folder)], "resolutions": {str(folder): 16},
                                                     "per_class": 2})
    docs, caches = [], []
    for run in ("first", "second"):
        cache, out = tmp_path / run / "cache", tmp_path / run / "results"
        monkeypatch.setenv("SIMPLECNN_CACHE", str(cache))  # the kernel inherits it
        runner.execute(study.path, tmp_path / run / "00_data.ipynb", params, runner.Target(out, out))
        docs.append(json.loads((out / "smoke" / "data.json").read_text()))
        caches.append(payloads(cache))
    assert docs[0]["results"] == docs[1]["results"] and docs[0]["params"] == docs[1]["params"]
    assert caches[0] and caches[0].keys() == caches[1].keys(), "cache keys differ (was the code edited mid-test?)"
    differing = [k for k in caches[0] if not same(caches[0][k], caches[1][k])]
    assert not differing, f"cache entries differ between two identical runs: {differing}"
