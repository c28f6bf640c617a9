"""The runner and command line: parameters the papermill way, results written only where
asked, failed notebooks kept, the registry's declared upstream studies, the cache key."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from simplecnn.core import memory, recipes
from simplecnn.core.cache import Cache
from simplecnn.core.data import resolve_dataset
from simplecnn.core.io import atomic_write_bytes
from simplecnn.core.paths import NOTEBOOKS, ROOT
from simplecnn.pipeline import cli, registry, runner

TOY = '''# %% [markdown]
# # A toy study

# %% tags=["parameters"]
profile: str = "cpu"  # profile
a: int = 1  # a number
rate: float = 0.5  # a float
name: "Optional[str]" = "x"  # a string or None

# %%
import time

from simplecnn.core import results

if a == 3:
    raise ValueError("a=3 is not allowed")
print(results.write_results("data", profile, {"score": a * rate, "name": name}, time.time()))
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A one-cell chapter registered as the data study, with a profile folder of its own."""
    nb = tmp_path / "nb" / "00_data.py"
    nb.parent.mkdir()
    nb.write_text(TOY)
    profiles = tmp_path / "profiles"
    (profiles / "smoke").mkdir(parents=True)
    (profiles / "smoke" / "data.yml").write_text("rate: 2.0\n")
    monkeypatch.setattr(runner, "PROFILES", profiles)
    study = registry.Study("data", "00_data.py", "simplecnn.studies.data")
    monkeypatch.setattr(registry, "STUDIES", {"data": study})
    monkeypatch.setattr(registry, "NOTEBOOKS", nb.parent)
    return nb


def test_p_values_are_parsed_like_papermill():
    assert [cli.parse_value(v) for v in ("1e-3", "3", "True", "false", "None", "abc", "0.5")] == \
        [1e-3, 3, True, False, None, "abc", 0.5]


def test_f_files_then_y_then_p_later_ones_win(tmp_path):
    f = tmp_path / "p.yml"
    f.write_text("a: 1\nrate: 0.1\nname: from-file\n")
    args = cli.argparse.Namespace(parameters_file=[str(f)], parameters_yaml=["rate: 0.2"], param=[["name", "None"]])
    assert cli.collect_overrides(args) == {"a": 1, "rate": 0.2, "name": None}


def test_parameters_layer_cell_profile_overrides_and_refuse_unknown_names(toy, tmp_path):
    assert runner.parameters(toy, "smoke", {"a": 2}) == {"a": 2, "rate": 2.0, "name": "x", "profile": "smoke"}
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['b'\].*known parameters"):
        runner.parameters(toy, "smoke", {"b": 1})
    (tmp_path / "profiles" / "smoke" / "data.yml").write_text("typo: 1\n")
    with pytest.raises(ValueError, match="typo"):
        runner.parameters(toy, "smoke")


def test_a_users_profile_folder_is_a_profile(toy, tmp_path):
    mine = tmp_path / "my-profile"
    mine.mkdir()
    (mine / "data.yml").write_text("a: 7\n")
    assert runner.parameters(toy, str(mine))["a"] == 7
    assert runner.profile_name(str(mine)) == "my-profile"
    with pytest.raises(ValueError, match="unknown profile 'nowhere'"):
        runner.parameters(toy, "nowhere")


def test_unknown_study_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown study 'patchez'.*patches"):
        registry.ordered(["patchez"])


def test_registry_orders_upstream_first_and_declares_every_chapter():
    order = [s.name for s in registry.ordered(["fusion", "gradcam", "patches"])]
    assert order.index("patches") < order.index("gradcam") and order.index("patches") < order.index("fusion")
    assert [s.path for s in registry.STUDIES.values()] == sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    assert registry.get("gradcam").upstream == ("patches",)
    for study in registry.STUDIES.values():
        assert set(study.upstream) <= set(registry.STUDIES) and study.load()


def test_fingerprint_follows_upstream_results(tmp_path):
    folder = tmp_path / "res"
    params = {"profile": "smoke"}
    before = runner.run_fingerprint(NOTEBOOKS / "05_gradcam.py", params, [folder])
    unrelated = runner.run_fingerprint(NOTEBOOKS / "01_zoo.py", params, [folder])
    atomic_write_bytes(folder / "smoke" / "patches.json", json.dumps({"params": {}, "results": {"x": 1}}).encode())
    assert runner.run_fingerprint(NOTEBOOKS / "05_gradcam.py", params, [folder]) != before
    assert runner.run_fingerprint(NOTEBOOKS / "01_zoo.py", params, [folder]) == unrelated


