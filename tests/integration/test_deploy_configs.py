"""The docker-compose stack, checked without a container engine (none runs here).

Compose file: `docker-compose config`. Prometheus config: `promtool check config`. Dashboard
queries: `promtool check rules`, names cross-checked against a real scrape of /metrics, and
run by a real Prometheus server that scraped the service under test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from domain.events import (
    ReplyInterrupted,
    RequestFailed,
    RequestReceived,
    SpeechTranscribed,
    StepDegraded,
    VoiceReplied,
)
from tests.integration.conftest import RunningServer, free_port
from tests.integration.speech import speak
from tests.unit.test_telemetry import fallback_batch

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "voicepipe.json"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: .ci/run installs it (apt-get install {name})")
    return path


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return dict(load(ROOT / "docker-compose.yml"))


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        exprs.extend(target["expr"] for target in panel.get("targets", []))
    return exprs


def concrete(expr: str, window: str = "1m") -> str:
    return expr.replace("$__rate_interval", window)


def test_compose_file_is_valid_and_starts_the_whole_stack() -> None:
    result = subprocess.run(
        [tool("docker-compose"), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    services = compose()["services"]
    assert set(services) == {
        "voicepipe",
        "haproxy",
        "redis",
        "otel-collector",
        "jaeger",
        "prometheus",
        "grafana",
    }
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), f"{source} is mounted but missing"
    env = services["voicepipe"]["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["OTEL_METRICS_EXPORTER"] == "prometheus" and env["OTEL_TRACES_EXPORTER"] == "otlp"


def test_collector_pipelines_use_only_defined_components() -> None:
    config = load(DEPLOY / "otel-collector.yaml")
    # Components of the otel/opentelemetry-collector-contrib image this file is written for.
    known = {
        "receivers": {"otlp"},
        "processors": {"batch", "memory_limiter"},
        "exporters": {"otlp", "otlphttp", "prometheus", "debug"},
        "extensions": {"health_check"},
    }
    for kind, types in known.items():
        for name in config[kind]:
            assert name.split("/")[0] in types, f"{kind}: unknown component {name}"
    service = config["service"]
    assert set(service["extensions"]) <= set(config["extensions"])
    assert set(service["pipelines"]) == {"traces", "metrics"}
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), pipeline
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert config["exporters"]["otlp/jaeger"]["endpoint"].split(":")[0] in compose()["services"]


def test_prometheus_config_is_valid_and_scrapes_the_service() -> None:
    path = DEPLOY / "prometheus.yml"
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in load(path)["scrape_configs"]}
    # Every replica of `--scale voicepipe=N`, found through Docker's DNS.
    assert jobs["voicepipe"]["dns_sd_configs"] == [
        {"names": ["voicepipe"], "type": "A", "port": 8000, "refresh_interval": "15s"}
    ]
    assert jobs["otel-collector"]["static_configs"][0]["targets"] == ["otel-collector:8889"]


def test_grafana_provisioning_points_at_the_dashboard_and_datasources() -> None:
    sources = load(DEPLOY / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    uids = {s["uid"]: s for s in sources}
    assert uids["prometheus"]["url"] == "http://prometheus:9090"
    providers = load(DEPLOY / "grafana/provisioning/dashboards/dashboards.yaml")["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{providers[0]['options']['path']}:ro" in mounts
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "voicepipe" and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids and panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] in uids for t in panel["targets"])


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": concrete(expr)}
                    for i, expr in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def exercise(server: RunningServer, http: httpx.Client) -> None:
    """Real traffic, plus events this one-provider server cannot cause (fallback, busy...)."""
    assert http.post("/api/tts", json={"text": "Dashboards need data."}).is_success
    assert http.post("/api/tts", json={"text": "Dashboards need data."}).is_success
    assert http.post("/api/tts", json={"text": ""}).status_code == 400
    streamed = http.post("/api/tts", json={"text": "Streams count too.", "stream": True})
    assert streamed.is_success and streamed.content
    audio = speak(http, "Listen to this.")
    assert http.post("/api/stt", files={"file": ("a.wav", audio)}).is_success
    at = {"occurred_at": 1.0}
    rare = [
        *fallback_batch(pid="deploy-1"),
        RequestReceived(pipeline_id="d2", pipeline="stt", transport="ws", input_size=1, **at),
        RequestFailed(
            pipeline_id="d2", pipeline="stt", step="transcription", code="busy", latency_ms=1, **at
        ),
        StepDegraded(pipeline_id="d3", step="sentiment", code="sentiment_failed", **at),
        SpeechTranscribed(
            pipeline_id="d4",
            model="base.en",
            language="en",
            language_probability=1.0,
            audio_ms=1000.0,
            latency_ms=200.0,
            segments=1,
            end_of_speech_ms=600.0,
            **at,
        ),
        VoiceReplied(pipeline_id="d5", voice_to_voice_ms=780.0, **at),
        ReplyInterrupted(pipeline_id="d5", audio_ms=1200.0, **at),
    ]
    server.container.telemetry.metrics.observe(rare)


def scraped_names(http: httpx.Client) -> set[str]:
    text = http.get("/metrics").text
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_dashboard_names_only_metrics_the_service_exports(
    server: RunningServer, http: httpx.Client
) -> None:
    exercise(server, http)
    exported = scraped_names(http)
    used = {name for expr in dashboard_exprs() for name in re.findall(r"voicepipe_\w+", expr)}
    assert used, "the dashboard has no voicepipe queries"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    # And the other way round: every family the service exports is on the dashboard.
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported}
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert {f for f in families if f.startswith("voicepipe_")} <= shown


def test_a_real_prometheus_scrapes_the_service_and_answers_every_panel(
    server: RunningServer, http: httpx.Client, tmp_path: Path
) -> None:
    exercise(server, http)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "voicepipe",
                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10)
        deadline = time.monotonic() + 30
        while True:  # three scrapes: enough samples for rate() over the window
            assert process.poll() is None, "prometheus exited"
            try:
                up = api.get("/query", params={"query": "count_over_time(up[1m])"}).json()
                if up["data"]["result"] and float(up["data"]["result"][0]["value"][1]) >= 3:
                    break
            except (httpx.TransportError, ValueError):  # not up, or still starting
                pass
            assert time.monotonic() < deadline, "prometheus did not scrape the service"
            time.sleep(0.5)
        http.post("/api/tts", json={"text": "One more for the rate."})
        time.sleep(1.5)
        empty = []
        for expr in dashboard_exprs():
            answer = api.get("/query", params={"query": concrete(expr, "30s")}).json()
            assert answer["status"] == "success", (expr, answer)
            if not answer["data"]["result"]:
                empty.append(expr)
        # Rates of things that happened once before scraping began can be empty; most are not.
        assert len(empty) <= len(dashboard_exprs()) // 2, empty
        assert not [e for e in empty if "voicepipe_requests_total" in e and "outcome!=" not in e]
    finally:
        process.terminate()
        process.wait(timeout=10)
