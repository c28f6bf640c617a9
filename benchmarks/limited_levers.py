"""Levers for the limited-ResNet chapter's cold time, measured: training minutes and test
accuracy of one design under the chapter's budget regimen, per variant of the work done.

Variants change what the run does, never the architecture: ``base`` (the chapter's
settings), progressive resizing (``low<k>@<scale>``: the first k epochs on images downscaled
by scale), more or fewer epochs (``ep<n>``, combinable: ``ep5+low3@0.75``). Evaluation
passes are timed apart: one validation pass (5,000 images, flip TTA) and the test pass
(10,000 images) in float32 and in bf16 autocast, with the test accuracy of both.

    .venv/bin/python benchmarks/limited_levers.py --design I --seeds 0 1 --variants base low2@0.75 ep5+low3@0.75
    .venv/bin/python benchmarks/limited_levers.py --ablation --epochs 24 12 --settings none all crop+flip

``--ablation`` times the augmentation ablation's runs instead (its design, 2,000 images, batch
100, no label smoothing or TTA) at each epoch count, with training and test accuracy: the
regime must still overfit without augmentation and resolve the gains.

Every run trains from scratch in a throw-away cache (decoded images come from the
project's cache). Run it alone on the machine: it prints times.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import replace

import torch

from simplecnn.core.cache import Cache
from simplecnn.core.data import load_dataset
from simplecnn.core.metrics import accuracy
from simplecnn.core.train import autocast, predict, to_input, train_model
from simplecnn.studies import limited


def variant_config(name: str, base, epochs: int):
    """``base`` (a TrainConfig) changed as the variant's name says."""
    config = base
    for part in name.split("+"):
        if part == "base":
            continue
        if m := re.fullmatch(r"ep(\d+)", part):
            config = replace(config, epochs=int(m.group(1)))
        elif m := re.fullmatch(r"low(\d+)@([\d.]+)", part):
            config = replace(config, low_res_epochs=int(m.group(1)), low_res_scale=float(m.group(2)))
        else:
            raise ValueError(f"unknown variant part {part!r}: base, ep<n>, low<k>@<scale>")
    return config


@torch.no_grad()
def timed_logits(model, images, bf16: bool, tta: bool) -> tuple[torch.Tensor, float]:
    """Logits of ``images`` (batch 512, channels_last) and the seconds they took."""
    if not bf16:
        t0 = time.perf_counter()
        out = predict(model, images, tta=tta)
        return out, time.perf_counter() - t0
    device = next(model.parameters()).device
    model.eval()
    t0 = time.perf_counter()
    out = []
    for i in range(0, len(images), 512):
        x = to_input(images[i:i + 512], device, True)
        with autocast(device, True):
            y = model(x).float()
            if tta:
                y = (y + model(x.flip(3)).float()) / 2
        out.append(y)
    return torch.cat(out), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="I")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, nargs="+", default=[4])
    parser.add_argument("--ablation", action="store_true", help="time the ablation's runs instead")
    parser.add_argument("--settings", nargs="+", default=["none", "all", "crop+flip"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=["base", "low2@0.75"])
    args = parser.parse_args()
    data = load_dataset("cifar10", 32)
    if args.ablation:
        return ablation(data, args)
    regimen = limited.Regimen("budget", 256, 0.4, 0.1, 0.0, True, True)
    print(f"design {args.design} ×{args.width}, {len(data.train):,} training images, {torch.get_num_threads()} threads")
    print(f"{'variant':22s} {'seed':>4s} {'train s':>8s} {'val pass s':>10s} {'test fp32':>9s} {'s':>5s} "
          f"{'test bf16':>9s} {'s':>5s}")
    for variant in args.variants:
        for seed in args.seeds:
            config = variant_config(variant, regimen.config(args.epochs[0], ("crop", "flip"), seed), args.epochs[0])
            with tempfile.TemporaryDirectory() as tmp:
                trained = train_model(f"limited_{args.design}", data, config, {"width": args.width}, Cache(tmp),
                                      track_val=False)
            _, val_s = timed_logits(trained.model, data.val.images, False, True)
            fp32, fp32_s = timed_logits(trained.model, data.test.images, False, True)
            bf16, bf16_s = timed_logits(trained.model, data.test.images, True, True)
            print(f"{variant:22s} {seed:4d} {trained.train_s:8.1f} {val_s:10.1f} "
                  f"{100 * accuracy(fp32, data.test.labels):8.2f}% {fp32_s:5.1f} "
                  f"{100 * accuracy(bf16, data.test.labels):8.2f}% {bf16_s:5.1f}", flush=True)


def ablation(data, args) -> None:
    """The ablation's runs at each epoch count: seconds, training and test accuracy."""
    small = data.reduced(train=2000)
    regimen = limited.Regimen("budget", 100, 0.2, label_smoothing=0.0, tta=False, cpu_bf16=True)
    print(f"ablation: design {args.design} ×{args.width}, {len(small.train):,} training images")
    print(f"{'epochs':>6s} {'setting':18s} {'seed':>4s} {'train s':>8s} {'train acc':>9s} {'test acc':>8s}")
    for epochs in args.epochs:
        copies = 5 if epochs % 6 == 0 else 0
        settings = limited.ablation_settings(limited.AUGMENTATIONS, False, copies, epochs)
        for name in args.settings:
            if name not in settings:
                continue
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    row = limited.train_grid([args.design], {name: settings[name]}, [seed], small, args.width, epochs,
                                             regimen, track_val=False, train_acc=True, cache=Cache(tmp)).iloc[0]
                print(f"{epochs:6d} {name:18s} {seed:4d} {row.train_s:8.1f} {100 * row.train_acc:8.2f}% "
                      f"{100 * row.acc:7.2f}%", flush=True)


if __name__ == "__main__":
    main()
