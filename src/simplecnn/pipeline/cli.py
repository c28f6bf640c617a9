"""Command line: ``python -m simplecnn {data,run,sweep,book} ...``.

Parameters are given the papermill way: ``-p NAME VALUE`` (numbers, booleans and None
parsed as papermill does, anything else a string), ``-y YAML`` and ``-f FILE.yml``
(repeatable); ``--profile`` takes a built-in profile or a folder of ``<study>.yml`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from simplecnn.core.archives import DataError
from simplecnn.core.paths import build_dir


def parse_value(text: str):
    """A ``-p`` value as papermill's command line reads it: True/False/None, int, float, else str."""
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_yaml_values(text: str) -> list:
    """Sweep values: YAML literals, so lists (``[9, 17]``) can be swept as well as numbers."""
    value = yaml.safe_load(text)
    return value


def collect_overrides(args: argparse.Namespace) -> dict:
    """``-f`` files in order, then ``-y`` YAML, then ``-p`` pairs: later ones win."""
    params: dict = {}
    for path in args.parameters_file or []:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of parameter names to values")
        params.update(loaded)
    for text in args.parameters_yaml or []:
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"-y {text!r} must be a YAML mapping, e.g. -y 'epochs: 3'")
        params.update(loaded)
    for name, value in getattr(args, "param", None) or []:
        params[name] = parse_value(value)
    return params


