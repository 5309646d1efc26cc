"""The Sentinel variants of the deployments, checked without a container engine or a cluster:
`docker-compose config` of the override, the Kubernetes overlay rendered by kubectl and
validated against the schemas, and the service settings in both parsed by the service."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import msgspec
import yaml

from entrypoints.redis_settings import redis_target
from entrypoints.settings import Settings
from tests.integration.test_deploy_configs import tool
from tests.integration.test_scale_configs import KUBERNETES

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "kubernetes-sentinel"


def service_settings(env: dict[str, Any]) -> Settings:
    known = {f.name.upper() for f in msgspec.structs.fields(Settings)}
    return Settings.from_env({k: str(v) for k, v in env.items() if k in known})


def monitored(conf: str) -> tuple[str, str, int, int]:
    """(master name, host, port, quorum) of a sentinel config's `sentinel monitor` line."""
    for line in conf.splitlines():
        words = line.split()
        if words[:2] == ["sentinel", "monitor"]:
            return words[2], words[3], int(words[4]), int(words[5])
    raise AssertionError("no sentinel monitor line")


def test_compose_sentinel_override_is_valid_and_points_at_its_sentinels() -> None:
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.sentinel.yml"]
    result = subprocess.run(
        [tool("docker-compose"), *files, "config"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    settings = service_settings(services["voicepipe"]["environment"])
    target = redis_target(settings)
    assert target is not None and target.url is None
    hosts = {host for host, port in target.sentinels if port == 26379}
    assert hosts == {"sentinel-1", "sentinel-2", "sentinel-3"} <= set(services)
    name, host, port, quorum = monitored((ROOT / "deploy/redis/sentinel.conf").read_text())
    assert (name, host, port, quorum) == (target.sentinel_master, "redis", 6379, 2)
    assert "--replicaof" in services["redis-replica"]["command"]


def test_kubernetes_sentinel_overlay_renders_and_validates() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # render what we can: the overlay's own resources
        resources = list(yaml.safe_load_all((OVERLAY / "redis-sentinel.yaml").read_text()))
        for resource in resources:
            resource["metadata"]["namespace"] = "voicepipe"
        data = yaml.safe_load((ROOT / "deploy/kubernetes/configmap.yaml").read_text())["data"]
        patch = yaml.safe_load(
            yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())["patches"][-1]["patch"]
        )
        resources.append({**patch, "data": {**data, **patch["data"]}})
    else:
        rendered = subprocess.run(
            [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60
        )
        assert rendered.returncode == 0, rendered.stderr
        resources = list(yaml.safe_load_all(rendered.stdout))
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES, strict=True)
    named = {(r["kind"], r["metadata"]["name"]): r for r in resources}
    if kubectl is not None:
        assert ("Deployment", "redis") not in named  # the base's single Redis is gone
        assert ("Deployment", "voicepipe") in named
    settings = service_settings(named[("ConfigMap", "voicepipe-settings")]["data"])
    target = redis_target(settings)
    assert target is not None and target.url is None
    sentinels = named[("StatefulSet", "sentinel")]["spec"]
    expected = {(f"sentinel-{i}.sentinel", 26379) for i in range(sentinels["replicas"])}
    assert set(target.sentinels) == expected
    conf = named[("ConfigMap", "redis-sentinel")]["data"]["sentinel.conf"]
    name, host, port, quorum = monitored(conf)
    assert (name, host, port) == (target.sentinel_master, "redis-ha-0.redis-ha", 6379)
    assert quorum == 2 and named[("StatefulSet", "redis-ha")]["spec"]["replicas"] == 2
