"""A local stand-in for an OpenTelemetry collector: OTLP over HTTP and gRPC, decoded."""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc


class Received:
    """What the collector was sent: span names, metric names, resource attributes."""

    def __init__(self) -> None:
        self.spans: list[str] = []
        self.metrics: list[str] = []
        self.services: set[str] = set()
        self.lock = threading.Lock()

    def traces(self, request: trace_pb.ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                self._resource(resource_spans.resource)
                for scope in resource_spans.scope_spans:
                    self.spans.extend(span.name for span in scope.spans)

    def metric_data(self, request: metrics_pb.ExportMetricsServiceRequest) -> None:
        with self.lock:
            for resource_metrics in request.resource_metrics:
                self._resource(resource_metrics.resource)
                for scope in resource_metrics.scope_metrics:
                    self.metrics.extend(metric.name for metric in scope.metrics)

    def _resource(self, resource: Any) -> None:
        for attribute in resource.attributes:
            if attribute.key == "service.name":
                self.services.add(attribute.value.string_value)


class HttpCollector:
    """OTLP/HTTP (protobuf) on /v1/traces and /v1/metrics."""

    def __init__(self) -> None:
        self.received = received = Received()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path == "/v1/traces":
                    received.traces(trace_pb.ExportTraceServiceRequest.FromString(body))
                    reply = trace_pb.ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    received.metric_data(metrics_pb.ExportMetricsServiceRequest.FromString(body))
                    reply = metrics_pb.ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpCollector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcCollector:
    """OTLP/gRPC: the TraceService and MetricsService of the collector."""

    def __init__(self) -> None:
        self.received = received = Received()

        class Traces(trace_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                received.traces(request)
                return trace_pb.ExportTraceServiceResponse()

        class Metrics(metrics_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                received.metric_data(request)
                return metrics_pb.ExportMetricsServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)  # type: ignore[no-untyped-call]
        metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)  # type: ignore[no-untyped-call]
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> GrpcCollector:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
