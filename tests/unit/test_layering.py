"""The direction of imports between the four packages and inside algotcha/ (STYLE.md §1)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
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


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source names in an import, at any depth (a function's too), relative
    ones resolved against `package`; `from a import b` names both `a` and `a.b`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *filter(None, [node.module])])
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return found


def imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).parent.parts)
    return imported_modules(path.read_text(), package)


def names(modules: set[str], prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in modules)


@dataclass(frozen=True)
class Rule:
    """The modules below `where` (a folder or a file) import nothing under `forbidden`."""

    where: str
    forbidden: tuple[str, ...]
    why: str
    exempt: tuple[str, ...] = ()


#: routes -> services -> db, with notify below services: the direction of imports inside
#: algotcha/ (STYLE.md section 1, issue 13).
INNER_RULES = (
    Rule(
        "algotcha/routes",
        ("algotcha.db", "psycopg"),
        "a route reaches the database only through services (STYLE.md section 3-4)",
    ),
    Rule(
        "algotcha/services",
        ("algotcha.routes", "algotcha.schemas", "starlette"),
        "use cases sit below the HTTP boundary: routes and schemas call them, never the reverse",
    ),
    Rule(
        "algotcha/notify",
        ("algotcha.services", "algotcha.routes", "algotcha.db"),
        "notify is transports and text below services: it names the fields it reads (Protocols)",
    ),
    Rule(
        "algotcha/db",
        ("algotcha.services", "algotcha.routes", "algotcha.notify", "algotcha.schemas"),
        "db is the bottom layer: SQL and rows only",
    ),
    Rule(
        "actors",
        ("algotcha.schemas",),
        "actors read stored payloads through engine_requests, not through the HTTP boundary",
    ),
    Rule(
        "algotcha/models.py",
        (
            *("algotcha.db", "algotcha.services", "algotcha.routes", "algotcha.schemas"),
            *("engine", "psycopg", "httpx", "starlette"),
        ),
        "the models are the contract alone: the CLI loads them, and the document is made of them",
    ),
    Rule(
        "algotcha/vocabulary.py",
        ("algotcha", "engine", "psycopg", "pydantic", "starlette"),
        "the shared words import nothing: db, services and models all stand on them",
    ),
    Rule(
        "algotcha/engine_requests.py",
        ("algotcha.db", "algotcha.services", "algotcha.routes", "algotcha.schemas", "starlette"),
        "models -> engine requests is no use case and no HTTP: workers and the CLI use it too",
    ),
)


def breaches(rule: Rule) -> set[tuple[str, str]]:
    where = ROOT / rule.where
    paths = [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))
    found = set()
    for path in paths:
        name = str(path.relative_to(ROOT))
        if name in rule.exempt:
            continue
        modules = imports_of(path)
        found |= {(name, prefix) for prefix in rule.forbidden if names(modules, prefix)}
    return found


@pytest.mark.parametrize("rule", INNER_RULES, ids=lambda rule: rule.where)
def test_inner_layers_import_only_downwards(rule: Rule) -> None:
    wrong = breaches(rule)
    assert not wrong, f"{rule.why}: " + ", ".join(f"{p} imports {m}" for p, m in sorted(wrong))


@pytest.mark.parametrize(
    "source",
    [
        "from algotcha.services.jobs import QueuedJob",
        "from algotcha.services import jobs",
        "import algotcha.services.jobs as jobs",
        "from ..services import jobs",
        "from .. import services",
        "def later():\n    from algotcha.services import jobs",
    ],
)
def test_every_way_of_writing_an_import_is_seen(source: str) -> None:
    assert names(imported_modules(source, "algotcha.notify"), "algotcha.services")


def test_a_name_that_only_starts_like_a_forbidden_module_is_not_a_breach() -> None:
    assert not names(imported_modules("import algotcha.dbx", "algotcha"), "algotcha.db")


def test_a_backtest_process_loads_only_the_engine() -> None:
    """actors/execution.py is what a backtest process imports: the worker parses the stored
    payload and sends an engine request, so the child needs nothing of algotcha."""
    assert imported_packages(ROOT / "actors" / "execution.py") == {"engine"}


def test_services_start_no_processes() -> None:
    """Process supervision is the worker's business (actors/), not a use case's."""
    for path in sorted((ROOT / "algotcha" / "services").glob("*.py")):
        wrong = {"multiprocessing", "subprocess"} & imports_of(path)
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
