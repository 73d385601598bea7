"""Prometheus metrics of the whole process (prometheus-client's default registry), served at
/metrics. Parts report through the small functions here, so that none of them imports the web app."""

import time

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("codeinterp_http_requests_total", "HTTP requests answered, by route template and status",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("codeinterp_http_request_duration_seconds", "Time to answer a request (to its last byte)",
                         ["method", "route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RUN_STATUSES = Counter("codeinterp_runs_total", "Runs entering each status (queued, in_progress, requires_action, "
                       "cancelling, and the final ones)", ["status"])
RUN_SECONDS = Histogram("codeinterp_run_duration_seconds", "From a run's creation to its final status",
                        ["status"], buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600))
CELL_SECONDS = Histogram("codeinterp_cell_duration_seconds", "One code execution in a sandbox session",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
LIVE_SESSIONS = Gauge("codeinterp_sandbox_sessions", "Sandbox sessions handed out and open")
WARM_SESSIONS = Gauge("codeinterp_sandbox_warm_sessions", "Sandbox sessions started ahead of demand, ready")
RUNS_ACTIVE = Gauge("codeinterp_runs_active", "Runs this process drives now (running or awaiting tool outputs)")
QUEUE_DEPTH = Gauge("codeinterp_run_queue_depth", "Runs in status queued, waiting to start (all replicas)")

FINAL_RUN_STATUSES = ("completed", "failed", "cancelled", "expired", "incomplete")
RUN_STATUSES_COUNTED = ("queued", "in_progress", "requires_action", "cancelling", *FINAL_RUN_STATUSES)


def run_event(name: str, data: dict) -> None:
    """A run's event was published: count the status it enters, and time the run when it ends."""
    status = name.removeprefix("thread.run.")
    if status not in RUN_STATUSES_COUNTED or data.get("object") != "thread.run":
        return
    RUN_STATUSES.labels(status).inc()
    if status in FINAL_RUN_STATUSES and data.get("created_at"):
        RUN_SECONDS.labels(status).observe(max(0.0, time.time() - data["created_at"]))


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)
