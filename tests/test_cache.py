"""The artifact cache: hit, miss, corrupt and partial entries, atomic writes."""

from __future__ import annotations

import pytest
import torch

from simplecnn.core.cache import MANIFEST, PAYLOAD, spec_key


def test_hit_and_miss(cache):
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(5)}

    a = cache.get_or_compute("thing", {"n": 5}, compute)
    b = cache.get_or_compute("thing", {"n": 5}, compute)
    assert torch.equal(a["x"], b["x"]) and len(calls) == 1
    cache.get_or_compute("thing", {"n": 6}, compute)
    assert len(calls) == 2


def test_key_is_order_independent_and_kind_specific():
    assert spec_key("a", {"x": 1, "y": 2}) == spec_key("a", {"y": 2, "x": 1})
    assert spec_key("a", {"x": 1}) != spec_key("b", {"x": 1})


def test_corrupt_payload_is_detected_and_recomputed(cache):
    cache.save("thing", {"n": 1}, {"x": torch.ones(100)})
    payload = cache.entry("thing", {"n": 1}) / PAYLOAD
    raw = bytearray(payload.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    payload.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.load("thing", {"n": 1}) is None
    value = cache.get_or_compute("thing", {"n": 1}, lambda: {"x": torch.zeros(3)})
    assert torch.equal(value["x"], torch.zeros(3))


def test_entry_without_manifest_is_a_miss(cache):
    folder = cache.entry("thing", {"n": 2})
    folder.mkdir(parents=True)
    torch.save({"x": torch.ones(1)}, folder / PAYLOAD)  # as if interrupted before the manifest
    assert cache.load("thing", {"n": 2}) is None


def test_save_leaves_no_temporary_files_and_drops_scratch(cache):
    scratch = cache.scratch("thing", {"n": 3})
    (scratch / "checkpoint.pt").write_bytes(b"partial")
    folder = cache.save("thing", {"n": 3}, [1, 2, 3])
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, PAYLOAD])
    assert not scratch.exists()
    assert cache.load("thing", {"n": 3}) == [1, 2, 3]


class Pickled:
    """Not a tensor container: ``weights_only=True`` must refuse to unpickle it."""


def test_payload_with_arbitrary_objects_is_refused(cache):
    import json
    from simplecnn.core.io import file_sha256

    folder = cache.save("thing", {"n": 4}, [1])
    torch.save(Pickled(), folder / PAYLOAD)  # a well-formed entry whose payload holds code
    meta = json.loads((folder / MANIFEST).read_text())
    meta.update(size=(folder / PAYLOAD).stat().st_size, sha256=file_sha256(folder / PAYLOAD))
    (folder / MANIFEST).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.load("thing", {"n": 4}) is None


def test_tensor_digest_sees_content_shape_and_dtype():
    from simplecnn.core.cache import tensor_digest
    a = torch.arange(12, dtype=torch.uint8)
    assert tensor_digest(a) == tensor_digest(a.clone())
    assert tensor_digest(a) != tensor_digest(a.view(3, 4))
    assert tensor_digest(a) != tensor_digest(a.float())
    b = a.clone()
    b[5] += 1
    assert tensor_digest(a) != tensor_digest(b)


# --- keys by meaning, and only by the code that can change a payload --------------------------

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from simplecnn.core import cache as cache_module  # noqa: E402
from simplecnn.core.cache import PACKAGE, WEIGHTS, code_digest  # noqa: E402


