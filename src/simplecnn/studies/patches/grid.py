"""The window grid every patch classifier is scored on, and the windows it cuts."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid:
    """Square windows of side ``q`` at a ``stride`` over ``size``-pixel square images."""

    q: int
    stride: int
    size: int

    def __post_init__(self):
        if not 1 <= self.q <= self.size:
            raise ValueError(f"patch size q={self.q} must be between 1 and the image size {self.size}")
        if self.stride < 1:
            raise ValueError(f"grid stride must be at least 1, got {self.stride}")

    @property
    def side(self) -> int:
        """Windows per row (and per column)."""
        return (self.size - self.q) // self.stride + 1

    @property
    def count(self) -> int:
        return self.side ** 2

    def centres(self) -> torch.Tensor:
        """side × side × 2 (y, x) pixel centres of the windows."""
        c = torch.arange(self.side) * self.stride + (self.q - 1) / 2
        return torch.stack(torch.meshgrid(c, c, indexing="ij"), -1)


def extract(images: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N×3×H×W images → N × P × 3 × q × q windows, row-major over the grid (a copy: bound
    the number of images per call, see ``stream``)."""
    if images.shape[-1] != grid.size or images.shape[-2] != grid.size:
        raise ValueError(f"images are {tuple(images.shape[-2:])} px but the grid is for {grid.size} px")
    w = images.unfold(2, grid.q, grid.stride).unfold(3, grid.q, grid.stride)  # N×3×side×side×q×q
    return w.permute(0, 2, 3, 1, 4, 5).reshape(len(images), grid.count, 3, grid.q, grid.q)
