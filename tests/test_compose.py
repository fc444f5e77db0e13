"""docker-compose.yml and docker/Dockerfile are consistent (no Docker engine needed):
every service is wired to healthy dependencies, the detection cluster's processes agree on
their addresses, volumes are declared and images are pinned."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphsentry.config import Topics

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_TOPICS = {name for name in Topics().model_dump().values() if name}
"""Every topic the default configuration reads or writes."""
COMPACTED = {Topics().alerts, Topics().alerts_json}
APP_SERVICES = ("bridge", "detect-0", "detect-1")
APP_ENV = {"KAFKA_BOOTSTRAP", "REDIS_URL", "GRAPHSENTRY_CONFIG"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _option(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} must appear once in {argv}"
    return argv[argv.index(flag) + 1]


def _detect_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if re.fullmatch(r"detect-\d+", name)}


def test_expected_services_are_present(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka", "redis", "topics", "recovery-init", *APP_SERVICES}
    assert expected <= set(services)


@pytest.mark.parametrize("name", ["kafka", "redis"])
def test_infrastructure_has_a_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert len(" ".join(check["test"][1:])) > 0
    assert int(check["retries"]) >= 3


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["redis"]["image"].startswith("redis:7")


def test_kafka_runs_kraft_with_single_node_settings(services: dict[str, dict[str, Any]]) -> None:
    env = services["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert len(env["CLUSTER_ID"]) == 22  # base64 of a 16-byte UUID, unpadded
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert int(env[key]) == 1
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= 2 * 1024 * 1024


def test_topics_job_creates_every_pipeline_topic(services: dict[str, dict[str, Any]]) -> None:
    """The job runs ``graphsentry topics create`` with the services' configuration, whose plan
    holds every pipeline topic, the alert topics (only they) log-compacted."""
    from graphsentry.commands.topics import plan
    from graphsentry.config import load_config

    topics = services["topics"]
    assert _argv(topics) == ["graphsentry", "topics", "create"]
    assert topics["restart"] == "no"
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    env = {k: str(v) for k, v in topics["environment"].items()}
    assert env["KAFKA_BOOTSTRAP"] == "kafka:9092"
    config = load_config(ROOT / env["GRAPHSENTRY_CONFIG"].removeprefix("/app/"), env=env)
    planned = {t.name: t for t in plan(config).topics}
    assert set(planned) == PIPELINE_TOPICS
    assert all(t.partitions >= 2 for t in planned.values())
    assert {name for name, t in planned.items() if t.compacted} == COMPACTED
    assert all(t.config["cleanup.policy"] == "delete" and int(t.config["retention.ms"]) > 0
               for name, t in planned.items() if name not in COMPACTED)
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_serve_metrics_and_are_checked_by_their_endpoints(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    """Each app container serves /metrics, /ready and /live on 0.0.0.0 and its health check
    asks them with ``graphsentry health`` (the configuration it reads is the service's)."""
    from graphsentry.commands.health import base_urls
    from graphsentry.config import load_config

    service = services[name]
    env = {k: str(v) for k, v in service["environment"].items()}
    config = load_config(ROOT / env["GRAPHSENTRY_CONFIG"].removeprefix("/app/"), env=env)
    assert config.metrics.enabled and config.metrics.host == "0.0.0.0"
    check = service["healthcheck"]
    assert check["test"] == ["CMD", "graphsentry", "health"]
    assert int(check["retries"]) >= 3
    assert _seconds(check["timeout"]) >= 10  # the Kafka probe of /ready takes up to 2 s
    assert _seconds(check["start_period"]) >= 30
    assert base_urls(config, 1) == [f"http://127.0.0.1:{config.metrics.port}"]
    published = [port.split(":") for port in service["ports"]]
    assert [int(inside) for _, inside in published] == [config.metrics.port]


def test_metrics_host_ports_are_distinct(services: dict[str, dict[str, Any]]) -> None:
    host_ports = [port.split(":")[0] for name in APP_SERVICES for port in services[name]["ports"]]
    assert len(set(host_ports)) == len(host_ports) == len(APP_SERVICES)
    assert "9464" in (ROOT / "docker" / "Dockerfile").read_text().split("EXPOSE", 1)[1]


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match is not None, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_are_configured_by_env_and_wait_for_health(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert set(service["environment"]) >= APP_ENV
    assert service["environment"]["KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert service["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    depends = service["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert service["build"]["dockerfile"] == "docker/Dockerfile"


def test_bridge_runs_the_bridge_command(services: dict[str, dict[str, Any]]) -> None:
    from graphsentry.cli import COMMANDS

    argv = _argv(services["bridge"])
    assert argv[:2] == ["graphsentry", "bridge"]
    assert "bridge" in COMMANDS


def test_app_config_file_is_in_the_image(services: dict[str, dict[str, Any]]) -> None:
    """The Dockerfile copies the repository to /app, so the path must exist in the repo."""
    for name in APP_SERVICES:
        path = services[name]["environment"]["GRAPHSENTRY_CONFIG"]
        assert path.startswith("/app/"), path
        assert (ROOT / path.removeprefix("/app/")).is_file(), f"{name}: {path} not in the repo"


def test_detect_entry_point_exists(services: dict[str, dict[str, Any]]) -> None:
    """``bytewax.run`` imports ``module:attr`` (``attr()`` for a factory); it must be there."""
    for service in _detect_services(services).values():
        argv = _argv(service)
        assert argv[:3] == ["python", "-m", "bytewax.run"]
        module_name, _, attr = argv[3].partition(":")
        is_factory = attr.endswith("()")
        target = getattr(importlib.import_module(module_name), attr.removesuffix("()"), None)
        assert target is not None, f"{argv[3]} does not exist"
        assert callable(target) == is_factory, f"{argv[3]}: factory call and target disagree"


def test_detect_processes_form_one_bytewax_cluster(services: dict[str, dict[str, Any]]) -> None:
    detect = _detect_services(services)
    assert len(detect) == 2
    argvs = {name: _argv(service) for name, service in detect.items()}
    ids = {name: int(_option(argv, "-i")) for name, argv in argvs.items()}
    addresses = {_option(argv, "-a") for argv in argvs.values()}

    assert sorted(ids.values()) == list(range(len(detect)))
    assert len(addresses) == 1, "every process needs the same -a list"
    hosts = addresses.pop().split(";")
    assert len(hosts) == len(detect)
    for name, process_id in ids.items():
        host, port = hosts[process_id].split(":")
        assert host == name == detect[name].get("hostname", name)
        assert port.isdigit()
    recovery_dirs = {_option(argv, "-r") for argv in argvs.values()}
    assert recovery_dirs == {"/recovery"}
    for service in detect.values():
        assert "detect-recovery:/recovery" in service["volumes"]
        assert service["depends_on"]["recovery-init"]["condition"] == (
            "service_completed_successfully"
        )


def test_recovery_init_creates_one_partition_per_process(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["recovery-init"]
    script = " ".join(_argv(init))
    match = re.search(r"python -m bytewax\.recovery (\S+) (\d+)", script)
    assert match is not None, script
    assert match.group(1) == "/recovery"
    assert int(match.group(2)) == len(_detect_services(services))
    assert "test -e" in script, "re-initialising existing partitions fails, so it must be guarded"
    assert "detect-recovery:/recovery" in init["volumes"]


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used
    assert used <= declared


def test_dockerfile_installs_the_project_on_python_311() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.search(r"\bpip install \.(\s|$)", line) for line in lines)
    assert any(line.startswith("USER ") and line != "USER root" for line in lines)


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".state"} <= ignored
    assert "pyproject.toml" not in ignored
