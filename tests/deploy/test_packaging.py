"""The locks pin what pyproject declares, the image ships what the tests run, pgserver stays out."""

from __future__ import annotations

import functools
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
SERVICE_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
MAKEFILE = ROOT / "Makefile"
#: In no production install: an embedded database server for laptops (the `embedded` extra).
EMBEDDED_ONLY = "pgserver"


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]

    @property
    def version(self) -> Version:
        (specifier,) = self.requirement.specifier
        assert specifier.operator == "==", self.requirement
        return Version(specifier.version)


@functools.cache
def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def declared(*extras: str) -> list[Requirement]:
    """The dependencies pyproject declares, with those of the named extras."""
    project = pyproject()["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@functools.cache
def pins(lock: Path) -> dict[str, Pin]:
    """The pins of a lock that apply on this interpreter and platform (a universal lock
    holds one line per fork, e.g. numpy for Python 3.11 and for 3.12 on)."""
    result: dict[str, Pin] = {}
    for entry in lock.read_text().replace("\\\n", " ").splitlines():
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        requirement, *options = entry.split(" --hash=")
        pin = Pin(Requirement(requirement.strip()), tuple(o.strip() for o in options))
        marker = pin.requirement.marker
        if marker is None or marker.evaluate():
            name = canonicalize_name(pin.requirement.name)
            assert name not in result, f"{lock.name} pins {name} twice for this platform"
            result[name] = pin
    return result


def test_pgserver_is_an_extra_not_a_dependency() -> None:
    names = {canonicalize_name(r.name) for r in declared()}
    assert EMBEDDED_ONLY not in names
    embedded = pyproject()["project"]["optional-dependencies"]["embedded"]
    assert [canonicalize_name(Requirement(r).name) for r in embedded] == [EMBEDDED_ONLY]


def test_uvloop_is_only_asked_for_where_it_builds() -> None:
    (uvloop,) = [r for r in declared() if r.name == "uvloop"]
    assert uvloop.marker is not None
    assert uvloop.marker.evaluate({"sys_platform": "linux"})
    assert not uvloop.marker.evaluate({"sys_platform": "win32"})


@pytest.mark.parametrize(
    ("lock", "extras"),
    [(SERVICE_LOCK, ()), (DEV_LOCK, ("dev", "embedded"))],
    ids=["service", "dev"],
)
def test_the_lock_pins_every_declared_dependency_within_its_bounds(
    lock: Path, extras: tuple[str, ...]
) -> None:
    locked = pins(lock)
    for requirement in declared(*extras):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pin = locked.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{lock.name} misses {requirement.name}: run make lock"
        assert requirement.specifier.contains(pin.version), f"{lock.name}: {pin.requirement}"


@pytest.mark.parametrize("lock", [SERVICE_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_pin_carries_its_hashes(lock: Path) -> None:
    for name, pin in pins(lock).items():
        assert pin.hashes and all(h.startswith("sha256:") for h in pin.hashes), name


def test_the_service_lock_holds_no_test_tool_and_no_embedded_server() -> None:
    service = set(pins(SERVICE_LOCK))
    assert EMBEDDED_ONLY not in service
    assert not {"pytest", "mypy", "ruff", "schemathesis", "playwright"} & service


def test_the_image_ships_the_versions_the_tests_run_with() -> None:
    dev = pins(DEV_LOCK)
    differ = {
        name: (str(pin.version), str(dev[name].version))
        for name, pin in pins(SERVICE_LOCK).items()
        if name not in dev or dev[name].version != pin.version
    }
    assert not differ, f"requirements.lock vs requirements-dev.lock: {differ}"


def test_runtime_lower_bounds_are_the_releases_the_tests_run_with() -> None:
    """A bound below the tested release would let `pip install .` keep an untested version."""
    dev = pins(DEV_LOCK)
    stale = {}
    for requirement in declared():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        tested = dev[canonicalize_name(requirement.name)].version
        floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        assert floors, f"{requirement} declares no lower bound"
        if (*floors[0].release, 0)[:2] != tested.release[:2]:
            stale[requirement.name] = f">={floors[0]} but the tests run {tested}"
    assert not stale, f"raise these bounds in pyproject.toml: {stale}"


def make_recipe(target: str) -> list[list[str]]:
    """The commands of one Makefile rule, each split into words."""
    lines = MAKEFILE.read_text().replace("\\\n", " ").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(shlex.split(line))
    return recipe


def test_the_test_venv_installs_the_dev_lock_with_hashes_and_the_project_without_deps() -> None:
    rule = next(line for line in MAKEFILE.read_text().splitlines() if line.startswith("$(STAMP):"))
    assert "requirements-dev.lock" in rule.split(), "the venv is not rebuilt when the lock moves"
    recipe = make_recipe("$(STAMP)")
    installs = [words for words in recipe if "install" in words]
    assert any(
        {"--require-hashes", "--no-deps", "-r", "requirements-dev.lock"} <= set(words)
        for words in installs
    ), installs
    project = [words for words in installs if "-e" in words or "." in words]
    assert project and all("--no-deps" in words for words in project), project
    assert not any("[" in word for words in installs for word in words), "extras bypass the lock"