@pytest.fixture
def package_copy(tmp_path) -> Path:
    """A copy of the package's source to edit (keys are computed from a root folder)."""
    root = tmp_path / "simplecnn"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def edit(root: Path, module: str, old: str, new: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


WEIGHTS_OF_A_LIMITED_RUN = (*WEIGHTS, "studies.limited.augment")


def keys(root: Path) -> dict[str, str]:
    """Every kind's key for one spec, as computed from the source under ``root``."""
    from simplecnn.pipeline.runner import code_digest as chapter_code
    spec = {"n": 1}
    return {"weights": cache_module.spec_key("model", spec, WEIGHTS_OF_A_LIMITED_RUN, root),
            "images": cache_module.spec_key("images", spec, ("core.data",), root),
            "probs": cache_module.spec_key("patch_probs", spec, (*WEIGHTS, "studies.patches", "core.complexity"), root),
            "chapters": chapter_code(root)}


def test_docstring_comment_and_formatting_edits_keep_every_key(package_copy):
    before = keys(package_copy)
    edit(package_copy, "core.metrics", '"""Share of rows whose highest score is the label."""',
         '"""The share of rows whose highest score is the label (a reworded docstring)."""')
    edit(package_copy, "core.train", "def make_scheduler(", "# a new comment\n\n\ndef make_scheduler(")
    edit(package_copy, "core.models", "def scaled_width(channels: int, width: float) -> int:",
         "def scaled_width(channels: int,\n                 width: float) -> int:")
    edit(package_copy, "core.data", '"""Decode files into one', '"""Decode the files into one')
    assert keys(package_copy) == before


def test_a_changed_constant_in_the_training_loop_changes_the_weights_key(package_copy):
    before = keys(package_copy)
    edit(package_copy, "core.train", "return 1 / 25 + (1 - 1 / 25) * s / warm", "return 1 / 20 + (1 - 1 / 20) * s / warm")
    after = keys(package_copy)
    assert after["weights"] != before["weights"] and after["probs"] != before["probs"]
    assert after["images"] == before["images"]  # decoding does not train


def test_a_change_in_metrics_keeps_the_weights_and_reruns_the_chapters(package_copy):
    before = keys(package_copy)
    edit(package_copy, "core.metrics", "return float((_np(scores).argmax(1) == _np(labels)).mean())",
         "return float(np.mean(_np(scores).argmax(1) == _np(labels)))")
    after = keys(package_copy)
    assert after["weights"] == before["weights"] and after["probs"] == before["probs"]
    assert after["chapters"] != before["chapters"]  # every chapter runs again, from the cache


def test_a_study_module_counts_only_where_it_registered_what_trains():
    from simplecnn.core.train import TrainConfig, weights_code
    from simplecnn.studies import limited  # noqa: F401  (registers the paper's colour augmentation)
    from simplecnn.studies.patches import object_bagnet  # noqa: F401  (registers bagnet_object)
    assert weights_code("cifar_resnet18", TrainConfig()) == WEIGHTS
    assert "studies.limited.augment" in weights_code("limited_I", TrainConfig(augment=("oneof:flip+color_hue_scale",)))
    assert "studies.patches.object_bagnet" in weights_code("bagnet_object", TrainConfig())
    assert not any(m.startswith("studies") for m in weights_code("limited_I", TrainConfig()))


def test_an_unknown_module_in_a_key_is_an_error():
    with pytest.raises(ValueError, match="no module 'core.metrix'"):
        code_digest(["core.metrix"])


def test_an_entry_records_its_own_seconds_and_a_hit_counts_them(cache):
    import time
    cache_module.LEDGER.clear()

    def inner():
        time.sleep(0.2)
        return [1]

    def outer():
        cache.get_or_compute("inner", {"n": 1}, inner, code=())
        time.sleep(0.1)
        return [2]

    cache.get_or_compute("outer", {"n": 1}, outer, code=())
    assert cache_module.cold_seconds() == 0  # computed here: the run's wall time holds it
    cache_module.LEDGER.clear()
    cache.get_or_compute("outer", {"n": 1}, outer, code=())  # a hit: inner's and outer's own seconds
    own = sorted(e["own_s"] for e in cache_module.LEDGER.values())
    assert len(own) == 2 and 0.08 < own[0] < 0.19 and 0.19 < own[1] < 0.35
    assert cache_module.cold_seconds() == pytest.approx(sum(own))
