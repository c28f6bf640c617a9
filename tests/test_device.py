"""A chapter's ``device`` parameter: what "auto" means, and clear errors for unavailable devices."""

from __future__ import annotations

import pytest
import torch

from simplecnn.core import device as dev
from simplecnn.core.train import default_device


@pytest.fixture(autouse=True)
def reset_choice():
    yield
    dev.use_device("auto")


def test_use_device_makes_auto_follow_the_chapters_choice():
    assert dev.use_device("cpu") == torch.device("cpu")
    assert dev.resolve_device("auto") == torch.device("cpu") and default_device() == torch.device("cpu")
    dev.use_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert dev.resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_or_unknown_device_is_an_error_naming_the_fix():
    with pytest.raises(ValueError, match="not available.*auto"):
        dev.use_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        dev.use_device("tpu")
    assert dev.resolve_device("auto") == torch.device("cpu")  # a failed choice leaves the fallback in place


def test_auto_takes_cuda_where_there_is_one_and_falls_back_to_the_cpu(monkeypatch):
    dev.use_device("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")
    dev.use_device("cpu")  # a chapter's explicit choice wins over what is available
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("cpu")
    dev.use_device("auto")
