"""The direction of imports between the four packages (STYLE.md §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"algotcha", "actors", "engine", "monitoring"}
ALLOWED = {
    "engine": set(),
    "monitoring": set(),
    "algotcha": {"engine", "monitoring"},
    "actors": {"algotcha", "engine", "monitoring"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_layering_allows(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name == "cli.py" and package == "algotcha":
            continue  # the CLI starts workers, so it may import actors
        wrong = imported_packages(path) - ALLOWED[package] - {package}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


@pytest.mark.parametrize(
    "path", sorted((ROOT / "algotcha" / "routes").glob("*.py")), ids=lambda p: p.name
)
def test_routes_reach_the_database_only_through_services(path: Path) -> None:
    """routes -> services -> db: a route never imports algotcha.db or psycopg (STYLE.md §3-4)."""
    wrong = {name for name in imported_modules(path) if name.startswith(("algotcha.db", "psycopg"))}
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_a_backtest_process_loads_only_the_engine() -> None:
    """actors/execution.py is what a backtest process imports: the worker parses the stored
    payload and sends an engine request, so the child needs nothing of algotcha."""
    assert imported_packages(ROOT / "actors" / "execution.py") == {"engine"}


def test_services_start_no_processes() -> None:
    """Process supervision is the worker's business (actors/), not a use case's."""
    for path in sorted((ROOT / "algotcha" / "services").glob("*.py")):
        wrong = {"multiprocessing", "subprocess"} & imported_modules(path)
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
