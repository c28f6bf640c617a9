"""`make lab`: JupyterLab opens the jupytext .py notebooks as notebooks and saves them back."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from simplecnn.core.paths import NOTEBOOKS

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_opens_and_saves_a_percent_notebook(tmp_path):
    shutil.copy(NOTEBOOKS / "03_patches.py", tmp_path / "03_patches.py")
    port, token = free_port(), "test-token"
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
                               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={tmp_path}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/api"

    def call(path: str, method: str = "GET", body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    try:
        deadline = time.time() + 90
        while True:
            try:
                call("/status")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError(server.stdout.read().decode()[-3000:] if server.poll() is not None
                                         else "JupyterLab did not start within 90 s")
                time.sleep(0.5)
        model = call("/contents/03_patches.py?type=notebook&content=1")
        assert model["type"] == "notebook"
        cells = model["content"]["cells"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
        cells[0]["source"] = "# Patch classifiers, edited in the lab"
        call("/contents/03_patches.py", "PUT", {"type": "notebook", "format": "json", "content": model["content"]})
        text = (tmp_path / "03_patches.py").read_text()
        assert "# # Patch classifiers, edited in the lab" in text and '# %% tags=["parameters"]' in text
        assert not list(tmp_path.glob("*.ipynb")), "saving must keep the .py, not create an .ipynb"
    finally:
        server.terminate()
        server.wait(timeout=30)
