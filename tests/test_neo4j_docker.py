"""docker/: the compose file's wiring (no Docker engine runs here, so the images are not built in tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def test_compose_wires_neo4j_postgres_workers_and_the_service() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"neo4j", "postgres", "worker", "service"}
    assert services["neo4j"]["image"].startswith("neo4j:${NEO4J_VERSION:-5.")
    env = services["neo4j"]["environment"]
    for setting in ("heap_initial__size", "heap_max__size", "pagecache_size"):  # sized from the host's .env
        assert re.fullmatch(r"\$\{NEO4J_\w+:-\d+G\}", env[f"NEO4J_server_memory_{setting}"])
    assert not any(k == "NEO4J_PASSWORD" for k in env)  # the image would read it as a (bad) setting
    for name in ("neo4j", "postgres"):
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL"
        assert any(v.endswith(":/data") or v.endswith("/postgresql/data") for v in services[name]["volumes"])
    for name in ("worker", "service"):
        s = services[name]
        assert s["depends_on"] == {"neo4j": {"condition": "service_healthy"},
                                   "postgres": {"condition": "service_healthy"}}
        assert s["environment"]["LENSGRAPH_STORE"].startswith("neo4j://neo4j:${NEO4J_PASSWORD")
        assert "@neo4j:7687/" in s["environment"]["LENSGRAPH_STORE"]
        assert s["build"]["dockerfile"] == "docker/Dockerfile"
    assert services["worker"]["command"] == ["worker"]


def test_the_image_pins_the_cpu_torch_wheel() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "ARG TORCH_VERSION=2.13.0" in dockerfile
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    assert '".[models,neo4j]"' in dockerfile
    for folder in re.findall(r"^COPY (\w+) ", dockerfile, re.M):  # every copied package exists
        assert (DOCKER.parent / folder).is_dir(), folder
