"""``simplecnn verify``: judge a run against the committed results, finding by finding.

A run's results folder (a ``--out`` run, a sweep run, another machine's ``results/``) and the
committed one are read study by study; every headline of both is paired by its quantity and
judged by its own rule (``core.reproduce``): reproduced, inconclusive or changed, with
timings reported and never judged. The report starts with what differs in provenance
(commit, package versions, device, threads) and says which tier applies: the same profile
expects the same values within their uncertainty; another profile (a gpu run against the cpu
one) expects the same findings, not the same values. Missing and new headlines are listed.

Exit status: 0 when every finding reproduced (inconclusive allowed unless ``strict``), 1 when
one changed (with ``strict``: also when one is inconclusive, missing or new), 2 when results
are missing or unreadable.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from simplecnn.core.io import atomic_write_bytes
from simplecnn.core.paths import results_root
from simplecnn.core.reproduce import VERDICTS, Judged, judge
from simplecnn.pipeline import registry

PROVENANCE = ("git_commit", "python", "device", "threads")


class VerifyError(ValueError):
    """Results missing or unreadable: the message names the file and the fix."""


def results_folder(path: Path | str, profile: str | None = None) -> Path:
    """The folder holding ``<study>.json`` files under ``path``: the path itself, its
    ``<profile>/`` (a results root), or its ``results/<profile>/`` (a ``--out`` run)."""
    path = Path(path)
    candidates = [path]
    if profile:
        candidates += [path / profile, path / "results" / profile]
    else:
        for root in (path, path / "results"):
            if root.is_dir():
                candidates += sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.json")))
    for folder in candidates:
        if folder.is_dir() and any((folder / f"{s}.json").exists() for s in registry.STUDIES):
            return folder
    raise VerifyError(f"no results under {path}" + (f" for the {profile} profile" if profile else "") +
                      ": give a folder holding <study>.json files, a results root holding <profile>/, or a run's "
                      "--out folder (it holds results/<profile>/); `make verify` writes one to build/verify")


def read_doc(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VerifyError(f"cannot read {path} ({type(exc).__name__}: {exc}); re-run its chapter") from None
    if not isinstance(doc, dict) or "results" not in doc:
        raise VerifyError(f"{path} is not a chapter's results file (no 'results'); re-run its chapter")
    return doc


def headlines_of(study: str, doc: dict, path: Path) -> list[dict]:
    """The headlines a run stored with its results; for results written before headlines
    were stored, the current code's ``headline()`` of them."""
    if "headlines" in doc:
        return list(doc["headlines"])
    module = registry.get(study).load()
    if not hasattr(module, "headline"):  # a chapter that only gathers others' headlines (the summary)
        return []
    try:
        return [asdict(h) for h in module.headline(doc["results"])]
    except Exception as exc:
        raise VerifyError(f"{path} holds no stored headlines and the current code cannot read it "
                          f"({type(exc).__name__}: {exc}); re-run its chapter") from None


@dataclass
class Report:
    """A verification: both folders, the tier, provenance differences, every judged headline
    per chapter, the chapters missing on either side."""

    run: str
    against: str
    tier: str
    provenance: list[dict]
    chapters: dict[str, list[Judged]]
    missing: list[str] = field(default_factory=list)
    made: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    profile: str = ""  # the run's profile (where ``--save`` files the report)
    explanations: dict[str, dict[str, str]] = field(default_factory=dict)  # chapter -> quantity -> why it changed

    def explain(self, why: dict[str, dict[str, str]]) -> None:
        """Attach the reasons a person gives for findings that did not reproduce (``--explain``):
        each must name a chapter and quantity of this report whose verdict is not
        "reproduced", so that a reason cannot sit beside a finding it does not describe."""
        judged = {(s, j.quantity): j.verdict for s, rows in self.chapters.items() for j in rows}
        for study, quantities in why.items():
            for quantity, text in (quantities or {}).items():
                verdict = judged.get((study, quantity))
                if verdict is None:
                    known = sorted(f"{s}: {q}" for (s, q), v in judged.items() if v not in ("reproduced", "reported"))
                    raise VerifyError(f"--explain names {study}: {quantity!r}, which this report does not judge; "
                                      f"the findings that need a word: {known}")
                if verdict in ("reproduced", "reported"):
                    raise VerifyError(f"--explain names {study}: {quantity!r}, which is {verdict}: nothing to explain")
                self.explanations.setdefault(study, {})[quantity] = str(text)

    def why(self, study: str, quantity: str) -> str:
        return self.explanations.get(study, {}).get(quantity, "")

    def counts(self) -> dict[str, int]:
        found = Counter(j.verdict for rows in self.chapters.values() for j in rows)
        return {v: found.get(v, 0) for v in VERDICTS}

    def exit_status(self, strict: bool = False) -> int:
        if self.missing:
            return 2
        c = self.counts()
        if c["changed"] or (strict and (c["inconclusive"] or c["missing"] or c["new"])):
            return 1
        return 0

    def to_dict(self) -> dict:
        return {"run": self.run, "against": self.against, "profile": self.profile, "tier": self.tier, "made": self.made,
                "provenance": self.provenance, "missing_chapters": self.missing, "counts": self.counts(),
                "chapters": {s: [{**asdict(j), "explained": self.why(s, j.quantity)} for j in rows]
                             for s, rows in self.chapters.items()}}


