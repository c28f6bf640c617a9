"""Proving the gpu and paper profiles on a machine without a GPU.

Two proofs, both in ``make test``:

- **Shapes and memory, at full size, on meta tensors** (``fake_proof``): every model each
  chapter trains or runs (its plan, ``core.plan``) goes forward and backward at its real
  width, resolution and batch on the meta device (``core.memory.fake_pass``): a layer
  that does not fit its input fails here, and each chapter's training peak is estimated as
  the real dry run estimates it. Seconds, not the quarter of an hour that running those
  models on this CPU took.
- **Code paths, small** (``simplecnn run --dry-run small``): every notebook of the profile
  executed for real with counts capped and resolutions capped at ``SMALL_RESOLUTION``.

``make dry-run`` still executes both profiles dry at their real resolutions
(``--dry-run full``), and ``dry_run_report`` checks that run's estimates.
"""

from __future__ import annotations

import json
from pathlib import Path

from simplecnn.core.memory import fake_pass
from simplecnn.core.plan import Loop
from simplecnn.pipeline import registry, runner

LIMIT_BYTES = 80e9  # one accelerator's memory (an 80 GB H100/A100)


def profile_plans(profile: str, studies: list[str] | None = None) -> dict[str, list[Loop]]:
    """Every chapter's loops for ``profile`` (its parameters as the runner would inject them)."""
    chosen = registry.ordered(studies)
    params = {s.name: runner.parameters(s.path, profile) for s in registry.ordered()}
    return {s.name: s.load().plan(params[s.name], {u: params[u] for u in s.upstream}) for s in chosen}


def check_shapes(study: str, loops: list[Loop]) -> None:
    """Every model of a chapter's plan forward and backward on meta tensors (seconds): a
    resolution or width a model cannot take is an error naming it before any work starts."""
    seen = set()
    for loop in loops:
        if loop.key() in seen:
            continue
        seen.add(loop.key())
        try:
            fake_pass(loop)
        except Exception as exc:
            raise ValueError(f"{study}: {loop.what} ({loop.model} {loop.kwargs or ''} at {loop.resolution} px) cannot "
                             f"take its input: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}; change the "
                             f"parameters that set its resolution, width or patch size") from None


def fake_proof(profile: str, studies: list[str] | None = None, limit: float = LIMIT_BYTES) -> list[dict]:
    """One row per chapter: its loops run on meta tensors, the largest training estimate
    (bytes) and the largest inference footprint; a chapter over ``limit`` is an error naming
    it and the loop, a loop whose shapes do not fit is an error naming the loop."""
    rows = []
    for study, loops in profile_plans(profile, studies).items():
        seen: dict[tuple, dict] = {}
        train_peak, infer_peak, worst = 0, 0, None
        for loop in loops:
            key = (loop.key(), loop.ema)  # an EMA's copy of the weights is in the training estimate
            if key not in seen:
                try:
                    seen[key] = fake_pass(loop)
                except Exception as exc:  # a shape error names the chapter and the loop
                    raise ValueError(f"{profile} profile, {study} chapter: {loop.what} ({loop.model} at "
                                     f"{loop.resolution} px, batch {loop.batch}) does not run: "
                                     f"{type(exc).__name__}: {exc}") from exc
            est = seen[key]
            if loop.trains and est["estimate_bytes"] > train_peak:
                train_peak, worst = est["estimate_bytes"], loop
            infer_peak = max(infer_peak, est["params"] * 4 + est["activation_bytes"])
        rows.append({"study": study, "loops": len(loops), "models": len(seen), "training_peak_bytes": train_peak,
                     "inference_peak_bytes": infer_peak, "largest": worst.what if worst else ""})
    over = [r for r in rows if r["training_peak_bytes"] > limit]
    if over:
        raise ValueError(f"{profile} profile: " + "; ".join(
            f"{r['study']} ({r['largest']}) would need {r['training_peak_bytes'] / 1e9:.0f} GB" for r in over)
            + f", more than one accelerator's {limit / 1e9:.0f} GB: lower its batch size in profiles/{profile}/")
    return rows


def report_lines(profile: str, rows: list[dict]) -> list[str]:
    return [f"fake pass {profile}: {r['study']:16s} {r['models']:3d} models, training peak estimate "
            f"{r['training_peak_bytes'] / 2**30:8.2f} GiB, inference {r['inference_peak_bytes'] / 2**30:7.2f} GiB"
            for r in rows]


def dry_run_report(results_out: Path, profile: str, studies: list[str]) -> list[tuple[str, float]]:
    """Each chapter's estimated training peak (bytes) from its dry run's results; a chapter
    over ``LIMIT_BYTES`` is an error naming it."""
    rows = []
    for study in studies:
        doc = json.loads((Path(results_out) / profile / f"{study}.json").read_text())
        rows.append((study, float(doc["provenance"].get("dry_run", {}).get("peak_estimate_bytes", 0))))
    for study, peak in rows:
        print(f"dry run {profile}: {study:16s} training peak estimate {peak / 2**30:8.2f} GiB", flush=True)
    over = [s for s, peak in rows if peak > LIMIT_BYTES]
    if over:
        raise ValueError(f"dry run {profile}: {over} would need more than {LIMIT_BYTES / 1e9:.0f} GB of "
                         f"accelerator memory; lower their batch sizes in profiles/{profile}/")
    return rows