def test_a_new_verification_report_reruns_the_chapter_that_shows_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPLECNN_RESULTS", str(tmp_path / "res"))
    params, folders = {"profile": "smoke"}, [tmp_path / "res"]
    chapters = ("08_reproducibility.py", "07_summary.py")
    before = {nb: runner.run_fingerprint(NOTEBOOKS / nb, params, folders) for nb in chapters}
    atomic_write_bytes(tmp_path / "res" / "smoke" / "verify" / "again.json", b'{"chapters": {}}')
    after = {nb: runner.run_fingerprint(NOTEBOOKS / nb, params, folders) for nb in chapters}
    assert after["08_reproducibility.py"] != before["08_reproducibility.py"]  # it shows the reports
    assert after["07_summary.py"] == before["07_summary.py"]  # it does not read them


@pytest.mark.slow
def test_run_writes_only_its_out_folder_and_records_injected_parameters(toy, tmp_path):
    committed = tmp_path / "committed"
    target = runner.Target(tmp_path / "out" / "results", committed)
    runner.run_all("smoke", tmp_path / "out", {"a": 2}, ["data"], target=target)
    doc = json.loads((tmp_path / "out" / "results" / "smoke" / "data.json").read_text())
    assert doc["params"] == {"a": 2, "rate": 2.0, "name": "x", "profile": "smoke"}
    assert doc["results"]["score"] == 4.0 and not committed.exists()
    mode = stat.S_IMODE((tmp_path / "out" / "results" / "smoke" / "data.json").stat().st_mode)
    assert mode & 0o044 == 0o044, oct(mode)  # readable by group and others, like any written file


def test_without_a_runner_the_checked_parameters_are_recorded(tmp_path, monkeypatch):
    """Plain papermill or a hand run: no runner context, so the results record what the
    chapter's parameters cell declared and the check saw (after papermill's injection)."""
    from IPython.core.interactiveshell import InteractiveShell
    from simplecnn.core import params, results
    monkeypatch.delenv("SIMPLECNN_RUN", raising=False)
    monkeypatch.setattr(results, "output_dir", lambda profile: tmp_path / profile)
    monkeypatch.setitem(params.CHECKED, "data", None)
    shell = InteractiveShell.instance()  # the kernel papermill drives runs cells through it
    try:
        shell.run_cell('profile: str = "cpu"\nsize: "Optional[int]" = None\nlr: float = 0.1')
        shell.run_cell('size = 12')  # papermill's injected cell assigns without annotations
        shell.run_cell('helper = 3')  # a later cell's variable is not a parameter
        ns = dict(shell.user_ns)
    finally:
        InteractiveShell.clear_instance()
    with pytest.raises(params.ParameterError, match="size must be"):
        params.check("data", {**ns, "size": 0}, {"size": params.whole(1, optional=True)})
    assert params.CHECKED["data"] is None  # a failed check records nothing
    params.check("data", ns, {"size": params.whole(1, optional=True)})
    doc = json.loads(results.write_results("data", "smoke", {}, 0.0).read_text())
    assert doc["params"] == {"profile": "cpu", "size": 12, "lr": 0.1}


def test_a_chapter_whose_results_file_changed_runs_again(toy, tmp_path):
    out = tmp_path / "out"
    target = runner.Target(out / "results", tmp_path / "committed")
    results_file = out / "results" / "smoke" / "data.json"
    say = lambda: runner.execute(toy, out / "00_data.ipynb", runner.parameters(toy, "smoke"), target)  # noqa: E731
    assert say() and not say()  # ran, then up to date
    results_file.write_text(results_file.read_text().replace('"score"', '"score_old"'))  # e.g. `git checkout`
    assert say() and json.loads(results_file.read_text())["results"]["score"] == 2.0
    results_file.unlink()
    assert say() and results_file.exists() and not say()


