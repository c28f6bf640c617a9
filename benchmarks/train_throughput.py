"""Training throughput of the core loop against a naive ImageFolder + DataLoader pipeline.

Same model, same batch, same optimiser; the naive pipeline decodes JPEGs with PIL and
augments per image in DataLoader workers every epoch, the core trains from uint8 tensors
decoded once and augments whole batches. Prints images/s for each and their ratio.

    .venv/bin/python benchmarks/train_throughput.py [--images 2048] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from simplecnn.core.data import load_dataset, resolve_dataset
from simplecnn.core.train import channel_stats
from simplecnn.core.train import TrainConfig, build_normalized, fit

SETTINGS = [  # data set, resolution, model, width
    ("cifar10", 32, "cifar_resnet18", 0.25),
    ("imagenette", 64, "resnet18", 0.25),
]


def naive_images_per_s(dataset: str, resolution: int, model: nn.Module, images: int, batch: int,
                       workers: int, mean: list[float], std: list[float]) -> float:
    """Images/s of a textbook pipeline: PIL decode, per-image transforms, DataLoader workers."""
    _, root = resolve_dataset(dataset)
    pad = max(1, resolution // 8)
    tf = transforms.Compose([transforms.Resize(resolution), transforms.CenterCrop(resolution),
                             transforms.RandomCrop(resolution, padding=pad, padding_mode="reflect"),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(mean, std)])
    folder = datasets.ImageFolder(root / "train", transform=tf)
    subset = Subset(folder, torch.randperm(len(folder), generator=torch.Generator().manual_seed(0))[:images].tolist())
    loader = DataLoader(subset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=False)
    body = model[1]  # the naive pipeline normalises in the transform
    opt = torch.optim.SGD(body.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    body.train()
    seen, start = 0, time.perf_counter()
    for x, y in loader:
        loss = loss_fn(body(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
    return seen / (time.perf_counter() - start)


def core_images_per_s(data, model: nn.Module, images: int, batch: int, channels_last: bool) -> float:
    subset = data.train.subset(torch.arange(images))
    config = TrainConfig(epochs=1, batch_size=batch, lr=0.05, schedule="constant", channels_last=channels_last)
    history = fit(model, subset, config)
    return (images // batch) * batch / history[-1]["elapsed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2048, help="training images per measurement")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the naive pipeline")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.images} images, batch {args.batch}")
    print(f"{'data set':<11} {'px':>4} {'model':<22} {'naive img/s':>12} {'core img/s':>11} "
          f"{'core, no channels_last':>23} {'speed-up':>9}")
    for dataset, resolution, name, width in SETTINGS:
        data = load_dataset(dataset, resolution)
        mean, std = channel_stats(data.train.images)
        model = build_normalized(name, data, {"width": width}, seed=0)
        core_cl = core_images_per_s(data, model, args.images, args.batch, True)
        model = build_normalized(name, data, {"width": width}, seed=0)
        core = core_images_per_s(data, model, args.images, args.batch, False)
        model = build_normalized(name, data, {"width": width}, seed=0)
        naive = naive_images_per_s(dataset, resolution, model, args.images, args.batch, args.workers, mean, std)
        print(f"{dataset:<11} {resolution:>4} {f'{name} ×{width}':<22} {naive:>12.0f} {core_cl:>11.0f} "
              f"{core:>23.0f} {core_cl / naive:>8.2f}×", flush=True)


if __name__ == "__main__":
    main()
