"""The package's layers, read from its own import statements: a lower layer never imports a higher one.

extract (files and bytes → values and fields) < transform (the rules on one record) < db < load (one run: lock,
merge, commit) < engines (local processes or Spark: files → staging) < the CLI. ``load`` runs whatever engine it
is handed (``load.state.Engine``) and imports none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "musicstream"

# For each layer, the musicstream packages it must never import (at module level or inside a function).
FORBIDDEN = {
    "extract": {"transform", "db", "load", "engines", "report", "cli"},
    "transform": {"db", "load", "engines", "report", "cli"},
    "db": {"extract", "transform", "load", "engines", "report", "cli"},
    "load": {"engines", "report", "cli"},
    "engines": {"report", "cli"},
}


def imported(path: Path) -> set[str]:
    """The musicstream modules a file imports, as dotted names (``musicstream.load.state``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("musicstream.")}


def layer_of(module: str) -> str:
    return module.split(".")[1]


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: it finds an import of an engine inside a function of a load module."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from musicstream.engines.local import LocalEngine\n    return LocalEngine\n")
    assert "engines" in {layer_of(m) for m in imported(source)}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_a_higher_one(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules under {layer}/"
    wrong = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in files
        for module in sorted(imported(path))
        if layer_of(module) in FORBIDDEN[layer]
    ]
    assert wrong == []


def test_the_pipeline_shows_in_the_folder_names() -> None:
    """Both engines live in engines/, the rules in transform/, the run in load/."""
    assert (PACKAGE / "engines" / "local.py").is_file() and (PACKAGE / "engines" / "spark.py").is_file()
    assert (PACKAGE / "transform" / "records.py").is_file()
    assert not (PACKAGE / "load" / "stage.py").exists() and not (PACKAGE / "load" / "parse.py").exists()


# The load modules an engine may use: the interface a run hands it (state), the staging tables it fills (staging),
# the counts it sets (stats) and the spool its rejects go to (rejects). Never the run itself or its merge.
ENGINE_MAY_USE = {
    "musicstream.load.state",
    "musicstream.load.staging",
    "musicstream.load.stats",
    "musicstream.load.rejects",
}


def test_no_engine_reaches_into_the_run() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in sorted((PACKAGE / "engines").rglob("*.py"))
        for module in sorted(imported(path))
        if module.startswith("musicstream.load.") and ".".join(module.split(".")[:3]) not in ENGINE_MAY_USE
    ]
    assert wrong == []


# The top-level modules, by what they may import: the foundation imports no other part of musicstream (but the
# foundation's own errors); the operator's modules (what runs between loads) use the database and the rules on one
# record (transform, below it: `check` judges stored names by rule 6's one definition), never a run, an engine, a
# report or the command line.
FOUNDATION = {"errors", "rules", "faults", "memory", "config"}
OPERATOR = {"checks", "status", "ops", "queries", "export"}
# The services: they run loads through the library's door (api), over time; never a report or the command line.
SERVICE = {"watch"}


@pytest.mark.parametrize("module", sorted(SERVICE))
def test_services_run_loads_through_the_door(module: str) -> None:
    used = imported(PACKAGE / f"{module}.py")
    assert {layer_of(name) for name in used} & {"report", "cli"} == set()
    assert not {name for name in used if name.startswith(("musicstream.load.pipeline", "musicstream.load.merge"))}


@pytest.mark.parametrize("module", sorted(FOUNDATION | OPERATOR))
def test_top_level_modules_keep_to_their_layer(module: str) -> None:
    allowed = FOUNDATION if module in FOUNDATION else {*FOUNDATION, "db", "transform"}
    used = {layer_of(name) for name in imported(PACKAGE / f"{module}.py")}
    assert used - allowed - {module} == set()


def test_every_top_level_module_has_a_layer() -> None:
    """A new top-level module is placed in a layer above (or is the package's door: __init__, __main__, api, the
    command line is a package)."""
    doors = {"__init__", "__main__", "api"}
    found = {p.stem for p in PACKAGE.glob("*.py")}
    assert found - FOUNDATION - OPERATOR - SERVICE - doors == set()