@pytest.mark.slow
def test_a_failed_notebook_is_kept_with_its_failing_cell(toy, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(runner.RunFailed, match="cell .* raised ValueError: a=3 is not allowed") as info:
        runner.run_all("smoke", out, {"a": 3}, ["data"], target=runner.Target(out / "results", tmp_path))
    kept = info.value.notebook
    assert kept == out / "00_data.failed.ipynb" and kept.exists()
    assert "a=3 is not allowed" in kept.read_text()  # the executed copy shows the traceback in its cell
    assert "ValueError" in (out / "00_data.error.txt").read_text()
    assert not (out / "00_data.ipynb").exists() and not (out / "00_data.stamp").exists()


def test_run_with_overrides_needs_out_and_unknown_only_is_refused(capsys):
    assert cli.main(["run", "--profile", "smoke", "-p", "seed", "1"]) == 2
    assert "need --out" in capsys.readouterr().err
    assert cli.main(["run", "--profile", "smoke", "--only", "typo", "--out", "/tmp/x"]) == 2
    assert "unknown study 'typo'" in capsys.readouterr().err


def test_the_weights_key_names_the_device(tmp_path, monkeypatch):
    from simplecnn.core import train
    from simplecnn.core.device import device_key
    seen = []
    monkeypatch.setattr(Cache, "load", lambda self, kind, spec, code=(): seen.append(spec) or None)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(train, "fit", stop)
    from conftest import separable_task
    with pytest.raises(Stop):
        train.train_model("cifar_resnet18", separable_task(n=30), train.TrainConfig(epochs=1, batch_size=8),
                          {"width": 0.125}, cache=Cache(tmp_path))
    assert seen[0]["device"] == device_key("cpu") == "cpu"


def test_relative_dataset_paths_resolve_from_the_callers_directory(tmp_path, monkeypatch, mixed_folder):
    mixed_folder(tmp_path / "mine" / "pics")
    monkeypatch.setenv("SIMPLECNN_RUN", json.dumps({"cwd": str(tmp_path / "mine")}))
    monkeypatch.chdir(NOTEBOOKS)  # where the kernel runs
    name, root = resolve_dataset("pics")
    assert (name, root) == ("pics", tmp_path / "mine" / "pics")


def test_a_data_set_without_a_recipe_must_borrow_one():
    with pytest.raises(ValueError, match="no settings for data set 'pics'.*like='imagenette'"):
        recipes.recipe("fast", "pics")
    assert recipes.recipe("fast", "pics", like="imagenette") == recipes.recipe("fast", "imagenette")


def test_peak_memory_has_a_portable_source_off_proc():
    """Where /proc cannot reset the high-water mark, getrusage and psutil still see a large
    allocation (an over-estimate at worst, never zero)."""
    def allocate():
        x = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched
        return float(x.sum())
    code = ("import json; from simplecnn.core import memory, io; import torch;"
            "f=lambda: float(torch.ones(64*1024*1024//4).sum());"
            "print(json.dumps(memory.peak_bytes(f, reset=lambda: False)[1]))")
    done = memory.run_isolated(code)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip().splitlines()[-1]) >= 60 * 1024 * 1024
    assert memory.peak_bytes(allocate)[1] >= 60 * 1024 * 1024  # the Linux path, reset by /proc


def test_command_line_help_lists_the_papermill_options():
    done = subprocess.run([sys.executable, "-m", "simplecnn", "run", "--help"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ})
    assert all(opt in done.stdout for opt in ("-p", "-y", "-f", "--profile", "--results-from", "--only"))


def test_book_pages_drop_progress_but_keep_results():
    import nbformat
    from simplecnn.pipeline.book import drop_progress
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="epoch=1 train_loss=0.5\n"),
        nbformat.v4.new_output("stream", name="stdout", text="table\n")])])
    kept = drop_progress(nb).cells[0].outputs
    assert [o["name"] for o in kept] == ["stdout"]


def test_sweep_runs_take_a_free_gpu_each(tmp_path, monkeypatch):
    import queue

    from simplecnn.pipeline import sweep
    seen = []

    class FakeProcess:
        pid, returncode = 0, 0

        def __init__(self, cmd, env, **kwargs):
            seen.append(env.get("CUDA_VISIBLE_DEVICES"))

        def communicate(self, timeout=None):
            return "[1/1] executed", None

    monkeypatch.setattr(sweep.subprocess, "Popen", FakeProcess)
    free = queue.Queue()
    free.put(3)
    job = {"study": "data", "profile": "smoke", "params": {}, "threads": 1, "results_from": str(tmp_path),
           "gpus": free}
    for i in range(2):
        assert sweep.run_one({**job, "folder": str(tmp_path / f"run-{i}")})["status"] == "done"
    assert seen == ["3", "3"] and free.get_nowait() == 3  # taken and given back each time
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    gpus = sweep.local_gpus()
    assert [gpus.get_nowait() for _ in range(4)] == [0, 1, 2, 3]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sweep.local_gpus() is None


@pytest.mark.slow
def test_the_terminal_shows_the_plan_and_progress_and_the_log_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "simplecnn", "run", "--profile", "smoke", "--only", "data",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SIMPLECNN_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("smoke profile: 1 of 1 chapters to execute, expected")
    assert any(line.lstrip().startswith("[1/1] data ") and "| decoding" in line and "left" in line for line in lines)
    assert any(line.startswith("[1/1] 00_data.py: done in") for line in lines)
    for noise in ("Executing Cell", "Input Notebook", "<Figure size", "Styler at 0x", "%|", "Kernel is running over TCP"):
        assert noise not in done.stdout + done.stderr, noise
    log = (out / "00_data.log").read_text()
    assert "Executing Cell" in log and "decoding" in log
