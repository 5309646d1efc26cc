"""The scale-out deployments, checked without a cluster or a container engine.

Kubernetes: every manifest of deploy/kubernetes, rendered as `kubectl apply -k` would
(namespace and labels from kustomization.yaml), validated against the Kubernetes 1.37 schemas
bundled in kubernetes-validate (offline, strict: unknown fields fail), then checked against
the service itself: probe paths answer, settings are real settings, grace period outlasts the
drain, the HPA's custom metric is exported. Compose: `--scale` needs no fixed host port, and
HAProxy's config passes `haproxy -c` and health-checks /ready with leastconn.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import msgspec
import pytest
import yaml

from entrypoints.app import server_config
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer
from tests.integration.test_deploy_configs import compose, scraped_names

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
KUBERNETES = "1.37.0"


def haproxy() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        pytest.fail("haproxy is not installed: make tools installs it (apt-get install haproxy)")
    return path


def kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((KUBE / "kustomization.yaml").read_text()))


def rendered() -> list[dict[str, Any]]:
    """The resources of kustomization.yaml with its namespace and labels applied."""
    spec = kustomization()
    labels: dict[str, str] = {}
    for entry in spec.get("labels", []):
        labels.update(entry["pairs"])
    out = []
    for name in spec["resources"]:
        for doc in yaml.safe_load_all((KUBE / name).read_text()):
            resource = copy.deepcopy(doc)
            meta = resource.setdefault("metadata", {})
            if resource["kind"] != "Namespace":
                meta["namespace"] = spec["namespace"]
            meta.setdefault("labels", {}).update(labels)
            out.append(resource)
    return out


def by_kind(kind: str, name: str) -> dict[str, Any]:
    found = [r for r in rendered() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def voicepipe_container() -> dict[str, Any]:
    pod = by_kind("Deployment", "voicepipe")["spec"]["template"]["spec"]
    return dict(pod["containers"][0])


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    files = sorted(p.name for p in KUBE.glob("*.yaml"))
    listed = kustomization()["resources"]
    # Everything here is applied, except the Prometheus adapter's rule (another namespace).
    assert sorted([*listed, "kustomization.yaml", "prometheus-adapter-rules.yaml"]) == files
    resources = rendered()
    extra = list(yaml.safe_load_all((KUBE / "prometheus-adapter-rules.yaml").read_text()))
    for resource in [*resources, *extra]:
        kubernetes_validate.validate(resource, KUBERNETES, strict=True)
    kinds = {r["kind"] for r in resources}
    assert kinds >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
    }


def test_a_broken_manifest_is_caught() -> None:
    broken = copy.deepcopy(by_kind("Deployment", "voicepipe"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_kubectl_renders_the_same_resources_when_it_is_installed() -> None:
    kubectl = shutil.which("kubectl")
    ours = sorted((r["kind"], r["metadata"]["name"]) for r in rendered())
    if kubectl is None:  # the check above used our rendering; nothing more to compare here
        assert ours
        return
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    theirs = list(yaml.safe_load_all(result.stdout))
    assert sorted((r["kind"], r["metadata"]["name"]) for r in theirs) == ours
    for resource in theirs:
        kubernetes_validate.validate(resource, KUBERNETES, strict=True)


def test_selectors_names_and_references_line_up() -> None:
    deployment = by_kind("Deployment", "voicepipe")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for kind in ("Service", "PodDisruptionBudget"):
        resource = by_kind(kind, "voicepipe")
        selector = resource["spec"]["selector"]
        assert selector.get("matchLabels", selector).items() <= pod_labels.items(), kind
    assert by_kind("NetworkPolicy", "voicepipe")["spec"]["podSelector"]["matchLabels"].items() <= (
        pod_labels.items()
    )
    hpa = by_kind("HorizontalPodAutoscaler", "voicepipe")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "voicepipe",
    }
    container = voicepipe_container()
    refs = {next(iter(v.values()))["name"] for v in container["envFrom"]}
    assert refs == {"voicepipe-settings", "voicepipe-secrets"}
    assert by_kind("Service", "voicepipe")["spec"]["ports"][0]["targetPort"] == "http"
    assert container["ports"][0] == {"name": "http", "containerPort": 8000, "protocol": "TCP"}
    settings = by_kind("ConfigMap", "voicepipe-settings")["data"]
    assert settings["REDIS_URL"] == "redis://redis:6379/0"  # redis.yaml's Service
    assert by_kind("Service", "redis")["spec"]["ports"][0]["port"] == 6379


def test_configmap_and_secret_hold_only_real_settings() -> None:
    known = {f.name.upper() for f in msgspec.structs.fields(Settings)}
    data = {
        **by_kind("ConfigMap", "voicepipe-settings")["data"],
        **by_kind("Secret", "voicepipe-secrets")["stringData"],
    }
    unknown = {k for k in data if k not in known and not k.startswith("OTEL_")}
    assert not unknown, f"not settings of the service: {unknown}"
    env = {k: v for k, v in data.items() if not k.startswith("OTEL_")}
    settings = Settings.from_env(env)  # every value parses and validates
    assert settings.whisper_threads == int(voicepipe_container()["resources"]["limits"]["cpu"])


def test_grace_period_outlasts_the_prestop_hook_and_the_draining_shutdown() -> None:
    from entrypoints.app import DrainingServer

    pod = by_kind("Deployment", "voicepipe")["spec"]["template"]["spec"]
    pre_stop = int(voicepipe_container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = server_config(None, Settings()).timeout_graceful_shutdown  # type: ignore[arg-type]
    assert graceful is not None
    drain = DrainingServer.drain_seconds + graceful
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_resources_fit_the_measured_instance() -> None:
    resources = voicepipe_container()["resources"]
    assert resources["requests"] == resources["limits"]  # Guaranteed QoS
    memory = resources["limits"]["memory"]
    assert memory.endswith("Gi") and float(memory[:-2]) * 1024 >= 1.5 * 500  # RSS ~500 MB


def test_probes_answer_on_the_service(server: RunningServer, http: httpx.Client) -> None:
    container = voicepipe_container()
    readiness = container["readinessProbe"]["httpGet"]["path"]
    liveness = container["livenessProbe"]["httpGet"]["path"]
    assert readiness != liveness
    assert http.get(readiness).status_code == 200
    assert http.get(liveness).json() == {"status": "alive"}
    assert http.get(container["startupProbe"]["httpGet"]["path"]).status_code == 200


def test_the_hpa_custom_metric_is_one_the_service_exports(http: httpx.Client) -> None:
    hpa = by_kind("HorizontalPodAutoscaler", "voicepipe")["spec"]
    custom = [m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"]
    assert custom == ["voicepipe_queue_depth"]
    http.post("/api/tts", json={"text": "Queue depth is a gauge."})
    assert "voicepipe_queue_depth" in scraped_names(http)
    rules = yaml.safe_load(
        next(yaml.safe_load_all((KUBE / "prometheus-adapter-rules.yaml").read_text()))["data"][
            "config.yaml"
        ]
    )["rules"]
    assert rules[0]["name"]["as"] == "voicepipe_queue_depth"


def test_compose_scales_behind_haproxy() -> None:
    services = compose()["services"]
    assert "ports" not in services["voicepipe"], "a fixed host port stops --scale"
    assert services["haproxy"]["ports"] == ["8000:8000"]
    assert (
        "./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"
        in (services["haproxy"]["volumes"])
    )
    grace = services["voicepipe"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > 15


def test_haproxy_config_is_valid_and_routes_by_readiness() -> None:
    result = subprocess.run(
        [haproxy(), "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in HAPROXY_CFG.read_text().splitlines()]
    assert "balance leastconn" in lines
    assert "http-check send meth GET uri /ready ver HTTP/1.1 hdr Host voicepipe" in lines
    assert "timeout tunnel 1h" in lines  # WebSocket sessions outlive the HTTP timeouts
    # None ready (all saturated): any live instance, whose own bounded queue then decides.
    assert "use_backend voicepipe_live if { nbsrv(voicepipe) eq 0 }" in lines
    assert "http-check send meth GET uri /live ver HTTP/1.1 hdr Host voicepipe" in lines
    template = next(line for line in lines if line.startswith("server-template"))
    assert "voicepipe:8000" in template and " check" in template
