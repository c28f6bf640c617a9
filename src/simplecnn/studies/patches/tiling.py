"""Patch-wise inference in bounded memory: a BagNet evaluated tile by tile.

A BagNet's output at (i, j) depends on the q×q input window at (i, j)·stride only, so the
logit map of a large image can be assembled from tiles of at most ``tile`` × ``tile``
output locations, each computed from its own input crop. Peak memory then depends on the
tile, not on the image: this is the proposal's argument for patch classifiers, measured.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from simplecnn.core.memory import peak_bytes, run_isolated
from simplecnn.core.models import BagNet


@torch.no_grad()
def tiled_patch_logits(bagnet: BagNet, x: torch.Tensor, tile: int) -> torch.Tensor:
    """``bagnet.patch_logits(x)`` computed tile by tile (``tile`` output rows and columns at a
    time) and stitched; equal to the whole-image result up to float rounding."""
    if tile < 1:
        raise ValueError(f"tile must be at least one output location, got {tile}")
    q, s = bagnet.q, bagnet.stride
    h, w = (x.shape[-2] - q) // s + 1, (x.shape[-1] - q) // s + 1
    if h < 1 or w < 1:
        raise ValueError(f"the image ({tuple(x.shape[-2:])} px) is smaller than one {q}×{q} patch")
    out = None
    for i in range(0, h, tile):
        for j in range(0, w, tile):
            ih, jw = min(tile, h - i), min(tile, w - j)
            crop = x[..., i * s:(i + ih - 1) * s + q, j * s:(j + jw - 1) * s + q]
            part = bagnet.patch_logits(crop)
            if out is None:
                out = part.new_empty(*part.shape[:2], h, w)
            out[..., i:i + ih, j:j + jw] = part
    return out


def isolated_peak(bagnet: BagNet, kwargs: dict, image: torch.Tensor, tile: int | None) -> tuple[torch.Tensor, int]:
    """Patch logits of ``image`` (1×3×H×W, normalised) and the peak memory of computing them,
    whole (``tile`` None) or tiled, in a fresh interpreter: memory freed earlier in this
    process stays resident and would hide the peak. The file runs as a script, so the
    interpreter imports torch and the core's models only (not this package's scikit-learn
    and OpenCV)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.pt", Path(tmp) / "out.pt"
        torch.save({"state": bagnet.state_dict(), "kwargs": kwargs, "num_classes": bagnet.head.out_channels,
                    "image": image, "tile": tile}, src)
        done = run_isolated(f"import runpy, sys; sys.argv = ['tiling', *sys.argv[1:]]; "
                            f"runpy.run_path({__file__!r}, run_name='__main__')", str(src), str(dst))
        if done.returncode != 0:
            raise RuntimeError(f"isolated BagNet inference failed:\n{done.stderr[-2000:]}")
        out = torch.load(dst, weights_only=True)
    return out["logits"], out["peak"]


def _main(src: str, dst: str) -> None:
    job = torch.load(src, weights_only=True)
    bagnet = BagNet(job["num_classes"], **job["kwargs"]).eval()
    bagnet.load_state_dict(job["state"])
    x, tile = job["image"], job["tile"]
    logits, peak = peak_bytes(lambda: tiled_patch_logits(bagnet, x, tile) if tile else bagnet.patch_logits(x))
    torch.save({"logits": logits, "peak": peak}, dst)


if __name__ == "__main__":
    with torch.no_grad():
        _main(*sys.argv[1:3])


def memory_test(bag, image: torch.Tensor, size: int, q: int, tile: int, bagnet_options: dict) -> tuple[dict, dict]:
    """The chapter's inference-memory test: ``image`` (uint8, 1 × 3 × H × W) upscaled to
    ``size`` px through the trained ``bag`` (``Normalize`` + BagNet) whole and in tiles of
    ``tile``² windows, each in a fresh process: peaks, windows and the logits' agreement; and
    the BagNet's arguments."""
    big = torch.nn.functional.interpolate(image.float() / 255, size=size, mode="bilinear", align_corners=False)
    x = bag[0](big)
    kwargs = {"q": q, **{k: tuple(v) if isinstance(v, list) else v for k, v in bagnet_options.items()
                         if k in ("width", "blocks")}}
    whole, whole_peak = isolated_peak(bag[1], kwargs, x, None)
    tiled, tiled_peak = isolated_peak(bag[1], kwargs, x, tile)
    return {"image_px": size, "q": q, "windows": int(whole[0, 0].numel()), "tile_windows": tile ** 2,
            "whole_peak_bytes": whole_peak, "tiled_peak_bytes": tiled_peak,
            "max_abs_diff": float((whole - tiled).abs().max())}, kwargs
