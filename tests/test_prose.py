"""No typed numbers in prose: every number a reader sees in a chapter's text is glued from
the code that computed it (``{glue:text}`name```), so text and results cannot drift apart.

Checked: the markdown cells of every notebook and every ``book/*.md`` page. Not checked:
roles (glue, cite, doc, ...), fenced code, link targets, URLs, comments, directive options
and example command lines in inline code. Allowed: years, section/table/equation numbers,
source file names (``004_…``), ordered-list markers and names that contain digits
(ResNet-50, CIFAR-10, top-5, 3×3, stage 0 ...).
A number that is a fact of a source (a paper's accuracy) is glued too, from the study
module's constant, so the summary and the prose quote the same figure.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

from simplecnn.core.paths import NOTEBOOKS, ROOT

# what is not prose: removed before looking for digits
ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")  # {glue:text}`x:.2f`, {cite}`key2019`, {doc}`../executed/00_data`
FENCE = re.compile(r"^(```+|~~~+)([^\n]*)\n.*?^\1\s*$", re.S | re.M)
LINK_TARGET = re.compile(r"\]\([^)]*\)")
URL = re.compile(r"https?://\S+")
COMMENT = re.compile(r"<!--.*?-->", re.S)
OPTION = re.compile(r"^\s*:[\w-]+:.*$", re.M)  # directive options, e.g. ":width: 80%"
TARGET = re.compile(r"^\s*\([\w:.-]+\)=\s*$", re.M)  # (label)=
COMMAND = re.compile(r"`(?:-{1,2}\w|python |make |\.venv/)[^`]*`")  # an example command line

# numbers that are names, not quantities
ALLOWED = [
    r"\b(?:19[5-9]\d|20[0-3]\d)\b",  # years
    r"(?:§|\b(?:[Ss]ection|[Tt]able|[Ff]igure|[Ff]ig\.|[Cc]hapter|[Ee]quation|[Ee]q\.|[Aa]lgorithm|[Ss]ource))"
    r"\s*\d+(?:\.\d+)*[a-z]?",  # section, table, equation numbers; "source 003"
    r"^\s*#+\s+\d+(?:\.\d+)*\.?(?=\s)",  # numbered headings
    r"^\s*\d+[.)](?=\s)",  # ordered-list markers
    r"\b\d{3}_\w*",  # source file names, 004_report
    r"\b([1357])\s*[×x]\s*\1\b",  # kernel names 1×1, 3×3, 5×5, 7×7
    r"\b(?:ResNet|BagNet|VGG|CIFAR|DenseNet|WRN|Inception|[Tt]op|Apache)-\d+(?:\.\d+)?(?:/\d+)*",  # ResNet-18/34
    r"\b[A-Za-z][A-Za-z_]*\d+[A-Za-z0-9_]*(?:\.\d+)*(?:/\d+)*(?:@\d+)?",  # ResNet18/34, sha256, v1.5, R50@224
    r"\b(?:[Ss]tage|stride)[ -]\d\b",  # stage 0, stride-2
]
ALLOWED_RE = re.compile("|".join(f"(?:{a})" for a in ALLOWED), re.M)
DIGITS = re.compile(r"[0-9][0-9,.]*")


def prose(markdown: str) -> str:
    """``markdown`` without what is not prose (roles, code, links, comments, options)."""
    fenced = FENCE.sub(lambda m: m.group(0).split("\n", 1)[1].rsplit("\n", 1)[0]
                       if m.group(2).strip().startswith("{") and not m.group(2).strip().startswith("{code")
                       else "", markdown)  # a directive's body is prose; code is not
    for pattern in (COMMENT, ROLE, COMMAND, LINK_TARGET, URL, OPTION, TARGET):
        fenced = pattern.sub(" ", fenced)
    return fenced


def typed_numbers(markdown: str) -> list[tuple[str, str]]:
    """(number, its line) for every digit run in the prose of ``markdown`` that no allowlist
    entry covers."""
    found = []
    for line in prose(markdown).splitlines():
        rest = ALLOWED_RE.sub(" ", line)
        found += [(m.group(0).rstrip(".,"), line.strip()) for m in DIGITS.finditer(rest)]
    return found


def markdown_of(path: Path) -> str:
    """A notebook's markdown cells (jupytext percent) or a book page's text."""
    if path.suffix == ".md":
        return path.read_text()
    return "\n\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")


PAGES = sorted(NOTEBOOKS.glob("*.py")) + sorted((ROOT / "book").glob("*.md"))


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_prose_has_no_typed_numbers(path: Path):
    typed = typed_numbers(markdown_of(path))
    listing = "\n".join(f"  {n!r} in: {line}" for n, line in typed)
    assert not typed, (f"{path.relative_to(ROOT)}: numbers typed into prose; glue them from the code "
                       f"(glue(name, value) and {{glue:text}}`name`), or extend the allowlist in "
                       f"tests/test_prose.py if one is a name:\n{listing}")


@pytest.mark.parametrize("text", [
    "Accuracy reached {glue:text}`acc:.1f` % ({cite}`brendel2019bagnet`).",
    "ResNet-50, ResNet18, VGG16, BagNet-33, CIFAR-10 and R50@224, top-1 and top-5.",
    "Brendel and Bethge (2019), Table 2.1 and §2.2.7 of source 004; file `004_report.pdf`.",
    "3×3 and 1×1 kernels; `imagenette2`, sha256, uint8 tensors, ResNet-18/34/50.",
    "## 2. Results\n\n1. first\n2. second",
    "torchvision's ResNets are \"v1.5\"; ResNet18/34/50, stage 0, a stride-2 convolution.",
    "run it with `-p resolution 32 -p qs \"[5, 9]\"` or `python -m simplecnn run -p epochs 3`.",
    "```bash\nmake book -p epochs 30\n```\nSee [the docs](https://x.org/v2/page3.html).",
    "```{admonition} Note\n:class: tip\nAll {glue:text}`n` images.\n```",
])
def test_names_years_and_glue_pass(text: str):
    assert typed_numbers(text) == []


@pytest.mark.parametrize("text, number", [
    ("BagNet reached 87 % top-5.", "87"),
    ("a learning rate of 0.8 was chosen", "0.8"),
    ("CIFAR-10 keeps its 10,000 test images", "10,000"),
    ("trained for 50 epochs at 224×224", "50"),
    ("```{note}\nIt took 12 minutes.\n```", "12"),
    ("`ColorJitter(0.5)`", "0.5"),
])
def test_typed_numbers_are_caught(text: str, number: str):
    assert number in [n for n, _ in typed_numbers(text)]
