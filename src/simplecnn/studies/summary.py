"""The book's closing table: every study's headline numbers beside the sources' figures.

Each study contributes rows (quantity, this run's value, the source's figure) read from its
``results/<profile>/<study>.json``; a missing file is an error naming the command that
writes it. Where the paper profile's results exist, they are shown in a column of their own.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from simplecnn.studies.limited import PAPER_ACC
from simplecnn.core.results import read_results
from simplecnn.studies.zoo import LECTURE

STUDIES = ("data", "zoo", "limited_resnets", "patches", "cascade", "gradcam", "fusion")
BAGNET_IMAGENET_TOP5 = {"9": 70.0, "17": 81.0, "33": 87.0}  # Brendel & Bethge (2019), ImageNet, 224 px
REPORT_STAGE_ACC = [72.66, 85.40, 89.63]  # the cascade report's Table 2.1, validation, 32/96/224 px
REPORT_REDUCTION = {"middle stage": 3.0, "top stage": 2.3}

Row = tuple[str, str, float | str | None, float | str | None]  # study, quantity, value, source figure


def _zoo(r: dict) -> list[Row]:
    rows: list[Row] = []
    for name, lecture in LECTURE.items():
        if name in r:
            if "gmacs" in lecture:
                rows.append(("zoo", f"{name} GMACs, torchvision layout (224 px)", r[name]["macs"] / 1e9,
                             lecture["gmacs"]))
            if "params_m" in lecture:
                rows.append(("zoo", f"{name} parameters (M)", r[name]["params"] / 1e6, lecture["params_m"]))
    return rows


def _limited(r: dict) -> list[Row]:
    designs = [d for d in PAPER_ACC if d in r]
    rows: list[Row] = [("limited_resnets", f"design {d} accuracy (%)", r[d]["acc_mean"], PAPER_ACC[d]) for d in designs]
    rows.append(("limited_resnets", "rank correlation with the paper's ranking", r["rank_corr"], 1.0))
    return rows


def _patches(r: dict) -> list[Row]:
    rows: list[Row] = []
    for q, m in r["methods"].get("bagnet", {}).items():
        rows.append(("patches", f"BagNet-{q} image accuracy (%) [source: ImageNet top-5]", 100 * m["image_acc"],
                     BAGNET_IMAGENET_TOP5.get(q)))
        rows.append(("patches", f"BagNet-{q} patch AUC", m["patch_auc"], None))
    for method in ("sift", "tile2vec", "pixels"):
        for q, m in r["methods"].get(method, {}).items():
            rows.append(("patches", f"{method} q={q} patch AUC", m["patch_auc"], None))
    rows.append(("patches", "full-image CNN accuracy (%)", 100 * r["ceiling_acc"], None))
    mem = r["memory"]
    rows.append(("patches", f"peak memory whole / tiled, {mem['image_px']} px", mem["whole_peak_bytes"]
                 / max(1, mem["tiled_peak_bytes"]), None))
    return rows


def _cascade(r: dict) -> list[Row]:
    rows: list[Row] = []
    for (name, s), source in zip(r["stages"].items(), REPORT_STAGE_ACC):
        rows.append(("cascade", f"{name} test accuracy (%)", 100 * s["test_acc"], source))
    names = list(r["stages"])
    for label, stage in (("middle stage", names[-2]), ("top stage", names[-1])):
        t = r["targets"].get(stage)
        rows.append(("cascade", f"MAC reduction at the {label}'s accuracy (test)",
                     t["mac_reduction"] if t else None, REPORT_REDUCTION[label]))
    return rows


def _gradcam(r: dict) -> list[Row]:
    return [("gradcam", "deletion area (Grad-CAM / random)", f"{r['deletion_auc']:.3f} / {r['deletion_auc_random']:.3f}",
             None),
            ("gradcam", "insertion area (Grad-CAM / random)",
             f"{r['insertion_auc']:.3f} / {r['insertion_auc_random']:.3f}", None),
            ("gradcam", "rank correlation with a randomised model", r["randomisation_rank_corr"], None),
            ("gradcam", "rank correlation with BagNet evidence", r["bagnet_agreement"], None)]


def _fusion(r: dict) -> list[Row]:
    return [("fusion", f"{name}: best rule {b['rule']} AUC vs majority (p)",
             f"{b['image_auc']:.3f} vs {b['majority_auc']:.3f} (p={b['p_value']:.2g})", None)
            for name, b in r["best"].items()]


def _data(r: dict) -> list[Row]:
    return [("data", f"{name} images (train/val/test)", f"{s['train']}/{s['val']}/{s['test']}", None)
            for name, s in r.items()]


ROWS: dict[str, Callable[[dict], list[Row]]] = {"data": _data, "zoo": _zoo, "limited_resnets": _limited,
                                                "patches": _patches, "cascade": _cascade, "gradcam": _gradcam,
                                                "fusion": _fusion}


def headline_table(profile: str, beside: str | None = "paper") -> pd.DataFrame:
    """One row per headline quantity: this profile's value, ``beside``'s (where it was run), the source's."""
    rows = []
    for study in STUDIES:
        doc = read_results(study, profile)  # missing: FileNotFoundError naming the fix
        other = None
        if beside and beside != profile:
            try:
                other = {q: v for _, q, v, _ in ROWS[study](read_results(study, beside)["results"])}
            except FileNotFoundError:
                other = None
        for _, quantity, value, source in ROWS[study](doc["results"]):
            row = {"study": study, "quantity": quantity, profile: value, "source": source}
            if beside and beside != profile:
                row[beside] = other.get(quantity, "not run") if other is not None else "not run"
            rows.append(row)
    return pd.DataFrame(rows)