def _differences(ours: dict, theirs: dict) -> list[dict]:
    """Provenance fields that differ between two chapters' results (packages one by one)."""
    a, b = ours.get("provenance", {}), theirs.get("provenance", {})
    rows = [{"field": k, "committed": a.get(k), "new": b.get(k)} for k in PROVENANCE if a.get(k) != b.get(k)]
    pa, pb = a.get("packages", {}), b.get("packages", {})
    rows += [{"field": f"package {p}", "committed": pa.get(p), "new": pb.get(p)}
             for p in sorted(set(pa) | set(pb)) if pa.get(p) != pb.get(p)]
    return rows


def verify(run: Path | str, against: Path | str | None = None, profile: str | None = None) -> Report:
    """Judge the run in ``run`` against ``against`` (default: the committed ``results/<profile>``
    of the run's profile)."""
    new_folder = results_folder(run, profile)
    new_docs = {s: read_doc(new_folder / f"{s}.json") for s in registry.STUDIES if (new_folder / f"{s}.json").exists()}
    run_profile = next((d.get("profile") for d in new_docs.values() if d.get("profile")), profile or new_folder.name)
    old_folder = results_folder(against or results_root() / run_profile, profile or run_profile)
    old_docs = {s: read_doc(old_folder / f"{s}.json") for s in registry.STUDIES if (old_folder / f"{s}.json").exists()}
    old_profile = next((d.get("profile") for d in old_docs.values() if d.get("profile")), old_folder.name)
    same = run_profile == old_profile
    missing = [f"{s} (not in {new_folder})" for s in old_docs if s not in new_docs]
    chapters: dict[str, list[Judged]] = {}
    provenance: list[dict] = []
    for study in (s for s in registry.STUDIES if s in new_docs):  # a chapter new in the run: every headline new
        old = ({h["quantity"]: h for h in headlines_of(study, old_docs[study], old_folder / f"{study}.json")}
               if study in old_docs else {})
        new = {h["quantity"]: h for h in headlines_of(study, new_docs[study], new_folder / f"{study}.json")}
        rows = [judge(old[q], new[q], same and old[q].get("setting") == new[q].get("setting"))
                for q in new if q in old]
        rows += [Judged(q, old[q].get("rule") or "report", old[q].get("value"), None, None, "missing",
                        "in the committed run only") for q in old if q not in new]
        rows += [Judged(q, new[q].get("rule") or "report", None, new[q].get("value"), None, "new",
                        "in the new run only") for q in new if q not in old]
        chapters[study] = rows
        for d in _differences(old_docs.get(study, {}), new_docs[study]) if study in old_docs else []:
            if d not in provenance:
                provenance.append(d)
    tier = (f"same profile ({run_profile}): values expected equal within their uncertainty" if same else
            f"{run_profile} against {old_profile}: findings expected to hold, values not compared")
    return Report(str(new_folder), str(old_folder), tier, provenance, chapters, missing, profile=run_profile)


def _cell(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "—" if x is None else str(x)


def text(report: Report) -> str:
    """The report as terminal text: a header, then one table per chapter."""
    lines = [f"verify {report.run}", f"  against {report.against}", f"  {report.tier}"]
    for d in report.provenance or [{"field": "provenance", "committed": "same", "new": "same"}]:
        lines.append(f"  {d['field']}: {_cell(d['committed'])} -> {_cell(d['new'])}")
    for m in report.missing:
        lines.append(f"  MISSING chapter: {m}")
    for study, rows in report.chapters.items():
        lines.append(f"\n{study}")
        for j in rows:
            lines.append(f"  {j.verdict:12s} {j.quantity[:70]:70s} {_cell(j.committed):>12s} {_cell(j.new):>12s} "
                         f"{_cell(j.delta):>10s}  [{j.rule}] {j.note}")
            if report.why(study, j.quantity):
                lines.append(f"  {'':12s} explained: {report.why(study, j.quantity)}")
    counts = report.counts()
    lines.append("\n" + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """The report as Markdown tables (one per chapter), for a closing note or a commit."""
    out = [f"**Run** `{report.run}` against `{report.against}`: {report.tier}.", ""]
    counts = report.counts()
    out += ["Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".", ""]
    if report.provenance:
        out += ["| provenance | committed | new |", "|---|---|---|"]
        out += [f"| {d['field']} | {_cell(d['committed'])} | {_cell(d['new'])} |" for d in report.provenance]
        out.append("")
    for study, rows in report.chapters.items():
        out += [f"### {study}", "", "| quantity | committed | new | Δ | rule | verdict |", "|---|---|---|---|---|---|"]
        out += [f"| {j.quantity} | {_cell(j.committed)} | {_cell(j.new)} | {_cell(j.delta)} | {j.rule} | "
                f"{j.verdict}: {j.note}" + (f" (explained: {report.why(study, j.quantity)})"
                                            if report.why(study, j.quantity) else "") + " |" for j in rows]
        out.append("")
    return "\n".join(out)


def save(report: Report, folder: Path, name: str) -> Path:
    """``<folder>/<name>.json`` and ``.md`` (the book's reproducibility page reads the json)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / f"{name}.md", markdown(report).encode())
    atomic_write_bytes(folder / f"{name}.json", (json.dumps(report.to_dict(), indent=1, default=str) + "\n").encode())
    return folder / f"{name}.json"