def add_param_options(p: argparse.ArgumentParser, single: bool = True) -> None:
    if single:
        p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="a parameter (papermill parsing: numbers, True/False, None, else a string)")
    p.add_argument("-y", "--parameters-yaml", action="append", metavar="YAML", help="parameters as a YAML mapping")
    p.add_argument("-f", "--parameters-file", action="append", metavar="FILE", help="a YAML file of parameters")
    p.add_argument("--profile", default="cpu", help="smoke, cpu, gpu, paper, or a folder of <study>.yml files")
    p.add_argument("--results-from", default=None,
                   help="folder (holding <profile>/<study>.json) to read upstream studies' results from "
                        "(default: results/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simplecnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="unpack (or download) the data sets into data/")
    p.add_argument("--archives", default="../shared/data", help="folder holding the .tar.gz archives")
    p.add_argument("--dest", default=None, help="where to unpack (default: data/)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    p.add_argument("names", nargs="*", help="cifar10 and/or imagenette (default: both)")

    p = sub.add_parser("data-reduced", help="write a small Imagenette archive (≤ 60 MB, ≤ 160 px) that travels")
    p.add_argument("--out", default="build/data-reduced", help="folder for imagenette2-reduced.tar.gz (+ .sha256)")
    p.add_argument("--size", type=int, default=144, help="side in px (at most 160)")

    p = sub.add_parser("run", help="execute chapters with papermill (upstream chapters first)")
    p.add_argument("--only", nargs="+", help="study names (default: all)")
    p.add_argument("--out", default=None,
                   help="folder for the executed notebooks and this run's results (default: the book's own run, "
                        "build/<profile>/executed, writing results/<profile>/)")
    add_param_options(p)
    p.add_argument("--force", action="store_true", help="execute even when up to date")
    p.add_argument("--dry-run", nargs="?", const="full", choices=["full", "small"],
                   help="prove a profile on this machine: two training steps of a small batch per loop, a handful "
                        "of images; 'full' (the default) at the real architectures and resolutions, printing each "
                        "chapter's memory estimate, 'small' with resolutions capped too (its shapes and memory: "
                        "`prove`) (default --out: build/<profile>-dry-run[-small])")

    p = sub.add_parser("sweep", help="run one notebook over a grid of parameter values, into one table")
    p.add_argument("notebook", help="the notebook, e.g. notebooks/03_patches.py")
    p.add_argument("-p", "--param", nargs="+", action="append", default=[], metavar=("NAME", "VALUES"),
                   help="a parameter and the values to sweep (YAML literals); repeat for a grid")
    add_param_options(p, single=False)
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel runs (the cores are split between them)")
    p.add_argument("--scheduler", default=None, help="address of a dask.distributed scheduler to run on")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which one run is stopped")
    p.add_argument("--out", default=None, help="sweep folder (default: build/sweeps/<study>-<profile>-<hash>)")
    p.add_argument("--metric", default=None, help="results key (dotted) to plot, e.g. ceiling_acc")
    p.add_argument("--x", default=None, help="swept parameter on the plot's x axis (default: the first)")

    p = sub.add_parser("prove", help="run every model of a profile forward and backward on meta tensors at full size: "
                                     "shapes, and each chapter's accelerator-memory estimate (seconds)")
    p.add_argument("--profile", default="gpu", help="gpu, paper, or any profile")

    p = sub.add_parser("verify", help="judge a run against the committed results, finding by finding: reproduced, "
                                      "inconclusive or changed (exit 0, 1 when one changed, 2 on missing results)")
    p.add_argument("run", nargs="?", default="build/verify",
                   help="the run's results: a --out folder, a results root or a <profile> folder (default: build/verify, "
                        "what `make verify` writes)")
    p.add_argument("--against", default=None, help="the committed results (default: results/<the run's profile>)")
    p.add_argument("--profile", default=None, help="the profile to read where the folders hold several")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report as json (- for stdout)")
    p.add_argument("--md", default=None, metavar="FILE", help="also write the report as Markdown (- for stdout)")
    p.add_argument("--save", default=None, metavar="NAME",
                   help="commit-ready: write results/<profile>/verify/NAME.json and .md (the book shows them)")
    p.add_argument("--strict", action="store_true", help="also fail (exit 1) on inconclusive, missing or new findings")
    p.add_argument("--explain", default=None, metavar="FILE",
                   help="YAML of why findings changed ({chapter: {quantity: reason}}), kept in the report and shown "
                        "in the book beside each finding")

    p = sub.add_parser("screenshot", help="a picture of a page of the built book, as a laptop shows it")
    p.add_argument("--profile", default="cpu", help="the book's profile (build/<profile>/book)")
    p.add_argument("--page", default="executed/03_patches.html", help="the page, relative to the book's HTML")
    p.add_argument("--out", default="docs/book.png", help="where the PNG goes")

    p = sub.add_parser("book", help="execute what changed and build the HTML book")
    p.add_argument("--profile", default="cpu", help="smoke, cpu, gpu, paper, or a folder of <study>.yml files")
    p.add_argument("--force", action="store_true")

    args = parser.parse_args(argv)
    from simplecnn.pipeline.book import BookFailed
    from simplecnn.pipeline.runner import RunFailed
    try:
        if args.command == "data":
            from simplecnn.core.archives import prepare
            dest = Path(args.dest) if args.dest else None
            for name, path in prepare(args.names or None, args.archives, dest, not args.no_download).items():
                print(f"{name}: {path}")
        elif args.command == "data-reduced":
            from simplecnn.core.archives import reduce_imagenette
            from simplecnn.core.data import resolve_dataset
            archive = reduce_imagenette(resolve_dataset("imagenette")[1], Path(args.out), args.size)
            print(f"{archive} ({archive.stat().st_size / 1e6:.1f} MB): use it with `make data ARCHIVES={archive.parent}`")
        elif args.command == "run":
            return _run(args)
        elif args.command == "sweep":
            return _sweep(args)
        elif args.command == "book":
            from simplecnn.pipeline.book import build
            build(args.profile, args.force)
        elif args.command == "screenshot":
            from simplecnn.pipeline import browser
            from simplecnn.pipeline.runner import profile_name
            html = build_dir() / profile_name(args.profile) / "book" / "_build" / "html"
            print(f"screenshot: {browser.screenshot(html, args.page, Path(args.out))}")
        elif args.command == "verify":
            return _verify(args)
        elif args.command == "prove":
            from simplecnn.pipeline import proof
            rows = proof.fake_proof(args.profile)
            print("\n".join(proof.report_lines(args.profile, rows)))
    except (RunFailed, BookFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (DataError, FileNotFoundError, ValueError) as exc:  # VerifyError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> int:
    from simplecnn.core.paths import results_root
    from simplecnn.pipeline import registry
    from simplecnn.pipeline.runner import Target, profile_name, run_all
    overrides = collect_overrides(args)
    results_from = Path(args.results_from).resolve() if args.results_from else results_root()
    if args.dry_run:
        os.environ["SIMPLECNN_DRY_RUN"] = args.dry_run  # the kernels inherit it
        suffix = "-small" if args.dry_run == "small" else ""
        args.out = args.out or str(build_dir() / f"{profile_name(args.profile)}-dry-run{suffix}")
        if not args.results_from:  # a dry run's chapters read each other's dry-run results
            results_from = Path(args.out).resolve() / "results"
    if args.out:  # a user's run: its results stay in its folder
        out = Path(args.out).resolve()
        target = Target(out / "results", results_from)
    else:
        if overrides:
            raise ValueError("overridden parameters need --out: results/ holds only the profiles' own runs")
        out = build_dir() / profile_name(args.profile) / "executed"
        target = Target(results_root(), results_from)
    run_all(args.profile, out, overrides, args.only, args.force, target)
    if args.dry_run == "full":
        from simplecnn.pipeline.proof import dry_run_report
        dry_run_report(target.results_out, profile_name(args.profile), [s.name for s in registry.ordered(args.only)])
    return 0


def _verify(args: argparse.Namespace) -> int:
    from simplecnn.core.paths import results_root
    from simplecnn.pipeline import verify
    report = verify.verify(args.run, args.against, args.profile)
    if args.explain:
        try:
            why = yaml.safe_load(Path(args.explain).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise verify.VerifyError(f"cannot read the explanations in {args.explain} ({exc}); give a YAML file "
                                     f"of {{chapter: {{quantity: reason}}}}") from None
        if not isinstance(why, dict) or not all(isinstance(v, dict) for v in why.values()):
            raise verify.VerifyError(f"{args.explain} must map chapters to {{quantity: reason}}")
        report.explain(why)
    print(verify.text(report))
    for option, render in ((args.json, lambda r: json.dumps(r.to_dict(), indent=1, default=str)),
                           (args.md, verify.markdown)):
        if option == "-":
            print(render(report))
        elif option:
            Path(option).parent.mkdir(parents=True, exist_ok=True)
            Path(option).write_text(render(report) + "\n")
    if args.save:
        profile = report.profile or Path(report.run).name
        print(f"saved: {verify.save(report, results_root() / profile / 'verify', args.save)}")
    return report.exit_status(args.strict)


def _sweep(args: argparse.Namespace) -> int:
    from simplecnn.core.paths import results_root
    from simplecnn.pipeline.sweep import plot_sweep, run_sweep, sweep_folder
    axes = {}
    for name, *values in args.param:
        if not values:
            raise ValueError(f"-p {name} needs at least one value")
        axes[name] = [parse_yaml_values(v) for v in values]
    base = collect_overrides(argparse.Namespace(**{**vars(args), "param": None}))  # -p values are the axes
    results_from = Path(args.results_from).resolve() if args.results_from else results_root()
    folder = Path(args.out) if args.out else sweep_folder(Path(args.notebook), args.profile, axes, base)
    table = run_sweep(Path(args.notebook), axes, args.profile, args.jobs, args.scheduler, folder, base=base,
                      results_from=results_from, timeout=args.timeout)
    shown = [*axes, "run", "status", *([args.metric] if args.metric in table else []),
             *(["error"] if "error" in table else [])]
    print(table[shown].to_string(index=False, max_colwidth=60))
    print(f"table: {folder / 'sweep.csv'}")
    if args.metric:
        x = args.x or next(iter(axes))
        hue = next((a for a in axes if a != x), None)
        plot_sweep(table, args.metric, x, hue).savefig(folder / "sweep.png", dpi=120)
        print(f"plot: {folder / 'sweep.png'}")
    return 1 if (table.status == "failed").any() else 0
