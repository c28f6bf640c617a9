"""Bad input, every path a user can hit: each test asserts the message a user sees (what is
wrong, what to do) or that the input works; nothing half-written is left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import separable_task, write_image
from simplecnn.core import data, distributed
from simplecnn.core.archives import DataError, prepare, reduce_imagenette, unpack
from simplecnn.core.cache import MANIFEST
from simplecnn.core.params import ParameterError
from simplecnn.core.paths import ROOT
from simplecnn.core.train import TrainConfig, build_normalized, fit
from simplecnn.pipeline import book, cli, registry, runner


def folder(root: Path, classes: int = 3, per_class: int = 6, size: tuple[int, int] = (12, 12)) -> Path:
    for c in range(classes):
        for i in range(per_class):
            write_image(root / f"class{c}" / f"{i:03d}.png", "RGB", size, 40 + 80 * c, "PNG")
    return root


# --- data layouts ----------------------------------------------------------------------------

def test_a_val_folder_missing_a_class_is_an_error_naming_it(tmp_path, cache):
    root = tmp_path / "pics"
    folder(root / "train"), folder(root / "val")
    shutil.rmtree(root / "val" / "class1")
    (root / "val" / "extra").mkdir()
    write_image(root / "val" / "extra" / "a.png", "RGB", (12, 12), 10, "PNG")
    with pytest.raises(DataError, match=r"val has missing \['class1'\] and extra \['extra'\].*same class folders"):
        data.load_dataset(str(root), 12, cache=cache)


def test_every_layout_error_names_the_fix(tmp_path, cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no class folders.*<class>/<image>"):
        data.load_dataset(str(tmp_path / "empty"), 12, cache=cache)
    folder(tmp_path / "only_train" / "train")
    for read in (lambda p: data.load_dataset(p, 12, cache=cache), data.split_sizes):  # the plan's count says the same
        with pytest.raises(DataError, match="has train/ but neither val/ nor test/; add one"):
            read(str(tmp_path / "only_train"))
    folder(tmp_path / "no_train" / "val")
    for read in (lambda p: data.load_dataset(p, 12, cache=cache), data.split_sizes):
        with pytest.raises(DataError, match=r"has \['val'\] but no train/ folder"):
            read(str(tmp_path / "no_train"))
    with pytest.raises(DataError, match="neither 'cifar10', 'imagenette' nor an existing folder"):
        data.load_dataset(str(tmp_path / "nowhere"), 12, cache=cache)
    with pytest.raises(ValueError, match=r"split fraction must be in \(0, 1\), got 1.5"):
        data.load_dataset(str(folder(tmp_path / "pool")), 12, val_fraction=1.5, cache=cache)


def test_the_train_test_layout_carves_validation_from_train(tmp_path, cache):
    root = tmp_path / "tt"
    folder(root / "train", per_class=10), folder(root / "test", per_class=4)
    splits = data.load_dataset(str(root), 12, val_fraction=0.2, cache=cache)
    assert splits.sizes() == {"train": 24, "val": 6, "test": 12}
    assert data.split_sizes(str(root), 0.2) == splits.sizes()  # what a chapter's plan counts, without decoding


def test_a_corrupt_file_in_a_parallel_decode_is_named(tmp_path, cache, monkeypatch):
    root = tmp_path / "many"
    for i in range(data.PARALLEL_MIN_FILES + 2):
        write_image(root / f"class{i % 2}" / f"{i:04d}.png", "RGB", (8, 8), 40 + 80 * (i % 2), "PNG")
    bad = root / "class1" / "0003.png"
    bad.write_bytes(b"not an image")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with pytest.raises(DataError, match=r"cannot read image .*0003\.png.*delete or replace this file"):
        data.load_folder(root, 8, cache=cache)
    assert not list(cache.root.rglob(MANIFEST))  # nothing that looks complete was stored


# --- hostile files ---------------------------------------------------------------------------

HOSTILE = {  # name -> (writer, works?)
    "zero-byte.jpg": (lambda p: p.write_bytes(b""), False),
    "text.jpg": (lambda p: p.write_text("this is a text file, not a JPEG"), False),
    "one-pixel.png": (lambda p: Image.new("RGB", (1, 1), (200, 10, 10)).save(p), True),
    "sixteen-bit.png": (lambda p: Image.fromarray(np.full((9, 9), 40000, np.uint16)).save(p), True),
    "animated.gif": (lambda p: Image.new("P", (10, 10), 3).save(p, save_all=True, append_images=[
        Image.new("P", (10, 10), 7)], duration=100, loop=0), True),
    "ten-thousand-wide.png": (lambda p: Image.new("L", (10_000, 4), 128).save(p), True),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_works_or_stops_with_one_error_naming_it(name, tmp_path, cache):
    root = folder(tmp_path / "pics", per_class=4)
    write, works = HOSTILE[name]
    write(root / "class0" / name)
    if works:
        images, _ = data.load_folder(root, 12, cache=cache)
        assert images.images.shape == (13, 3, 12, 12) and images.images.dtype == torch.uint8
    else:
        with pytest.raises(DataError, match=f"cannot read image .*{name}"):
            data.load_folder(root, 12, cache=cache)
        assert not list(cache.root.rglob(MANIFEST))


def test_symlink_loops_are_skipped(tmp_path, cache):
    root = folder(tmp_path / "pics", per_class=4)
    (root / "class0" / "loop").symlink_to(root / "class0", target_is_directory=True)
    (root / "class1" / "a.png").symlink_to(root / "class1" / "b.png")
    (root / "class1" / "b.png").symlink_to(root / "class1" / "a.png")
    images, _ = data.load_folder(root, 12, cache=cache)
    assert len(images) == 12  # the real files, each once


def test_a_failed_chapter_leaves_no_results_and_no_cache_entry(tmp_path):
    root = folder(tmp_path / "pics", per_class=4)
    (root / "class0" / "zero.jpg").write_bytes(b"")
    out, cache_dir = tmp_path / "out", tmp_path / "cache"
    env = {**os.environ, "SIMPLECNN_CACHE": str(cache_dir)}
    done = subprocess.run([sys.executable, "-m", "simplecnn", "run", "--profile", "smoke", "--only", "data", "-y",
                           f"datasets: ['{root}']", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1 and "zero.jpg" in done.stderr
    assert not list((out / "results").rglob("*.json")) and not list(cache_dir.rglob(MANIFEST))
    assert (out / "00_data.failed.ipynb").exists()


# --- archives ----------------------------------------------------------------------------------

def test_archive_errors_name_the_fix(tmp_path):
    src = folder(tmp_path / "wrong-top" / "train")
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src.parent, arcname="wrong-top")
    from simplecnn.core.io import file_sha256
    with pytest.raises(DataError, match="does not unpack to cifar10-jpg/"):
        unpack(archive, file_sha256(archive), tmp_path / "dest", "cifar10-jpg")
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        prepare(["mnist"], tmp_path, tmp_path / "dest", allow_download=False)
    imagenette = folder(tmp_path / "imagenette" / "train", per_class=2)
    (imagenette / "class0" / "broken.JPEG").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DataError, match="broken.JPEG is not a readable image"):
        reduce_imagenette(imagenette.parent, tmp_path / "reduced", size=16)
    (imagenette / "class0" / "broken.JPEG").unlink()
    with pytest.raises(DataError, match="even at JPEG quality .*pass a smaller size"):
        reduce_imagenette(imagenette.parent, tmp_path / "reduced", size=16, limit_bytes=10)


# --- the command line, the registry, the runner ---------------------------------------------

def test_command_line_values_that_are_not_what_they_should_be(tmp_path, capsys):
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    assert cli.main(["run", "--only", "data", "--out", str(tmp_path), "-f", str(tmp_path / "list.yml")]) == 2
    assert "must hold a mapping of parameter names to values" in capsys.readouterr().err
    assert cli.main(["run", "--only", "data", "--out", str(tmp_path), "-y", "[1, 2]"]) == 2
    assert "must be a YAML mapping, e.g. -y 'epochs: 3'" in capsys.readouterr().err
    assert cli.main(["sweep", "notebooks/00_data.py", "-p", "per_class"]) == 2
    assert "-p per_class needs at least one value" in capsys.readouterr().err
    assert cli.main(["run", "--only", "data", "--out", str(tmp_path), "-p", "epochz", "3"]) == 2
    assert "unknown parameter(s) ['epochz']" in capsys.readouterr().err


def test_registry_refuses_a_notebook_that_is_no_chapter_and_circular_upstream(monkeypatch):
    with pytest.raises(ValueError, match="notebooks/99_extra.py is not a chapter of the book"):
        registry.by_notebook("notebooks/99_extra.py")
    loop = {"a": registry.Study("a", "01_a.py", "m", ("b",)), "b": registry.Study("b", "02_b.py", "m", ("a",))}
    monkeypatch.setattr(registry, "STUDIES", loop)
    with pytest.raises(ValueError, match="circular upstream declaration: a -> b -> a"):
        registry.ordered()


SLEEPER = '''# %% tags=["parameters"]
profile: str = "cpu"  # profile
seconds: float = 30.0  # how long to sleep

# %%
import time

time.sleep(seconds)
'''


@pytest.fixture
def sleeper(tmp_path, monkeypatch):
    nb = tmp_path / "nb" / "00_data.py"
    nb.parent.mkdir()
    nb.write_text(SLEEPER)
    monkeypatch.setattr(registry, "STUDIES", {"data": registry.Study("data", "00_data.py", "simplecnn.studies.data")})
    monkeypatch.setattr(registry, "NOTEBOOKS", nb.parent)
    return nb


@pytest.mark.slow
def test_a_chapter_past_its_timeout_is_stopped_and_kept(sleeper, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        runner.execute(sleeper, out / "00_data.ipynb", {"profile": "smoke", "seconds": 30.0},
                       runner.Target(out / "results", tmp_path), timeout=3)
    assert (out / "00_data.failed.ipynb").exists() and not (out / "00_data.ipynb").exists()


def test_an_interrupted_run_keeps_what_it_had_as_failed(sleeper, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def interrupted(source, partial, **kwargs):
        Path(partial).write_text(Path(source).read_text())  # the cells run so far
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(sleeper, out / "00_data.ipynb", {"profile": "smoke", "seconds": 1.0},
                       runner.Target(out / "results", tmp_path))
    assert (out / "00_data.failed.ipynb").exists()
    assert not (out / "00_data.ipynb").exists() and not (out / "00_data.stamp").exists()


@pytest.mark.slow
def test_a_failing_book_build_names_the_page_and_sphinx_s_error(tmp_path):
    staged = tmp_path / "book"
    staged.mkdir()
    (staged / "_config.yml").write_text("title: broken\nexecute:\n  execute_notebooks: 'off'\n")
    (staged / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n")
    (staged / "intro.md").write_text("# Intro\n\nFine.\n")
    (staged / "page.md").write_text("# Page\n\nA link to {doc}`missing-page`.\n")
    with pytest.raises(book.BookFailed) as info:
        book.compile_book(staged, tmp_path / "jb.log")
    message = str(info.value)
    assert "page.md" in message and "WARNING" in message and "missing-page" in message
    assert str(staged) not in message.split("\n", 1)[1].split("full log")[0]  # each error's page path shortened
    assert "\x1b[" not in message  # Sphinx's colour codes stripped
    assert "full log:" in message and (tmp_path / "jb.log").exists()


# --- training ----------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, allowed", [
    ("epochs", 0, "a whole number >= 1"), ("batch_size", 1, ">= 2"), ("lr", -0.1, "> 0"),
    ("momentum", 1.0, r"in \[0, 1\)"), ("weight_decay", -1e-4, ">= 0"), ("label_smoothing", 1.0, r"in \[0, 1\)"),
    ("ema", 1.5, r"in \[0, 1\)"), ("warmup", 2.0, r"in \[0, 1\]"), ("low_res_epochs", 3, r"in \[0, epochs\)"),
    ("low_res_scale", 0.0, r"in \(0, 1\]"), ("schedule", "linear", "unknown schedule"),
    ("augment", ("blur",), r"unknown augmentation\(s\) \['blur'\]")])
def test_train_config_bounds_name_the_field_and_its_range(field, value, allowed):
    with pytest.raises(ValueError, match=allowed):
        TrainConfig(**{"epochs": 3, field: value})


def test_a_batch_the_processes_cannot_share_is_an_error(bands, monkeypatch):
    monkeypatch.setattr(distributed, "rank_and_world", lambda: (0, 3))
    model = build_normalized("cifar_resnet18", bands, {"width": 0.125}, 0)
    with pytest.raises(ValueError, match="batch 8 must be divisible by the 3 processes"):
        fit(model, bands.train, TrainConfig(epochs=1, batch_size=8))


def test_a_training_set_smaller_than_a_batch_trains_on_all_of_it_each_step():
    tiny = separable_task(n=60, size=16)
    model = build_normalized("cifar_resnet18", tiny, {"width": 0.125}, 0)
    history = fit(model, tiny.train, TrainConfig(epochs=2, batch_size=128))
    assert len(history) == 2 and all(np.isfinite(h["train_loss"]) for h in history)


def test_an_interrupted_run_with_ema_resumes_to_the_same_weights(bands, tmp_path):
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, ema=0.9)
    whole = build_normalized("cifar_resnet18", bands, {"width": 0.125}, 0)
    fit(whole, bands.train, config)

    class Stop(Exception):
        pass

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Stop

    checkpoint = tmp_path / "ckpt.pt"
    broken = build_normalized("cifar_resnet18", bands, {"width": 0.125}, 0)
    with pytest.raises(Stop):
        fit(broken, bands.train, config, checkpoint=checkpoint, on_epoch_end=stop_after_first)
    resumed = build_normalized("cifar_resnet18", bands, {"width": 0.125}, 0)
    history = fit(resumed, bands.train, config, checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# --- bad values at the door: every chapter, before any work ---------------------------------

BAD_VALUES = [
    ("data", "datasets", ["nowhere"]), ("data", "per_class", 0), ("data", "val_fraction", 1.0),
    ("zoo", "models", ["resnet9000"]), ("zoo", "models", ["resnet18"]), ("zoo", "peak_batch", 0),
    ("zoo", "resolution", 8),
    ("limited_resnets", "epochs", 0), ("limited_resnets", "epochs", -3), ("limited_resnets", "width", 0.0),
    ("limited_resnets", "seeds", [0, 1.5]), ("limited_resnets", "seeds", "0"), ("limited_resnets", "designs", ["V"]),
    ("limited_resnets", "dataset", "no/such/folder"), ("limited_resnets", "regimen", "adam"),
    ("limited_resnets", "resolution", 4), ("limited_resnets", "lr", 0), ("limited_resnets", "device", "tpu"),
    ("patches", "qs", [7]), ("patches", "methods", ["hog"]), ("patches", "resolution", 0),
    ("patches", "background_share", 1.0), ("patches", "extra_seeds", [-1]), ("patches", "like", "mnist"),
    ("cascade", "stages", [{"model": "resnet9000", "resolution": 32}, {"model": "resnet18", "resolution": 64}]),
    ("cascade", "stages", [{"model": "resnet18", "resolution": 32}]), ("cascade", "grid_size", 1),
    ("cascade", "level", 1.5), ("cascade", "scores", ["margin"]), ("gradcam", "methods", ["lime"]), ("gradcam", "curve_images", 0),
    ("fusion", "rules", ["mean_logit", "vote"]), ("fusion", "alpha", 0.0), ("fusion", "reference", "median")]


@pytest.mark.parametrize("study, name, value", BAD_VALUES, ids=lambda x: str(x)[:24])
def test_a_bad_value_stops_the_run_naming_the_parameter_and_its_range(study, name, value, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=rf"{study}: {name} must be .*, got"):
        runner.run_all("smoke", out, {name: value}, [study], target=runner.Target(out / "results", tmp_path))
    assert not out.exists() or not list(out.glob("*.ipynb"))  # nothing ran


def test_a_resolution_the_patch_sizes_do_not_fit_stops_the_run_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=r"patches: resolution, qs must be such that every patch size q in qs is "
                                             r"at most the resolution .*, got resolution=16, qs=\[9, 17\]"):
        runner.run_all("smoke", out, {"resolution": 16}, ["patches"], target=runner.Target(out / "results", tmp_path))
    with pytest.raises(ParameterError, match=r"resolution, heatmap_q, stride must be such that the heatmap's grid"):
        runner.run_all("smoke", out, {"resolution": 17, "qs": [9, 17], "heatmap_q": 17}, ["patches"],
                       target=runner.Target(out / "results", tmp_path))
    assert not out.exists() or not list(out.glob("*.ipynb"))


def test_parameters_that_must_agree_are_checked_together_after_each_alone():
    from simplecnn.core.params import check
    from simplecnn.studies import patches
    with pytest.raises(ParameterError, match=r"heatmap_q, qs must be such that heatmap_q is one of qs, "
                                             r"got heatmap_q=17, qs=\[3, 9\]"):
        check("patches", {"heatmap_q": 17, "qs": [3, 9]}, patches.PARAMETERS)
    with pytest.raises(ParameterError) as bad:  # qs itself is wrong: said once, not twice
        check("patches", {"heatmap_q": 17, "qs": [7]}, patches.PARAMETERS)
    assert "qs must be" in str(bad.value) and "heatmap_q, qs" not in str(bad.value)
    check("patches", {"heatmap_q": 9, "qs": [3, 9]}, patches.PARAMETERS)


def test_the_chapter_itself_checks_its_parameters_when_run_by_hand():
    from simplecnn.core.params import check
    from simplecnn.studies import limited
    with pytest.raises(ParameterError) as bad:  # both named in one message
        check("limited_resnets", {"epochs": 0, "width": -1.0, "seeds": [0]}, limited.PARAMETERS)
    assert "epochs must be a whole number ≥ 1, got 0" in str(bad.value) and "width must be" in str(bad.value)


# --- your own data through every chapter ---------------------------------------------------------

AWKWARD = [("L", (40, 40), "PNG", ".png"), ("RGBA", (30, 30), "PNG", ".png"), ("P", (24, 24), "GIF", ".gif"),
           ("CMYK", (36, 36), "JPEG", ".jpg"), ("RGB", (20, 20), "PNG", ".png"), ("RGB", (600, 200), "JPEG", ".jpeg")]


@pytest.fixture
def own_data(tmp_path) -> Path:
    """Three classes of awkward photos: grayscale, RGBA, palette, CMYK, 20 px, 600 × 200."""
    root = tmp_path / "my-photos"
    for c in range(3):
        for i in range(24):
            mode, size, fmt, suffix = AWKWARD[i % len(AWKWARD)]
            write_image(root / f"class{c}" / f"{i:03d}{suffix}", mode, size, 30 + 90 * c, fmt)
    return root


@pytest.mark.slow
def test_a_users_image_folder_runs_through_every_chapter_with_plain_papermill(own_data, tmp_path):
    """Each chapter that takes a data set, its smoke profile, the data set a user's folder:
    the notebook converted with jupytext and run with papermill's own command line."""
    env = {**os.environ, "SIMPLECNN_BUILD": str(tmp_path / "build")}
    chapters = [("00_data", {"datasets": [str(own_data)], "resolutions": {str(own_data): 32}}),
                ("02_limited_resnets", {"dataset": str(own_data)}), ("03_patches", {"dataset": str(own_data)}),
                ("04_cascade", {"dataset": str(own_data), "train_size": None}), ("05_gradcam", {}), ("06_fusion", {})]
    for stem, overrides in chapters:
        study = registry.by_notebook(f"{stem}.py").name
        ipynb = tmp_path / f"{stem}.ipynb"
        subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "-o", str(ipynb),
                        str(ROOT / "notebooks" / f"{stem}.py")], check=True, capture_output=True)
        params = tmp_path / f"{stem}.yml"
        profile = yaml.safe_load((ROOT / "profiles" / "smoke" / f"{study}.yml").read_text())
        params.write_text(json.dumps({**profile, **overrides, "profile": "smoke"}))
        done = subprocess.run([sys.executable, "-m", "papermill", str(ipynb), str(tmp_path / f"{stem}.out.ipynb"),
                               "-f", str(params), "--cwd", str(ROOT / "notebooks"), "-k", "python3"],
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{stem}: {done.stderr[-3000:]}"
    results = tmp_path / "build" / "interactive" / "results" / "smoke"
    assert json.loads((results / "patches.json").read_text())["results"]["setting"]["dataset"] == str(own_data)
    said = (tmp_path / "03_patches.out.ipynb").read_text()  # the settings borrowed, and why, on stderr
    assert "recipe 'fast' for my-photos: cifar10's settings (my-photos at 32 px is small like CIFAR-10" in said
