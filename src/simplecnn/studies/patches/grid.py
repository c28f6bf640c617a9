"""The window grid every patch classifier is scored on, the windows it cuts, and which
windows of an image count as background by a detector's scores (the centre detector's
scores depend on the grid alone)."""

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


def centre_scores(n_images: int, grid: Grid) -> torch.Tensor:
    """N × side × side: minus the distance (px) of each window's centre from the image centre."""
    centre = (grid.size - 1) / 2
    d = (grid.centres() - centre).pow(2).sum(-1).sqrt()
    return (-d).expand(n_images, -1, -1).clone()


def background_mask(scores: torch.Tensor, share: float, seed: int = 0) -> torch.Tensor:
    """N × side × side bool, True on background: in each image the round(share · P) windows
    with the lowest scores (at least one window of each kind). Ties (a ring of windows
    equally far from the centre, a ReLU'd map's zeros) are broken in a seeded random order,
    so the count is exact and no side of the grid is favoured."""
    if not 0 < share < 1:
        raise ValueError(f"the background share must be strictly between 0 and 1, got {share}")
    flat = scores.flatten(1).double()
    p = flat.shape[1]
    if p < 2:
        raise ValueError("a grid of one window has no background/object split; use a smaller q or stride")
    k = min(p - 1, max(1, int(round(share * p))))
    shuffle = torch.rand(flat.shape, generator=torch.Generator().manual_seed(seed)).argsort(1)
    ranked = torch.sort(flat.gather(1, shuffle), dim=1, stable=True).indices[:, :k]
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, shuffle.gather(1, ranked), True)
    return mask.reshape(scores.shape)


def to_pixels(maps: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N × side × side window values → N × size × size, each pixel taking the value of the
    window whose centre is nearest; pixels farther than half a stride beyond the outermost
    centres (no window centred near them) are NaN, drawn transparent."""
    coords = torch.arange(grid.size, dtype=torch.float32)
    first = (grid.q - 1) / 2
    cell = ((coords - first) / grid.stride).round().long()
    inside = (cell >= 0) & (cell < grid.side) & ((coords - first - cell * grid.stride).abs() <= grid.stride / 2)
    cell = cell.clamp(0, grid.side - 1)
    out = maps[:, cell][:, :, cell].float()
    mask = inside[:, None] & inside[None, :]
    return out.masked_fill(~mask, float("nan"))


def window_means(maps: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N × size × size pixel maps (a CAM) → N × side × side: the mean over each window."""
    return torch.nn.functional.avg_pool2d(maps[:, None].float(), grid.q, grid.stride)[:, 0]
