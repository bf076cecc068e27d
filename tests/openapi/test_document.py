"""The public and agent OpenAPI documents, read from the running app: valid OpenAPI 3.1,
every operation with its id and every error it can answer, public routes public, agent
routes only in their own document, and the docs UI served from the edge itself."""

from typing import Any

import pytest
from litestar.testing import TestClient
from openapi_spec_validator import validate

from tests.edge_worker.conftest import client, clock, runtime  # noqa: F401 (fixtures)

OPERATIONS = {
    ("post", "/generate"): "createJob",
    ("post", "/uploads"): "createUploads",
    ("get", "/status/{job_id}"): "getJobStatus",
    ("get", "/result/{job_id}"): "getJobResult",
    ("delete", "/jobs/{job_id}"): "cancelJob",
    ("get", "/jobs"): "listJobs",
    ("get", "/usage"): "getUsage",
    ("get", "/health"): "getHealth",
    ("get", "/jobs/{job_id}/events"): "streamJobEvents",
    ("get", "/webhooks/secret"): "getWebhookSecret",
    ("post", "/webhooks/secret/rotate"): "rotateWebhookSecret",
    ("get", "/jobs/{job_id}/webhooks"): "listWebhookDeliveries",
    ("post", "/jobs/{job_id}/webhooks/redeliver"): "redeliverWebhook",
}
AGENT_OPERATIONS = {
    ("post", "/agent/jobs/{job_id}/claim"): "claimJob",
    ("post", "/agent/jobs/{job_id}/progress"): "reportProgress",
    ("post", "/agent/jobs/{job_id}/complete"): "completeJob",
    ("post", "/agent/jobs/{job_id}/fail"): "failJob",
    ("post", "/agent/jobs/{job_id}/segments"): "registerSegments",
    ("post", "/agent/jobs/{job_id}/segments/commit"): "commitSegments",
    ("post", "/agent/heartbeat"): "agentHeartbeat",
}
AGENT_ERRORS = {"400", "401", "404", "409", "413", "500"}
ERRORS = {
    "createJob": {"400", "401", "409", "413", "422", "429", "500"},
    "createUploads": {"400", "401", "413", "429", "500"},
    "getJobStatus": {"401", "404", "500"},
    "getJobResult": {"401", "404", "410", "500"},
    "cancelJob": {"401", "404", "409", "500"},
    "listJobs": {"400", "401", "500"},
    "getUsage": {"400", "401", "500"},
    "getHealth": {"500", "503"},
    "streamJobEvents": {"401", "404", "500"},
    "getWebhookSecret": {"401", "500"},
    "rotateWebhookSecret": {"401", "409", "500"},
    "listWebhookDeliveries": {"401", "404", "500"},
    "redeliverWebhook": {"401", "404", "409", "500"},
    "claimJob": AGENT_ERRORS | {"422"},  # MISSING_CAPABILITY: the agent cannot make the job
    "reportProgress": AGENT_ERRORS,
    "completeJob": AGENT_ERRORS | {"503"},  # the result is not in storage as reported
    "failJob": AGENT_ERRORS,
    "registerSegments": AGENT_ERRORS,
    "commitSegments": AGENT_ERRORS | {"503"},  # a segment's audio is not in storage
    "agentHeartbeat": {"400", "401", "413", "500"},  # no job: no 404 or 409
}
DOCUMENTS = {"/schema/openapi.json": OPERATIONS, "/schema/agent/openapi.json": AGENT_OPERATIONS}
# Error statuses whose body is not the envelope: a degraded /health still reports its checks.
OTHER_BODIES = {("getHealth", "503"): {"$ref": "#/components/schemas/HealthView"}}
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


def served(client: TestClient, path: str) -> dict[str, Any]:  # noqa: F811
    response = client.get(path)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:  # noqa: F811
    return served(client, "/schema/openapi.json")


@pytest.fixture(params=sorted(DOCUMENTS))
def either(request: pytest.FixtureRequest, client: TestClient) -> dict[str, Any]:  # noqa: F811
    """Each document in turn: what holds for both."""
    path: str = request.param
    return served(client, path)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_the_document_is_valid_openapi_31(either: dict[str, Any]) -> None:
    validate(either)
    assert either["openapi"].startswith("3.1")


