"""Training memory and speed of a BagNet on large images: whole image against tiles.

One SGD step of a freshly initialised BagNet-q on one random image per resolution, whole
and in tiles of ``tile`` × ``tile`` windows (the whole image's gradient, see
``simplecnn.studies.patches.tiled_training``), each in a fresh interpreter so the peak is
the step's own (the CUDA allocator's peak on a GPU, else the resident set's). Prints
windows per second and peak MiB for each.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/patch_memory.py [--sizes 224 448] [--q 33] [--width 0.125]
"""

from __future__ import annotations

import argparse

from simplecnn.studies.patches.tiled_training import isolated_train_peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 448], help="image sides (px)")
    ap.add_argument("--q", type=int, default=33, help="BagNet patch size")
    ap.add_argument("--width", type=float, default=0.125, help="BagNet width multiplier")
    ap.add_argument("--blocks", type=int, nargs=4, default=[1, 1, 1, 1], help="blocks per stage")
    ap.add_argument("--tile", type=int, default=8, help="windows per tile side")
    ap.add_argument("--classes", type=int, default=10)
    args = ap.parse_args()
    kwargs = {"q": args.q, "width": args.width, "blocks": tuple(args.blocks)}
    print(f"BagNet-{args.q}, width ×{args.width}, blocks {args.blocks}, one image, one SGD step")
    print(f"{'px':>6} {'mode':>18} {'windows':>8} {'windows/s':>11} {'peak MiB':>9}")
    for size in args.sizes:
        peaks = {}
        for mode, tile in (("whole image", None), (f"tiles of {args.tile ** 2}", args.tile)):
            r = isolated_train_peak(kwargs, args.classes, size, tile)
            peaks[mode] = r["peak_bytes"]
            print(f"{size:>6} {mode:>18} {r['windows']:>8} {r['windows'] / r['seconds']:>11,.0f} "
                  f"{r['peak_bytes'] / 2 ** 20:>9.1f}  ({r['device']})")
        whole, tiled = peaks.values()
        print(f"{size:>6} {'whole ÷ tiled':>18} {whole / max(1, tiled):>30.1f}×")


if __name__ == "__main__":
    main()
