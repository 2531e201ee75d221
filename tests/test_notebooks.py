"""The notebooks run, top to bottom, against a fresh embedded database (nothing set up beyond the install), so
that they cannot rot: test.ipynb's own checks assert the public sample's figures."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture
def fresh_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="mst-nb-", dir="/tmp"))
    os.chmod(home, 0o755)
    monkeypatch.setenv("MUSICSTREAM_HOME", str(home))
    monkeypatch.delenv("MUSICSTREAM_DATABASE_URL", raising=False)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("name", ["etl.ipynb", "test.ipynb"])
def test_notebook_runs_on_a_fresh_embedded_database(fresh_home: Path, name: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit no outputs"
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}})
    client.execute()  # a failing cell (an assert of the notebook's own) raises CellExecutionError
    text = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    assert "Traceback" not in text
    if name == "test.ipynb":
        assert "(6820, 97, 22, 6813, 71, 1)" in text
    else:
        assert "records read" in text and "8,127" in text
