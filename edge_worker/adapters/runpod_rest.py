"""RunPod's REST API v1 (`https://rest.runpod.io/v1`, OpenAPI 3.0 at
https://docs.runpod.io/api-reference/openapi.json) as plain data: the request bodies and
paths the pool uses and its answers read back, shared by the httpx adapter (local edge) and
the fetch adapter (Worker), which only move the bytes (`RunPodApi.send`).

Create-pod body fields (`PodCreateInput`): name, templateId, imageName, gpuTypeIds,
gpuCount, networkVolumeId, containerDiskInGb, env (an object), cloudType. A pod (`Pod`):
id, name, desiredStatus (RUNNING, EXITED, TERMINATED), among many we do not read.
"""

import json
from abc import ABC, abstractmethod
from typing import Any

from edge_worker.ports import PodApiError, PodSpec, ProviderPod

PODS_PATH = "/pods"
TIMEOUT_SECONDS = 15.0


def pod_path(pod_id: str) -> str:
    return f"{PODS_PATH}/{pod_id}"


def create_body(spec: PodSpec) -> dict[str, Any]:
    """Only what is set: a template supplies the image, disk and ports it defines."""
    body: dict[str, Any] = {"name": spec.name, "env": dict(spec.env), "cloudType": "SECURE"}
    optional = {
        "templateId": spec.template_id,
        "imageName": spec.image_name,
        "gpuTypeIds": list(spec.gpu_type_ids) or None,
        "gpuCount": spec.gpu_count,
        "networkVolumeId": spec.network_volume_id,
        "containerDiskInGb": spec.container_disk_in_gb,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


def headers(api_key: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {api_key}",
        "content-type": "application/json",
        "accept": "application/json",
    }


def read_pod(data: Any) -> ProviderPod:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise PodApiError(f"RunPod answered with no pod id: {str(data)[:200]}")
    return ProviderPod(
        pod_id=data["id"],
        name=str(data.get("name") or ""),
        desired_status=str(data.get("desiredStatus") or ""),
    )


def read_pods(data: Any) -> list[ProviderPod]:
    if not isinstance(data, list):
        raise PodApiError(f"RunPod answered GET /pods with no list: {str(data)[:200]}")
    return [read_pod(item) for item in data]


def parse_json(status: int, text: str, what: str) -> Any:
    """The body of a 2xx answer; any other status is an error carrying it."""
    check(status, text, what)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PodApiError(f"{what}: RunPod answered {status} with no JSON", status) from exc


def check(status: int, text: str, what: str) -> None:
    if not 200 <= status < 300:
        raise PodApiError(f"{what}: RunPod answered {status}: {text[:200]}", status)


class RunPodApi(ABC):
    """The PodProvider port over RunPod's REST API; a runtime supplies `send`."""

    def __init__(self, api_base: str, api_key: str, timeout_seconds: float = TIMEOUT_SECONDS):
        self.base = api_base.rstrip("/")
        self.headers = headers(api_key)
        self.timeout_seconds = timeout_seconds

    @abstractmethod
    async def send(self, method: str, url: str, body: str | None, what: str) -> tuple[int, str]:
        """One request: its status and body text; `PodApiError` (no status) when no answer
        came."""

    async def create(self, spec: PodSpec) -> ProviderPod:
        what = "create pod"
        body = json.dumps(create_body(spec))
        status, text = await self.send("POST", self.base + PODS_PATH, body, what)
        return read_pod(parse_json(status, text, what))

    async def list_pods(self) -> list[ProviderPod]:
        what = "list pods"
        status, text = await self.send("GET", self.base + PODS_PATH, None, what)
        return read_pods(parse_json(status, text, what))

    async def terminate(self, pod_id: str) -> None:
        what = f"delete pod {pod_id}"
        status, text = await self.send("DELETE", self.base + pod_path(pod_id), None, what)
        if status != 404:  # already gone
            check(status, text, what)
