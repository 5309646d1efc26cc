"""Every HTTP answer, on a route or not, has a request id and one access-log line, and speaks
the error shape of the API its path belongs to (OpenAI's under /v1, Deepgram's on /v1/listen).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import LogCapture

V1 = "v1"  # {"code", "message", "request_id", "trace_id"}
OPENAI = "openai"  # {"error": {"message", "type", "param", "code"}}
DEEPGRAM = "deepgram"  # {"err_code", "err_msg", "request_id"}

CASES = [
    ("GET", "/nothing-here", 404, "not_found", V1),
    ("GET", "/api/nothing", 404, "not_found", V1),
    ("GET", "/api/tts", 405, "method_not_allowed", V1),
    ("DELETE", "/health", 405, "method_not_allowed", V1),
    ("GET", "/v1/nothing", 404, "not_found", OPENAI),
    ("POST", "/v1/audio/nothing", 404, "not_found", OPENAI),
    ("GET", "/v1/audio/speech", 405, "method_not_allowed", OPENAI),
    ("DELETE", "/v1/models", 405, "method_not_allowed", OPENAI),
    ("PUT", "/v1/listen", 405, "method_not_allowed", DEEPGRAM),
]


@contextmanager
def access_lines() -> Iterator[list[MutableMapping[str, Any]]]:
    """The access-log lines the service writes meanwhile, with their bound request ids."""
    before = structlog.get_config()
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    try:
        yield capture.entries
    finally:
        structlog.configure(**before)


def error_of(shape: str, body: dict[str, Any]) -> tuple[str, str | None]:
    """The error's code, and the request id the body carries (None: the shape has none)."""
    if shape == OPENAI:
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        assert error["type"] == "invalid_request_error" and error["message"], body
        return str(error["code"]), None
    if shape == DEEPGRAM:
        assert body["err_msg"], body
        return str(body["err_code"]).lower(), str(body["request_id"])
    assert body["message"], body
    return str(body["code"]), str(body["request_id"])


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "shape"),
    CASES,
    ids=[f"{method} {path}" for method, path, *_ in CASES],
)
def test_unknown_routes_and_methods_answer_with_a_request_id_in_their_apis_shape(
    http: httpx.Client, method: str, path: str, status: int, code: str, shape: str
) -> None:
    with access_lines() as lines:
        response = http.request(method, path)
        sent = http.request(method, path, headers={"x-request-id": "mine-1.2_3"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    found, in_body = error_of(shape, response.json())
    assert found == code
    request_id = response.headers.get("x-request-id", "")
    assert len(request_id) == 32, response.headers
    assert in_body in (None, request_id)
    assert sent.headers["x-request-id"] == "mine-1.2_3"  # the caller's own id is honoured
    assert error_of(shape, sent.json())[1] in (None, "mine-1.2_3")
    logged = [line for line in lines if line.get("event") == "request"]
    assert [(line["request_id"], line["status"], line["path"]) for line in logged] == [
        (request_id, status, path),
        ("mine-1.2_3", status, path),
    ]


def test_a_matched_route_still_gets_one_id_and_one_access_line(http: httpx.Client) -> None:
    with access_lines() as lines:
        response = http.get("/health")
        missing = http.get("/api/nothing")
    assert response.status_code == 200
    ids = [response.headers["x-request-id"], missing.headers["x-request-id"]]
    assert len(set(ids)) == 2 and ids[1] == missing.json()["request_id"]
    logged = [line for line in lines if line.get("event") == "request"]
    assert [(line["request_id"], line["status"]) for line in logged] == [
        (ids[0], 200),
        (ids[1], 404),
    ]
    assert all(line["method"] == "GET" and line["ms"] >= 0 for line in logged)