def test_every_operation_has_its_id_and_every_error_it_can_answer(
    either: dict[str, Any],
) -> None:
    found = operations(either)
    assert {key: op["operationId"] for key, op in found.items()} in DOCUMENTS.values()
    for operation in found.values():
        statuses = set(operation["responses"])
        errors = {status for status in statuses if status >= "400"}
        assert errors == ERRORS[operation["operationId"]], operation["operationId"]
        for status in errors:
            response = operation["responses"][status]
            body = OTHER_BODIES.get((operation["operationId"], status), ENVELOPE)
            assert response["content"]["application/json"]["schema"] == body
            assert "X-Request-ID" in response["headers"]
        assert "X-Request-ID" in operation["responses"]["200"]["headers"]
        assert "X-Request-ID" in {p["name"] for p in operation["parameters"]}


def test_litestars_default_400_is_gone(either: dict[str, Any]) -> None:
    schemas = either["components"]["schemas"]
    assert not any("extra" in schema.get("properties", {}) for schema in schemas.values())
    variants = schemas["ErrorEnvelope"]["properties"]["error"]["oneOf"]
    codes = {schemas[v["$ref"].rsplit("/", 1)[1]]["properties"]["code"]["const"] for v in variants}
    assert "INVALID_INPUT" in codes and "JOB_NOT_FOUND" in codes


def test_only_client_routes_need_a_key(document: dict[str, Any]) -> None:
    assert "security" not in document
    for (_, path), operation in operations(document).items():
        expected = None if path == "/health" else [{"apiKey": []}]
        assert operation.get("security") == expected, path
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_generate_documents_both_bodies_and_its_headers(document: dict[str, Any]) -> None:
    operation = document["paths"]["/generate"]["post"]
    content = operation["requestBody"]["content"]
    form = content["multipart/form-data"]["schema"]["properties"]
    assert form["image"]["format"] == form["audio"]["format"] == "binary"
    assert {"image_upload_id", "audio_upload_id", "prompt", "quality"} <= set(form)
    # What the edge refuses, said: other parts, a blank prompt, a null seed (a part is text).
    assert content["multipart/form-data"]["schema"]["additionalProperties"] is False
    assert form["prompt"]["pattern"] == r"\S"
    assert form["seed"]["type"] == "integer"
    assert content["application/json"]["schema"]["required"] == [
        "audio_upload_id",  # and image_upload_id or video_upload_id, one of them
        "prompt",
    ]
    assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}
    links = operation["responses"]["200"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "getJobStatus",
        "getJobResult",
        "cancelJob",
    }
    uploads = document["paths"]["/uploads"]["post"]["requestBody"]["content"]
    assert uploads["application/json"]["schema"] == {"$ref": "#/components/schemas/UploadsRequest"}


def test_agent_routes_have_their_own_document(
    document: dict[str, Any],
    client: TestClient,  # noqa: F811
) -> None:
    assert not any(path.startswith(("/agent", "/client/v4")) for path in document["paths"])
    agent = served(client, "/schema/agent/openapi.json")
    assert "security" not in agent
    assert all(op["security"] == [{"agentToken": []}] for op in operations(agent).values())
    assert set(agent["components"]["securitySchemes"]) == {"agentToken"}


def test_the_docs_ui_is_served_offline(client: TestClient) -> None:  # noqa: F811
    page = client.get("/schema/swagger")
    assert page.status_code == 200
    assert "cdn" not in page.text and "unpkg" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert f"/schema/swagger-assets/{asset}" in page.text
        served = client.get(f"/schema/swagger-assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 10_000, asset


def test_a_wrong_method_names_the_allowed_ones(client: TestClient) -> None:  # noqa: F811
    response = client.request("TRACE", "/health")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


def test_the_event_stream_and_prefer_wait_are_documented(document: dict[str, Any]) -> None:
    events = document["paths"]["/jobs/{job_id}/events"]["get"]
    assert set(events["responses"]["200"]["content"]) == {"text/event-stream"}
    assert "Last-Event-ID" in {p["name"] for p in events["parameters"]}
    status = document["paths"]["/status/{job_id}"]["get"]
    assert "Prefer" in {p["name"] for p in status["parameters"]}
    assert "Preference-Applied" in status["responses"]["200"]["headers"]
    assert status["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobView"
    }
