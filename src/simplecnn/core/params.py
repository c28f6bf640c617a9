"""Bad values at the door: every chapter declares the allowed range of its parameters
(``PARAMETERS`` in its study module), checked before any work starts, by the runner before a
kernel starts and by the chapter's first code cell when a notebook is run by hand. One error
names every bad parameter, its allowed range and the value it got, so a typo costs seconds,
not an hour of training."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any


class ParameterError(ValueError):
    """Parameters outside their allowed range; the message lists each one."""


@dataclass(frozen=True)
class Rule:
    """A parameter's allowed values: ``ok(value)`` and how to say them (``allowed``)."""

    ok: Callable[[Any], bool]
    allowed: str


def _int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _num(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def whole(at_least: int = 1, optional: bool = False) -> Rule:
    """A whole number ≥ ``at_least`` (or None, with ``optional``: "all")."""
    return Rule(lambda x: (optional and x is None) or (_int(x) and x >= at_least),
                f"a whole number ≥ {at_least}" + (" or None (all)" if optional else ""))


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Rule:
    """A number in the interval given (open or closed ends)."""
    def ok(x: object) -> bool:
        if not _num(x):
            return False
        above = low is None or (x > low if low_open else x >= low)
        below = high is None or (x < high if high_open else x <= high)
        return above and below
    lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
    hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
    text = (f"a number in {lo}, {hi}" if low is not None and high is not None else
            f"a number {'>' if low_open else '≥'} {low:g}" if low is not None else f"a number ≤ {high:g}")
    return Rule(ok, text)


def one_of(options: Iterable) -> Rule:
    options = list(options)
    return Rule(lambda x: x in options, f"one of {options}")


def some_of(options: Iterable, at_least: int = 1) -> Rule:
    """A list of at least ``at_least`` items, each one of ``options``."""
    options = list(options)
    return Rule(lambda x: isinstance(x, list) and len(x) >= at_least and all(v in options for v in x),
                f"a list of at least {at_least} of {options}")


def wholes(at_least: int = 0, length: int = 1) -> Rule:
    """A list of at least ``length`` whole numbers ≥ ``at_least`` (seeds, image sides)."""
    return Rule(lambda x: isinstance(x, list) and len(x) >= length and all(_int(v) and v >= at_least for v in x),
                f"a list of at least {length} whole numbers ≥ {at_least}")


def together(ok: Callable[..., bool], allowed: str) -> Rule:
    """A rule over several parameters, keyed in ``PARAMETERS`` by the tuple of their names:
    ``ok`` takes their values in that order (``("heatmap_q", "qs"): together(lambda q, qs: q
    in qs, "heatmap_q one of qs")``). It is checked only once each alone has passed."""
    return Rule(ok, allowed)


CHECKED: dict[str, dict[str, Any]] = {}
"""The parameters each chapter checked in this process, by chapter: what ``write_results``
records when no runner told the kernel its parameters (a notebook run by plain papermill or by
hand), so that a later chapter can rebuild this one's data from its results."""


def declared(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """A notebook's parameters from its namespace: the names its parameters cell annotates
    (``dataset: str = ...``; no other cell annotates), with their values now, after
    papermill's injected cell."""
    return {name: namespace[name] for name in namespace.get("__annotations__", {}) if name in namespace}


def check(chapter: str, params: Mapping[str, Any], rules: Mapping[str | tuple[str, ...], Rule]) -> None:
    """Raise one ``ParameterError`` naming every parameter of ``params`` that breaks its rule
    (and every group of parameters that breaks a rule over several). Given a notebook's
    namespace, its declared parameters are kept in ``CHECKED`` once they pass."""
    single = {name: rule for name, rule in rules.items() if isinstance(name, str)}
    bad = [f"{name} must be {rule.allowed}, got {params[name]!r}" for name, rule in single.items()
           if name in params and not rule.ok(params[name])]
    failed = {b.split(" ", 1)[0] for b in bad}
    for names, rule in rules.items():
        if isinstance(names, tuple) and all(n in params for n in names) and not failed & set(names) \
                and not rule.ok(*(params[n] for n in names)):
            bad.append(f"{', '.join(names)} must be {rule.allowed}, got "
                       + ", ".join(f"{n}={params[n]!r}" for n in names))
    if bad:
        raise ParameterError(f"{chapter}: " + "; ".join(bad))
    if "__annotations__" in params:
        CHECKED[chapter] = declared(params)


def device() -> Rule:
    """auto, cpu, cuda, cuda:N or mps (whether it is available is checked when it is used)."""
    return Rule(lambda x: isinstance(x, str) and (x in ("auto", "cpu", "cuda", "mps") or
                                                  (x.startswith("cuda:") and x[5:].isdigit())),
                "auto, cpu, cuda, cuda:N or mps")


def dataset() -> Rule:
    """cifar10, imagenette, or the path of an existing folder (an ImageFolder)."""
    def ok(x: object) -> bool:
        from simplecnn.core.paths import user_path
        return isinstance(x, str) and (x in ("cifar10", "imagenette") or user_path(x).is_dir())
    return Rule(ok, "'cifar10', 'imagenette' or the path of an existing ImageFolder directory")


def fraction(open_low: bool = True, open_high: bool = True) -> Rule:
    return number(0.0, 1.0, open_low, open_high)


COMMON = {"device": device(), "seed": whole(0), "split_seed": whole(0), "val_fraction": fraction()}
"""Rules every chapter that has these parameters shares."""
