"""Command line: ``python -m simplecnn {data,run,book} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .archives import DataError, prepare
from .paths import PROFILE_NAMES, build_dir


def parse_overrides(pairs: list[list[str]]) -> dict:
    """``-p key value`` pairs; values are read as YAML literals (numbers, lists, booleans)."""
    return {k: yaml.safe_load(v) for k, v in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simplecnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="unpack (or download) the data sets into data/")
    p.add_argument("--archives", default="../shared/data", help="folder holding the .tar.gz archives")
    p.add_argument("--dest", default=None, help="where to unpack (default: data/)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    p.add_argument("names", nargs="*", help="cifar10 and/or imagenette (default: both)")

    p = sub.add_parser("run", help="execute notebooks with papermill for a profile")
    p.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    p.add_argument("--only", nargs="*", help="study names (default: all)")
    p.add_argument("--out", default=None, help="output folder (default: build/<profile>/executed)")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--force", action="store_true", help="execute even when up to date")

    p = sub.add_parser("sweep", help="run one notebook over a grid of parameter values, into one table")
    p.add_argument("notebook", help="the notebook, e.g. notebooks/03_patches.py")
    p.add_argument("-p", "--param", nargs="+", action="append", default=[], metavar=("NAME", "VALUES"),
                   help="a parameter and the values to sweep (YAML literals); repeat for a grid")
    p.add_argument("--profile", default="cpu", choices=PROFILE_NAMES, help="parameters under the swept ones")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel runs (the cores are split between them)")
    p.add_argument("--scheduler", default=None, help="address of a dask.distributed scheduler to run on")
    p.add_argument("--out", default=None, help="sweep folder (default: build/sweeps/<study>-<profile>-<hash>)")
    p.add_argument("--metric", default=None, help="results key (dotted) to plot, e.g. ceiling_acc")
    p.add_argument("--x", default=None, help="swept parameter on the plot's x axis (default: the first)")

    p = sub.add_parser("book", help="execute what changed and build the HTML book")
    p.add_argument("--profile", default="cpu", choices=PROFILE_NAMES)
    p.add_argument("--force", action="store_true")

    args = parser.parse_args(argv)
    try:
        if args.command == "data":
            dest = Path(args.dest) if args.dest else None
            for name, path in prepare(args.names or None, args.archives, dest, not args.no_download).items():
                print(f"{name}: {path}")
        elif args.command == "run":
            from .runner import run_all
            out = Path(args.out) if args.out else build_dir() / args.profile / "executed"
            run_all(args.profile, out, parse_overrides(args.param), args.only, args.force)
        elif args.command == "sweep":
            from .sweep import plot_sweep, run_sweep, sweep_folder
            axes = {}
            for name, *values in args.param:
                if not values:
                    raise ValueError(f"-p {name} needs at least one value")
                axes[name] = [yaml.safe_load(v) for v in values]
            folder = Path(args.out) if args.out else sweep_folder(Path(args.notebook), args.profile, axes)
            table = run_sweep(Path(args.notebook), axes, args.profile, args.jobs, args.scheduler, folder)
            shown = [*axes, "run", "status", *([args.metric] if args.metric in table else []),
                     *(["error"] if "error" in table else [])]
            print(table[shown].to_string(index=False, max_colwidth=60))
            print(f"table: {folder / 'sweep.csv'}")
            for _, row in table[table.status == "failed"].iterrows():
                print(f"failed: {row['run']}: {row['error']}", file=sys.stderr)
            if args.metric:
                x = args.x or next(iter(axes))
                hue = next((a for a in axes if a != x), None)
                plot_sweep(table, args.metric, x, hue).savefig(folder / "sweep.png", dpi=120)
                print(f"plot: {folder / 'sweep.png'}")
            return 1 if (table.status == "failed").any() else 0
        elif args.command == "book":
            from .book import build
            build(args.profile, args.force)
    except (DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
