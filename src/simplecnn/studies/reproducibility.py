"""The book judging its own reproduction: the committed run's provenance and every
verification report committed beside its results (``results/<profile>/verify/*.json``,
written by ``simplecnn verify --save``), as tables with their verdicts counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from simplecnn.core import params as P
from simplecnn.core.paths import results_root
from simplecnn.core.results import Headline, upstream_dirs

VERDICTS = ("reproduced", "inconclusive", "changed", "reported", "missing", "new")
CHAPTERS = ("data", "zoo", "limited_resnets", "patches", "cascade", "gradcam", "fusion", "summary")
"""The chapters whose results a profile's run writes (the book's registry says the same, a test checks)."""


def read_docs(profile: str, chapters: Sequence[str] = CHAPTERS, root: Path | None = None) -> dict[str, dict]:
    """Each chapter's results file of ``profile`` that exists (an unreadable one is an error
    naming it and the fix): from ``root``, or as a chapter reads another's results (this run's
    output first, then the committed folder: ``core.results.upstream_dirs``)."""
    folders = [root / profile] if root else upstream_dirs(profile)
    docs = {}
    for study in chapters:
        path = next((f / f"{study}.json" for f in folders if (f / f"{study}.json").exists()), None)
        if path is not None:
            try:
                docs[study] = json.loads(path.read_text())
            except ValueError as exc:
                raise ValueError(f"{path} is not readable json ({exc}); re-run the {study} chapter") from None
    return docs


def provenance_table(docs: dict[str, dict]) -> pd.DataFrame:
    """One row per chapter: the commit, device, threads, torch and when it finished."""
    rows = []
    for study, doc in docs.items():
        p = doc.get("provenance", {})
        rows.append({"chapter": study, "commit": str(p.get("git_commit", "?"))[:12], "device": p.get("device", "?"),
                     "threads": p.get("threads", "?"), "torch": p.get("packages", {}).get("torch", "?"),
                     "finished": p.get("finished", "?")})
    return pd.DataFrame(rows).set_index("chapter") if rows else pd.DataFrame()


def reports(profile: str, root: Path | None = None) -> list[dict]:
    """Every verification report committed for ``profile``, oldest first."""
    folder = (root or results_root()) / profile / "verify"
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = json.loads(path.read_text())
        doc["name"] = path.stem
        found.append(doc)
    return sorted(found, key=lambda d: d.get("made", ""))


def verdict_table(report: dict) -> pd.DataFrame:
    """Verdicts counted per chapter of one report (a total row last)."""
    rows = []
    for study, judged in report["chapters"].items():
        counts = {v: sum(j["verdict"] == v for j in judged) for v in VERDICTS}
        rows.append({"chapter": study, **counts})
    table = pd.DataFrame(rows, columns=["chapter", *VERDICTS]).set_index("chapter")
    table.loc["total"] = table.sum()
    return table


def report_header(report: dict) -> str:
    """One report's heading as Markdown, shown right above its tables: its name, what was
    compared with what, the tier, and what differs in provenance."""
    lines = [f"**{report['name']}**: `{report['run']}` against `{report['against']}`; {report['tier']}.", ""]
    lines += [f"- {d['field']}: {d['committed']} → {d['new']}" for d in report.get("provenance", [])]
    return "\n".join(lines)


def judged_table(report: dict, verdicts: Sequence[str] = ("changed", "inconclusive", "missing", "new")) -> pd.DataFrame:
    """The headlines of one report whose verdict is among ``verdicts`` (what needs a word):
    the rule's reason, and the explanation its author gave (``verify --explain``) where one was."""
    columns = ["chapter", "quantity", "committed", "new", "rule", "verdict", "why", "explained"]
    rows = [{"chapter": study, "quantity": j["quantity"], "committed": j["committed"], "new": j["new"],
             "rule": j["rule"], "verdict": j["verdict"], "why": j["note"], "explained": j.get("explained", "")}
            for study, judged in report["chapters"].items() for j in judged if j["verdict"] in verdicts]
    return pd.DataFrame(rows, columns=columns)


def headline(results: dict) -> list[Headline]:
    """The verdicts of the newest verification report (reported: they describe a comparison
    between runs, not a finding of the study)."""
    counts = results.get("latest", {}).get("counts", {})
    return [Headline(f"verification: {v}", int(counts.get(v, 0)), interval="count of headlines",
                     setting=f"newest report: {results.get('latest', {}).get('name', 'none')}")
            for v in ("reproduced", "inconclusive", "changed")]


def plan(params: dict, upstream: dict | None = None) -> list:
    """This chapter trains and runs no model."""
    return []


PARAMETERS = {"device": P.device()}
"""Every parameter's allowed values (``core.params``)."""
