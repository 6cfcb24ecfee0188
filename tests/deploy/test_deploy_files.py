"""The deployment files run nothing as root, hold no secret, and agree with the code's settings."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from algotcha.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
RABBITMQ_CONF = DEPLOY / "rabbitmq" / "rabbitmq.conf"
ENABLED_PLUGINS = DEPLOY / "rabbitmq" / "enabled_plugins"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
SYSTEMD = DEPLOY / "systemd"
GUIDE = DEPLOY / "README.md"
WORKER_MODULE = ROOT / "actors" / "worker.py"

#: unit file -> the `algotcha` subcommand it runs
UNITS = {
    "algotcha-api.service": "api",
    "algotcha-worker.service": "worker",
    "algotcha-worker@.service": "worker",
    "algotcha-notifier.service": "notifier",
    "algotcha-telegram-poll.service": "telegram-poll",
    "algotcha-data-update.service": "data",
}
#: timer -> the service it starts
TIMERS = {"algotcha-data-update.timer": "algotcha-data-update.service"}
REQUIRED_SERVICES = {"postgres", "rabbitmq", "api", "worker", "notifier", "prometheus", "grafana"}
APP_SERVICES = {"api", "worker", "notifier"}
PORTS = {"8000", "9191", "9192", "5672", "15672", "15692", "9090", "3000"}

#: A name that holds a secret (password, token, key) when it has a value.
SECRET_NAME = re.compile(r"(?i)pass(word|wd)?|secret|token|api_?key|private_?key|credential")
#: Telegram bot token: bot id, colon, 35 characters (reliability.md section 7).
TELEGRAM_TOKEN = re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])")
#: Gmail app password: 16 lower-case letters, shown as four groups of four, next to a word that
#: says what it is (bare four-letter words in prose are not flagged).
GMAIL_CONTEXT = re.compile(r"(?i)pass(word|wd)?|gmail|smtp")
GMAIL_APP_PASSWORD = re.compile(
    r"""(?:[=:]\s*|["'`])(?:[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}|[a-z]{16})(?![A-Za-z0-9_])"""
)
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
#: Hand-back time when the worker module does not name it (DESIGN.md: about 30 s).
DEFAULT_HAND_BACK_S = 30.0


# ---------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped, as Docker reads them."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starting with its FROM)."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def assignments(instruction: Instruction) -> dict[str, str]:
    """The variables an ENV or ARG instruction sets, with their values ("" when none)."""
    tokens = shlex.split(instruction.args)
    if instruction.keyword == "ENV" and tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}  # legacy `ENV NAME value`
    result = {}
    for token in tokens:
        name, _, value = token.partition("=")
        result[name] = value
    return result


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """systemd unit sections as ordered (key, value) lists: keys such as Environment= repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a unit file line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def unit_values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [value for k, value in section if k == key]


def unit_last(section: list[tuple[str, str]], key: str) -> str | None:
    found = unit_values(section, key)
    return found[-1] if found else None


def unit_environment(section: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in unit_values(section, "Environment"):
        for token in shlex.split(value):
            name, _, setting = token.partition("=")
            env[name] = setting
    return env


def seconds(duration: str) -> float:
    """A systemd or Compose duration ("90s", "1min 30s", "1m30s", "90") in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    text = duration.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|hr|s|m|h)", text)
    assert parts, f"cannot read the duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def hand_back_s() -> float:
    """How long the worker may take to hand its job back on SIGTERM (actors/worker.py)."""
    if WORKER_MODULE.exists():
        for node in ast.parse(WORKER_MODULE.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and any(
                    isinstance(t, ast.Name) and t.id == "SHUTDOWN_TIMEOUT_MS" for t in node.targets
                )
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, int | float)
            ):
                return float(node.value.value) / 1000
    return DEFAULT_HAND_BACK_S


def git_ignored(path: Path) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(path.relative_to(ROOT))], cwd=ROOT, check=False
    )
    assert result.returncode in (0, 1), "git check-ignore failed"
    return result.returncode == 0


def is_reference(value: str) -> bool:
    """A Compose value that only interpolates a variable: `${NAME}`, `${NAME:?message}`, ..."""
    return re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?\-+][^}]*)?\}", value) is not None


