"""Data-dependent initialisation: patch whitening of a model's first convolution.

The first layer's filters become the eigenvectors of the covariance of image patches of
its kernel size, scaled by 1/sqrt(eigenvalue), in both signs: its outputs are whitened
patches, so the layers after it start on decorrelated inputs (hlb-CIFAR10, airbench).
"""

from __future__ import annotations

import torch
from torch import nn


def patch_covariance(images: torch.Tensor, kernel: int, max_patches: int = 200_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of all ``kernel``×``kernel`` patches of float images (N×C×H×W)."""
    patches = images.unfold(2, kernel, 1).unfold(3, kernel, 1)  # N, C, H', W', k, k
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1] * kernel * kernel).double()
    if len(patches) > max_patches:
        patches = patches[torch.linspace(0, len(patches) - 1, max_patches).long()]
    mean = patches.mean(0)
    centred = patches - mean
    return mean, centred.T @ centred / (len(patches) - 1)


@torch.no_grad()
def patch_whitening_(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4, freeze: bool = True) -> nn.Conv2d:
    """Set ``conv`` (C_in → 2·k²·C_in/…, any even out-channels) to whiten its input patches.

    ``images`` are what the conv sees (float, normalised). Filters are the top eigenvectors
    divided by sqrt(eigenvalue + eps), each with its negation; with ``freeze`` the weights
    stop training (the bias still trains).
    """
    k = conv.kernel_size[0]
    if conv.out_channels % 2:
        raise ValueError(f"patch whitening needs an even number of output channels, got {conv.out_channels}")
    mean, cov = patch_covariance(images, k)
    eigval, eigvec = torch.linalg.eigh(cov)  # ascending
    half = conv.out_channels // 2
    if half > len(eigval):
        raise ValueError(f"{conv.out_channels} channels exceed twice the patch dimension {len(eigval)}")
    top = eigvec[:, -half:].flip(1) / torch.sqrt(eigval[-half:].flip(0) + eps)
    filters = torch.cat([top, -top], dim=1).T.reshape(conv.out_channels, conv.in_channels, k, k)
    conv.weight.copy_(filters.to(conv.weight.dtype))
    if conv.bias is not None:
        conv.bias.copy_(-(filters.flatten(1).double() @ mean).to(conv.bias.dtype))
    conv.weight.requires_grad_(not freeze)
    return conv
