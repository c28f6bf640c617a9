"""tile2vec (Jean et al., 2019): patch embeddings learnt without labels by a triplet loss.

An anchor patch and a neighbour (same image, offset at most ``radius`` px) should embed
closer than the anchor and a distant patch (another image); the encoder is a small CNN
that pools to one vector, so it takes any patch size. The embeddings are then read by a
linear classifier like any other patch feature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm


class Encoder(nn.Module):
    """Three 3×3 conv-BN-ReLU layers (the second strided), global average pool, linear."""

    def __init__(self, channels: int = 32, dim: int = 64):
        super().__init__()

        def layer(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layer(3, channels), *layer(channels, 2 * channels, 2),
                                  *layer(2 * channels, 2 * channels), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(2 * channels, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float patches → embeddings."""
        if x.dtype == torch.uint8:
            x = x.float() / 255
        return self.body(x - 0.5)


def build_encoder(name: str = "tile2vec", num_classes: int = 0, channels: int = 32, dim: int = 64) -> Encoder:
    """The encoder as a chapter's plan rebuilds it (``core.plan.Loop``'s builder signature;
    it has no classes: the embedding is read by a linear classifier)."""
    return Encoder(channels, dim)


@dataclass(frozen=True)
class Tile2VecConfig:
    channels: int = 32
    dim: int = 64
    steps: int = 500
    batch_size: int = 256
    lr: float = 1e-3
    margin: float = 1.0
    l2: float = 0.01  # weight of the embeddings' norm, which keeps the margin meaningful
    radius: int | None = None  # neighbour offset bound; None: q // 2
    seed: int = 0


def crops(images: torch.Tensor, index: torch.Tensor, top: torch.Tensor, left: torch.Tensor, q: int) -> torch.Tensor:
    """The q×q windows at (top, left) of ``images[index]``, gathered in one indexing op."""
    r = torch.arange(q)
    return images[index[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None],
                  (top[:, None] + r)[:, None, :, None], (left[:, None] + r)[:, None, None, :]]


def sample_triplets(images: torch.Tensor, q: int, radius: int, n: int, g: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor, neighbour (same image, within ``radius``) and distant (other image) patches."""
    count, side = len(images), images.shape[-1] - q + 1
    anchor_img = torch.randint(count, (n,), generator=g)
    other_img = (anchor_img + torch.randint(1, count, (n,), generator=g)) % count
    y, x = torch.randint(side, (2, n), generator=g)
    dy, dx = torch.randint(-radius, radius + 1, (2, n), generator=g)
    ny, nx = (y + dy).clamp(0, side - 1), (x + dx).clamp(0, side - 1)
    fy, fx = torch.randint(side, (2, n), generator=g)
    return (crops(images, anchor_img, y, x, q), crops(images, anchor_img, ny, nx, q),
            crops(images, other_img, fy, fx, q))


def train_encoder(images: torch.Tensor, q: int, config: Tile2VecConfig, progress: bool = True
                  ) -> tuple[Encoder, list[float], float]:
    """Encoder trained on uint8 ``images`` (no labels); returns it, the loss per step and seconds."""
    if len(images) < 2:
        raise ValueError("tile2vec needs at least two training images (distant patches come from another image)")
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    encoder = Encoder(config.channels, config.dim)
    opt = torch.optim.Adam(encoder.parameters(), lr=config.lr)
    triplet = nn.TripletMarginLoss(margin=config.margin)
    radius = config.radius if config.radius is not None else q // 2
    losses, start = [], time.perf_counter()
    for _ in tqdm(range(config.steps), desc=f"tile2vec q={q}", disable=not progress, mininterval=2.0):
        a, n, d = (encoder(t) for t in sample_triplets(images, q, radius, config.batch_size, g))
        loss = triplet(a, n, d) + config.l2 * (a.norm(dim=1) + n.norm(dim=1) + d.norm(dim=1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return encoder.eval(), losses, time.perf_counter() - start


@torch.no_grad()
def embed(encoder: Encoder, patches: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Embeddings of uint8 patches (…×3×q×q) → …×dim."""
    flat = patches.reshape(-1, *patches.shape[-3:])
    out = torch.cat([encoder(flat[i:i + batch_size]) for i in range(0, len(flat), batch_size)])
    return out.reshape(*patches.shape[:-3], -1)
