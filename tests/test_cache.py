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
