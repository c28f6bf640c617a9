"""The limited-ResNet chapter's speed: each design's training img/s at the cpu width against
the plain ResNet-18 ×0.25 of the README's throughput table, and the accuracy-versus-training-
seconds curve of the chapter's budget regimen against the plain recipe on one design.

Img/s are SGD steps on a fixed random batch (``core.complexity.train_images_per_s``), fp32
and with the CPU bf16 autocast the chapter uses. The curves train design I on all 45,000
CIFAR-10 training images and print validation accuracy after every epoch (validation, not
test: this is the chapter's own selection data) against cumulative training seconds.

    .venv/bin/python benchmarks/limited_designs.py [--width 0.25] [--batch 256] [--epochs 4] [--skip-curves]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from simplecnn.core.complexity import train_images_per_s
from simplecnn.core.data import load_dataset
from simplecnn.core.models import build_model
from simplecnn.core.recipes import recipe
from simplecnn.core.train import build_normalized, fit
from simplecnn.studies import limited


def images_per_s(name: str, width: float, batch: int, bf16: bool) -> float:
    torch.manual_seed(0)
    model = build_model(name, 10, width=width)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return train_images_per_s(model, batch, 32, 10, steps=4)


def curve(design: str, data, config, width: float, label: str) -> None:
    model = build_normalized(f"limited_{design}", data, {"width": width}, config.seed)
    for row in fit(model, data.train, config, data.val):
        print(f"{label:28s} epoch {row['epoch']:2d}  {row['elapsed_s']:7.1f} s  val acc {100 * row['val_acc']:5.1f} %",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25, help="the cpu width (the curves use it)")
    parser.add_argument("--widths", type=float, nargs="+", default=None, help="widths of the img/s table")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="batches of the img/s table")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--design", default="I")
    parser.add_argument("--skip-curves", action="store_true")
    args = parser.parse_args()

    for batch in args.batches or [args.batch]:
        base = {bf16: images_per_s("cifar_resnet18", 0.25, batch, bf16) for bf16 in (False, True)}
        for width in args.widths or [args.width]:
            print(f"training img/s at width ×{width}, batch {batch}, 32 px ({torch.get_num_threads()} threads)")
            print(f"{'plain ResNet-18 ×0.25':24s} fp32 {base[False]:7.0f}  bf16 {base[True]:7.0f}")
            for design in limited.DESIGNS:
                rate = {bf16: images_per_s(f"limited_{design}", width, batch, bf16) for bf16 in (False, True)}
                print(f"{'design ' + design:24s} fp32 {rate[False]:7.0f}  bf16 {rate[True]:7.0f}  "
                      f"({rate[True] / base[False]:.2f}× the plain fp32 rate; bf16 gains {rate[True] / rate[False]:.2f}×)",
                      flush=True)
    if args.skip_curves:
        return
    data = load_dataset("cifar10", 32)
    budget = limited.Regimen("budget", args.batch, 0.4, cpu_bf16=True).config(args.epochs, limited.CROP_FLIP.online(), 0)
    plain = replace(recipe("plain", "cifar10").config, epochs=args.epochs)
    curve(args.design, data, budget, args.width, f"design {args.design}, budget regimen")
    curve(args.design, data, plain, args.width, f"design {args.design}, plain recipe")


if __name__ == "__main__":
    main()
