"""A fake of RunPod's REST API v1, served on 127.0.0.1 by a thread, for the pool tests.

Built from RunPod's published OpenAPI document (https://docs.runpod.io/api-reference/openapi.json,
server https://rest.runpod.io/v1, bearer API key): `POST /pods` (a `PodCreateInput`: name,
templateId or imageName + gpuTypeIds, gpuCount, networkVolumeId, containerDiskInGb, env,
cloudType) answers 201 with a `Pod`; `GET /pods` a list of `Pod`; `GET /pods/{podId}` one;
`POST /pods/{podId}/stop` 200; `DELETE /pods/{podId}` 204. A `Pod` here carries the fields
the pool reads and a few more of the document's: id, name, desiredStatus (RUNNING, EXITED,
TERMINATED), imageName, gpuCount, costPerHr, env, networkVolumeId, templateId.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "rpa_test_key_0123456789"


@dataclass
class FakeRunPod:
    url: str = ""
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # create bodies, in order
    deleted: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)  # by method, next first
    create_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self) -> list[str]:
        with self.lock:
            return [i for i, pod in self.pods.items() if pod["desiredStatus"] == "RUNNING"]

    def fail_next(self, method: str, *statuses: int) -> None:
        """The next calls with `method` answer these statuses, in order."""
        with self.lock:
            self.failures.setdefault(method, []).extend(statuses)


def _handler(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with fake.lock:
                fake.calls.append((method, self.path))
                queued = fake.failures.get(method)
                failure = queued.pop(0) if queued else None
            if self.headers.get("authorization") != f"Bearer {API_KEY}":
                return self._reply(401, {"error": "unauthorized"})
            if failure is not None:
                return self._reply(failure, {"error": f"injected {failure}"})
            parts = self.path.removeprefix("/v1").strip("/").split("/")
            if parts[0] != "pods":
                return self._reply(404, {"error": "not found"})
            if method == "POST" and len(parts) == 1:
                time.sleep(fake.create_delay)
                with fake.lock:
                    pod_id = f"pod{len(fake.created) + 1:04d}"
                    fake.created.append(body)
                    pod = {
                        "id": pod_id,
                        "name": body["name"],
                        "desiredStatus": "RUNNING",
                        "imageName": body.get("imageName"),
                        "gpuCount": body.get("gpuCount", 1),
                        "costPerHr": 2.99,
                        "env": body.get("env", {}),
                        "networkVolumeId": body.get("networkVolumeId"),
                        "templateId": body.get("templateId"),
                    }
                    fake.pods[pod_id] = pod
                return self._reply(201, pod)
            if method == "GET" and len(parts) == 1:
                with fake.lock:
                    return self._reply(200, list(fake.pods.values()))
            with fake.lock:
                pod = fake.pods.get(parts[1])
            if pod is None:
                return self._reply(404, {"error": "pod not found"})
            if method == "GET" and len(parts) == 2:
                return self._reply(200, pod)
            if method == "POST" and parts[2:] == ["stop"]:
                pod["desiredStatus"] = "EXITED"
                return self._reply(200, pod)
            if method == "DELETE" and len(parts) == 2:
                with fake.lock:
                    del fake.pods[parts[1]]
                    fake.deleted.append(parts[1])
                return self._reply(204)
            return self._reply(404, {"error": "not found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextmanager
def fake_runpod() -> Iterator[FakeRunPod]:
    fake = FakeRunPod()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
