"""requirements.txt, environment.yml, requirements.lock and pyproject.toml agree, exactly."""

from __future__ import annotations

import re

import yaml

from simplecnn.core.paths import ROOT


def pins_from_lines(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    return pins


def test_requirements_and_environment_agree():
    req = pins_from_lines((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins_from_lines(pip) == req
    assert "python=3.11" in env["dependencies"]


def test_the_pins_the_project_promises():
    req = pins_from_lines((ROOT / "requirements.txt").read_text().splitlines())
    assert req["torch"] == "2.14.1" and req["torchvision"] == "0.29.1"
    assert req["jupyter-book"].startswith("1.")
    assert "opencv-contrib-python-headless" in req and "opencv-contrib-python" not in req


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    req = pins_from_lines((ROOT / "requirements.txt").read_text().splitlines())
    mismatched = {n: (v, version(n)) for n, v in req.items() if version(n).split("+")[0] != v}
    assert not mismatched, f"installed versions differ from requirements.txt: {mismatched}; run `make setup`"


def test_lock_pins_every_requirement_and_every_declared_dependency():
    req = pins_from_lines((ROOT / "requirements.txt").read_text().splitlines())
    lock = pins_from_lines((ROOT / "requirements.lock").read_text().splitlines())
    assert {n: lock.get(n) for n in req} == req, "requirements.lock disagrees with requirements.txt: run `make lock`"
    import tomllib
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.sub(r"[-_.]+", "-", d.lower()) for d in declared}
    assert names <= set(req), f"pyproject.toml declares {sorted(names - set(req))} that requirements.txt does not pin"
    imported = {"torch", "torchvision", "numpy", "scikit-learn", "scipy", "opencv-contrib-python-headless", "captum",
                "ptflops", "papermill", "jupytext", "myst-nb", "psutil"}
    assert imported <= names, f"pyproject.toml lacks {sorted(imported - names)}"