def secret_findings(text: str) -> list[str]:
    """Token-shaped strings in `text` (Telegram bot tokens, Gmail app passwords, private keys)."""
    findings = [f"Telegram token shape at {m.start()}" for m in TELEGRAM_TOKEN.finditer(text)]
    for number, line in enumerate(text.splitlines(), 1):
        if GMAIL_CONTEXT.search(line) and GMAIL_APP_PASSWORD.search(line):
            findings.append(f"Gmail app password shape on line {number}")
    findings += [f"private key at {m.start()}" for m in PRIVATE_KEY.finditer(text)]
    return findings


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.M | re.S)


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that run our image (built from this repository)."""
    return {name: spec for name, spec in services.items() if "build" in spec}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def bind_sources(spec: dict[str, Any]) -> list[str]:
    sources = []
    for volume in spec.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                sources.append(volume["source"])
        elif volume.startswith((".", "/", "~")):
            sources.append(volume.split(":")[0])
    return sources


def mount_target(spec: dict[str, Any], source: str) -> str:
    for volume in spec.get("volumes", []):
        if isinstance(volume, str) and volume.split(":")[0] == source:
            return str(volume.split(":")[1])
    raise AssertionError(f"{source} is not mounted")


# ---------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_multi_stage(dockerfile: list[Instruction]) -> None:
    assert len(stages(dockerfile)) >= 2


def test_dockerfile_runtime_is_python_311_slim(dockerfile: list[Instruction]) -> None:
    global_args: dict[str, str] = {}
    for instruction in dockerfile:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            global_args.update(assignments(instruction))
    image = stages(dockerfile)[-1][0].args.split()[0]
    image = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), ""), image)
    assert image.startswith("python:3.11-slim"), image


def test_dockerfile_final_stage_runs_as_a_non_root_user(dockerfile: list[Instruction]) -> None:
    users = [i.args for i in stages(dockerfile)[-1] if i.keyword == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    user = users[-1].split(":")[0].strip()
    assert user not in {"0", "root", ""}, user


def test_dockerfile_user_has_the_uid_compose_expects_and_no_shell(
    dockerfile: list[Instruction],
) -> None:
    runs = " ".join(i.args for i in stages(dockerfile)[-1] if i.keyword == "RUN")
    assert "--uid 10001" in runs
    assert "/usr/sbin/nologin" in runs


def test_dockerfile_has_a_healthcheck_without_curl(dockerfile: list[Instruction]) -> None:
    checks = [i.args for i in stages(dockerfile)[-1] if i.keyword == "HEALTHCHECK"]
    assert checks, "no HEALTHCHECK in the final stage"
    assert "NONE" not in checks[-1].split()
    assert "urllib" in checks[-1] and "curl" not in checks[-1]


def test_dockerfile_bakes_in_no_secret(dockerfile: list[Instruction]) -> None:
    for instruction in dockerfile:
        if instruction.keyword in {"ENV", "ARG"}:
            for name, value in assignments(instruction).items():
                assert not (SECRET_NAME.search(name) and value), f"{instruction.keyword} {name}"


def test_dockerfile_sets_python_runtime_environment(dockerfile: list[Instruction]) -> None:
    env: dict[str, str] = {}
    for instruction in stages(dockerfile)[-1]:
        if instruction.keyword == "ENV":
            env.update(assignments(instruction))
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert "DATA_DIR" in env
    keywords = {i.keyword for i in stages(dockerfile)[-1]}
    assert {"WORKDIR", "VOLUME"} <= keywords


def test_dockerfile_entrypoint_is_algotcha_and_defaults_to_the_api(
    dockerfile: list[Instruction],
) -> None:
    final = stages(dockerfile)[-1]
    entrypoint = [json.loads(i.args) for i in final if i.keyword == "ENTRYPOINT"]
    command = [json.loads(i.args) for i in final if i.keyword == "CMD"]
    assert entrypoint and entrypoint[-1] == ["algotcha"]
    assert command and command[-1][0] == "api"
    assert "0.0.0.0" in command[-1] and "8000" in command[-1]


def test_dockerfile_copies_only_files_that_exist_and_the_context_allows(
    dockerfile: list[Instruction],
) -> None:
    allowed = {
        line.strip()[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip().startswith("!")
    }
    for instruction in dockerfile:
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        tokens = [t for t in shlex.split(instruction.args) if not t.startswith("--")]
        if "--from=" in instruction.args:
            continue
        for source in tokens[:-1]:
            assert instruction.keyword == "COPY" or "://" not in source, "ADD of a URL"
            if any(c in source for c in "*?["):
                continue  # an optional file (README.md*)
            assert (ROOT / source).exists(), f"COPY {source}: missing"
            assert source.rstrip("/") in allowed, f"COPY {source}: excluded by .dockerignore"


def test_dockerfile_installs_the_locked_versions_and_the_wheel_without_dependencies(
    dockerfile: list[Instruction],
) -> None:
    """requirements.lock decides every version in the image; the wheel adds only our code."""
    builder = stages(dockerfile)[0]
    copied = [shlex.split(i.args)[:-1] for i in builder if i.keyword == "COPY"]
    assert ["requirements.lock"] in copied, copied
    commands = [
        shlex.split(command)
        for i in builder
        if i.keyword == "RUN"
        for command in i.args.split("&&")
    ]
    installs = [words for words in commands if words[1:3] == ["install", "--require-hashes"]]
    assert installs, "the builder does not install from a lock with hashes"
    assert {"--no-deps", "--only-binary=:all:", "-r", "requirements.lock"} <= set(installs[0])
    wheel = [words for words in commands if any(w.startswith("/wheels/") for w in words)]
    assert wheel and "--no-deps" in wheel[0], wheel
    assert any(words[1:] == ["check"] for words in commands), "no pip check after the install"


def test_dockerignore_is_an_allow_list_that_never_lets_secrets_in() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[0] == "*", "start from nothing, then allow what the image needs"
    for line in lines:
        if line.startswith("!"):
            assert not re.search(r"\.env|secret|\.git|deploy|\.pem", line), line
    assert "**/.env" in lines and "**/secrets" in lines


# ---------------------------------------------------------------------------------- compose


def test_compose_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert REQUIRED_SERVICES <= set(services)
    assert set(app_services(services)) >= APP_SERVICES


def test_compose_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in services.items():
        check = spec.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), name


def test_compose_app_services_are_locked_down(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in app_services(services).items():
        user = str(spec.get("user", "")).split(":")[0]
        assert user and user not in {"0", "root"}, f"{name}: user {user!r}"
        assert spec.get("read_only") is True, name
        assert "ALL" in spec.get("cap_drop", []), name
        assert "no-new-privileges:true" in spec.get("security_opt", []), name
        assert any(str(t).split(":")[0] == "/tmp" for t in spec.get("tmpfs", [])), name
        assert not spec.get("privileged"), name
        assert not spec.get("cap_add"), name


def test_compose_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert worker["command"][0] == "worker"


def test_compose_worker_has_a_memory_limit(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    limit = worker.get("mem_limit") or worker["deploy"]["resources"]["limits"].get("memory")
    assert limit


def test_compose_worker_gets_time_to_hand_its_job_back(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(worker["stop_grace_period"]) >= 2 * hand_back_s()
    assert worker.get("init") is True, "tini forwards SIGTERM to the worker only"


def test_compose_worker_is_only_on_internal_networks(compose: dict[str, Any]) -> None:
    networks = compose["networks"]
    worker_networks = compose["services"]["worker"]["networks"]
    assert worker_networks
    for network in worker_networks:
        assert (networks.get(network) or {}).get("internal") is True, network


def test_compose_api_migrates_and_waits_for_healthy_dependencies(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    assert api["command"][0] == "api" and "--migrate" in api["command"]
    for name, spec in app_services(services).items():
        depends = spec.get("depends_on", {})
        for dependency in ("postgres", "rabbitmq"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)


def test_compose_postgres_is_checked_with_pg_isready(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert re.match(r"postgres:1[56]", postgres["image"])
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(not str(v).startswith((".", "/")) for v in postgres["volumes"]), "no data volume"


def test_compose_publishes_ports_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in services.items():
        for port in spec.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert str(port).startswith("127.0.0.1:"), (name, port)
    published = {str(p).split(":")[1] for p in services["rabbitmq"]["ports"]}
    assert published == {"5672", "15672", "15692"}


def test_compose_rabbitmq_uses_the_repository_config(services: dict[str, dict[str, Any]]) -> None:
    rabbitmq = services["rabbitmq"]
    assert "management" in rabbitmq["image"]
    mounts = {mount_target(rabbitmq, source) for source in bind_sources(rabbitmq)}
    assert {"/etc/rabbitmq/rabbitmq.conf", "/etc/rabbitmq/enabled_plugins"} <= mounts
    assert rabbitmq.get("hostname"), "a fixed hostname keeps the node's data across re-creation"


def test_compose_environment_holds_no_secret_value(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in services.items():
        for key, value in environment(spec).items():
            if SECRET_NAME.search(key):
                ok = (
                    value == ""
                    or is_reference(value)
                    or (key.endswith("_FILE") and value.startswith("/run/secrets/"))
                )
                assert ok, f"{name}: {key} has an inline value"
            credentials = re.search(r"://[^/\s:@]+:([^@\s]+)@", value)
            if credentials:
                assert is_reference(credentials.group(1)), f"{name}: {key} has a password"


def test_compose_secret_files_are_mounted_where_their_variables_point(
    compose: dict[str, Any],
) -> None:
    declared = compose["secrets"]
    for name, spec in compose["services"].items():
        mounted = {s if isinstance(s, str) else s["source"] for s in spec.get("secrets", [])}
        assert mounted <= set(declared), name
        for key, value in environment(spec).items():
            if value.startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in mounted, f"{name}: {key}"


def test_compose_secret_files_and_env_file_are_git_ignored(compose: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        path = (DEPLOY / secret["file"]).resolve()
        assert git_ignored(path), f"secret {name}: {secret['file']} could be committed"
    assert git_ignored(DEPLOY / ".env")
    assert not git_ignored(ENV_EXAMPLE)


def test_compose_bind_mounts_exist_in_the_repository(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in services.items():
        for source in bind_sources(spec):
            path = (DEPLOY / source).resolve()
            assert path.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
            assert path.exists(), f"{name}: {source} does not exist"


def test_compose_prometheus_loads_the_monitoring_config(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    config = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = config.partition("=")[2]
    source = "../monitoring/prometheus"
    target = mount_target(prometheus, source)
    assert config_path.startswith(target + "/")
    assert (DEPLOY / source / config_path.removeprefix(target + "/")).is_file()


def test_compose_grafana_is_provisioned_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert mount_target(grafana, "./grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_target = mount_target(grafana, "../monitoring/grafana")

    datasources = yaml.safe_load(
        (GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert re.fullmatch(r"http://prometheus:9090/?", source["url"])
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "algotcha.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == dashboards_target
    assert list((ROOT / "monitoring" / "grafana").glob("*.json"))


def test_compose_variables_are_listed_in_env_example() -> None:
    text = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in COMPOSE.read_text().splitlines())
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M))
    assert used <= listed, sorted(used - listed)


# ---------------------------------------------------------------------------------- .env.example


def test_env_example_has_names_but_no_secret_values() -> None:
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    assert found["POSTGRES_PASSWORD"] == "" and found["RABBITMQ_PASSWORD"] == ""
    for name, value in found.items():
        if SECRET_NAME.search(name):
            assert value == "" or value.startswith("/run/secrets/"), name


# ---------------------------------------------------------------------------------- systemd


def test_systemd_units_are_the_expected_set() -> None:
    assert {path.name for path in SYSTEMD.glob("*.service")} == set(UNITS)
    assert {path.name for path in SYSTEMD.glob("*.timer")} == set(TIMERS)


@pytest.mark.parametrize("timer", sorted(TIMERS))
def test_systemd_timer_runs_its_service_daily_and_catches_up(timer: str) -> None:
    sections = parse_unit((SYSTEMD / timer).read_text())
    assert unit_last(sections["Timer"], "Unit") == TIMERS[timer]
    assert unit_last(sections["Timer"], "OnCalendar")
    assert unit_last(sections["Timer"], "Persistent") == "yes"
    assert unit_last(sections["Install"], "WantedBy") == "timers.target"


def test_systemd_data_update_is_a_oneshot_of_algotcha_data_update() -> None:
    service = parse_unit((SYSTEMD / "algotcha-data-update.service").read_text())["Service"]
    assert unit_last(service, "Type") == "oneshot"
    (exec_start,) = unit_values(service, "ExecStart")
    assert shlex.split(exec_start)[1:] == ["data", "update"]
    assert unit_environment(service)["DATA_DIR"] == "/var/lib/algotcha/data"
    assert unit_last(service, "ReadWritePaths") == "/var/lib/algotcha"


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_runs_algotcha_unprivileged_and_hardened(unit: str) -> None:
    sections = parse_unit((SYSTEMD / unit).read_text())
    service = sections["Service"]
    user = unit_last(service, "User")
    assert (user and user not in {"root", "0"}) or unit_last(service, "DynamicUser") == "yes"
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "CapabilityBoundingSet": "",
        "SystemCallFilter": "@system-service",
        "StandardOutput": "journal",
    }
    for key, value in expected.items():
        assert unit_last(service, key) == value, f"{unit}: {key}"
    assert unit_last(service, "ProtectHome") in {"yes", "read-only", "tmpfs"}
    assert unit_last(service, "Restart") in {"on-failure", "always"}
    assert set((unit_last(service, "RestrictAddressFamilies") or "").split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
    }
    assert unit_last(service, "MemoryDenyWriteExecute") in {None, "no"}, "breaks numpy"
    assert "Install" in sections


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_execstart_is_the_algotcha_command(unit: str) -> None:
    service = parse_unit((SYSTEMD / unit).read_text())["Service"]
    (exec_start,) = unit_values(service, "ExecStart")
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "algotcha" and argv[0].startswith("/")
    assert argv[1] == UNITS[unit]
    assert not {"sudo", "su", "sh", "bash"} & set(argv)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_takes_secrets_as_credentials(unit: str) -> None:
    service = parse_unit((SYSTEMD / unit).read_text())["Service"]
    credentials = dict(v.split(":", 1) for v in unit_values(service, "LoadCredential"))
    for source in credentials.values():
        assert source.startswith("/etc/algotcha/credentials/"), source
    for name, value in unit_environment(service).items():
        if SECRET_NAME.search(name):
            assert name.endswith("_FILE") and value.startswith("%d/"), f"{unit}: {name}"
            assert value.removeprefix("%d/") in credentials, f"{unit}: {name} is not loaded"
    for path in unit_values(service, "EnvironmentFile"):
        assert path.lstrip("-").startswith("/etc/algotcha/"), path


@pytest.mark.parametrize("unit", ["algotcha-worker.service", "algotcha-worker@.service"])
def test_systemd_worker_stops_gracefully_within_its_memory_cap(unit: str) -> None:
    service = parse_unit((SYSTEMD / unit).read_text())["Service"]
    assert unit_last(service, "KillSignal") == "SIGTERM"
    assert unit_last(service, "KillMode") == "mixed", "SIGTERM to the worker, not its child"
    assert seconds(unit_last(service, "TimeoutStopSec") or "90") >= 2 * hand_back_s()
    assert unit_last(service, "MemoryMax")
    assert unit_last(service, "OOMPolicy") == "continue"
    assert unit_last(service, "ReadWritePaths") == "/var/lib/algotcha"


def test_systemd_worker_template_takes_its_metrics_port_from_the_instance() -> None:
    service = parse_unit((SYSTEMD / "algotcha-worker@.service").read_text())["Service"]
    assert unit_environment(service)["METRICS_PORT"] == "%i"


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # tests/services.sh installs systemd-analyze (Debian's systemd) where it is missing.
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: run tests/services.sh"
    # An offline root with the distribution's units, ours, and a stand-in for the algotcha binary.
    system = Path("/usr/lib/systemd/system")
    shutil.copytree(system, tmp_path / "usr/lib/systemd/system", symlinks=True)
    units_dir = tmp_path / "etc/systemd/system"
    units_dir.mkdir(parents=True)
    for unit in [*UNITS, *TIMERS]:
        shutil.copy(SYSTEMD / unit, units_dir / unit)
    binary = tmp_path / "opt/algotcha/venv/bin/algotcha"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    names = [u.replace("@.", "@9191.") for u in sorted(UNITS)] + sorted(TIMERS)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={tmp_path}", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


# ---------------------------------------------------------------------------------- RabbitMQ


def rabbitmq_settings() -> dict[str, str]:
    settings = {}
    for line in RABBITMQ_CONF.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, sep, value = line.partition("=")
            assert sep, f"not a rabbitmq.conf line: {line!r}"
            settings[key.strip()] = value.strip()
    return settings


def test_rabbitmq_consumer_timeout_exceeds_the_backtest_time_limit() -> None:
    timeout_ms = int(rabbitmq_settings()["consumer_timeout"])
    limit_s = Settings().backtest_time_limit_s
    assert timeout_ms > limit_s * 1000
    # and keeps a margin for the hand-back on shutdown and the check's own 1-minute granularity
    assert timeout_ms >= (limit_s + hand_back_s() + 60) * 1000


def test_rabbitmq_config_exposes_management_and_per_queue_metrics() -> None:
    settings = rabbitmq_settings()
    assert settings["management.tcp.port"] == "15672"
    assert settings["prometheus.tcp.port"] == "15692"
    assert settings["prometheus.return_per_object_metrics"] == "true"
    assert settings["listeners.tcp.default"] == "5672"
    assert settings["loopback_users.guest"] == "true"
    assert not any(k.startswith(("default_pass", "default_user")) for k in settings)


def test_rabbitmq_enabled_plugins_has_management_and_prometheus() -> None:
    match = re.fullmatch(r"\s*\[(.*)\]\.\s*", ENABLED_PLUGINS.read_text(), flags=re.S)
    assert match, "enabled_plugins must be an Erlang list ending with a dot"
    plugins = {p.strip() for p in match.group(1).split(",")}
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= plugins


# ---------------------------------------------------------------------------------- guide


def test_guide_mentions_every_service_unit_and_port(services: dict[str, dict[str, Any]]) -> None:
    guide = GUIDE.read_text()
    for name in services:
        assert re.search(rf"\b{re.escape(name)}\b", guide), name
    for unit in [*UNITS, *TIMERS]:
        assert unit in guide, unit
    for port in PORTS:
        assert re.search(rf"\b{port}\b", guide), port


def test_guide_keeps_the_monitoring_queries_verbatim() -> None:
    guide = GUIDE.read_text()
    assert (
        'SELECT id, "userId", "strategyName", status, "createdAt", "startedAt", "completedAt" '
        'FROM "BacktestQueue" ORDER BY "createdAt" DESC LIMIT 20;'
    ) in guide
    assert (
        "SELECT * FROM \"BacktestQueue\" WHERE status IN ('queued', 'processing') "
        'ORDER BY "createdAt" ASC;'
    ) in guide


def test_guide_tells_how_to_revoke_the_leaked_credentials() -> None:
    guide = GUIDE.read_text()
    assert "BotFather" in guide and "/revoke" in guide
    assert re.search(r"delete the leaked app\s+password", guide)


def test_guide_commands_never_use_root_logins_or_credentials_on_the_command_line() -> None:
    for block in code_blocks(GUIDE.read_text()):
        for line in block.splitlines():
            assert not re.search(r"\bssh\s+root@|\bUser=root\b", line), line
            # nothing world-writable (chmod 777, install -m 0666, ...)
            assert not re.search(r"(chmod\s+|install\b.*-m\s*)[0-7]*[2367]\b", line), line
            assert not re.match(r"\s*(sudo\s+)?tail\s+-f", line), line
            assert "psql $DATABASE_URL" not in line, "quote it, and keep the password out"
            assert not re.search(r"psql\s+\S*://[^\s/:@]+:[^\s@]+@", line), line


def test_guide_contains_no_token_shaped_string() -> None:
    assert secret_findings(GUIDE.read_text()) == []


# ---------------------------------------------------------------------------------- secret scan


def test_secret_patterns_catch_token_shapes() -> None:
    token = "1234567890:" + "Ab_-" * 8 + "xyz"
    assert secret_findings(f"TELEGRAM_BOT_TOKEN={token}")
    # Built at run time, so this file itself holds no such shape.
    groups = ["abcd", "efgh", "ijkl", "mnop"]
    assert secret_findings("GMAIL_APP_PASSWORD - `" + " ".join(groups) + "`")
    assert secret_findings('smtp_password = "' + "".join(groups) + '"')
    assert not secret_findings("SMTP host from your mail server, then the password file")
    assert not secret_findings("SMTP_PASSWORD_FILE=/run/secrets/smtp_password")


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_no_repository_file_holds_a_token_shaped_secret() -> None:
    files = repository_files()
    assert DOCKERFILE in files and COMPOSE in files
    problems = []
    for path in files:
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(ROOT)}: {f}" for f in secret_findings(text)]
    assert problems == []
