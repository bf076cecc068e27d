"""Hostile inputs against every public, agent, queue and blob route: none gets a 5xx, and
every refusal is in its route's error shape (ours, or Cloudflare's on the queue emulator).

Each case is a request template: `{job}`, `{claim}` and `{blob}` are filled in with a job
claimed for the test and a path to one of its signed objects, so the cases reach past the
"no such job" checks into the fields they attack.
"""

import base64
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from contracts import ErrorCode
from contracts.media import MediaKind
from edge_worker.auth import owner_id
from edge_worker.domain import upload_tokens
from edge_worker.local import LocalRuntime
from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import (
    ACK_URL,
    AGENT_AUTH,
    API_KEY,
    AUTH,
    PEPPER,
    PULL_URL,
    QUEUE_AUTH,
    FakeClock,
    invalid_fields,
    submit,
)
from tests.edge_worker.test_uploads import grant, put

HUGE = "9" * 400
DEEP = "[" * 100_000 + "]" * 100_000
BOUNDARY = "hostile"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
QUEUE = "/client/v4/accounts/local/queues/avatar-jobs/messages"


def part(name: str, value: bytes | str, headers: str = "") -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n{headers}\r\n'
    return head.encode() + raw + b"\r\n"


def form(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def forged_upload_id(**payload: Any) -> str:
    """An upload id whose payload says anything, under a signature that is not ours."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"up_{body}.{'0' * 32}"


FORGED = forged_upload_id(o="x", k="image", key="inputs/uploads/x/image.png", n=1, exp=10**400)
FILES = (
    part("image", png_bytes(), "Content-Type: image/png\r\n").replace(
        b'name="image"', b'name="image"; filename="i.png"'
    ),
    part("audio", wav_bytes(), "Content-Type: audio/wav\r\n").replace(
        b'name="audio"', b'name="audio"; filename="a.wav"'
    ),
)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    auth: dict[str, str] = field(default_factory=lambda: AUTH)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | None = None

    def json_body(self, text: str) -> "Case":
        return Case(self.method, self.path, self.auth, {"Content-Type": "application/json"}, text)


def generate_json(**fields: Any) -> str:
    body = {"image_upload_id": FORGED, "audio_upload_id": FORGED, "prompt": "talk", **fields}
    return json.dumps(body)


def uploads(size: str, content_type: str = "image/png") -> str:
    return f'{{"image": {{"content_type": "{content_type}", "size_bytes": {size}}}}}'


GENERATE = Case("POST", "/generate")
UPLOADS = Case("POST", "/uploads")
CLAIM = Case("POST", "/agent/jobs/{job}/claim", AGENT_AUTH)
PROGRESS = Case("POST", "/agent/jobs/{job}/progress", AGENT_AUTH)
COMPLETE = Case("POST", "/agent/jobs/{job}/complete", AGENT_AUTH)
FAIL = Case("POST", "/agent/jobs/{job}/fail", AGENT_AUTH)
PULL = Case("POST", PULL_URL, QUEUE_AUTH)
ACK = Case("POST", ACK_URL, QUEUE_AUTH)
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(200)


def result(size: object = len(VIDEO), duration: object = 1, width: object = 480) -> str:
    """A completion whose size matches the uploaded video unless told otherwise."""
    metadata = f'"size_bytes": {size}, "duration_seconds": {duration}, "width": {width}'
    return f'{{"claim_token": "{{claim}}", "result": {{{metadata}, "height": 600, "engine": "e"}}}}'


CASES: dict[str, Case] = {
    # Forged upload ids: numbers no datetime can hold, behind a signature that is not ours.
    "forged upload id, huge numbers (json)": GENERATE.json_body(generate_json()),
    "forged upload id, huge numbers (form)": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk"), part("image_upload_id", FORGED), FILES[1]),
    ),
    "upload id of non-ASCII text": GENERATE.json_body(generate_json(image_upload_id="up_é.é")),
    "upload id, bad base64": GENERATE.json_body(generate_json(audio_upload_id="up_@@@.sig")),
    # The multipart parser's limits, and broken bodies.
    "part header of 100 KB": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk", f"X-Pad: {'a' * 100_000}\r\n"), *FILES),
    ),
    "part with 20 header lines": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk", "".join(f"X-{i}: a\r\n" for i in range(20))), *FILES),
    ),
    "truncated multipart": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk"), *FILES, close=False)[:-40],
    ),
    "multipart without a boundary": Case(
        "POST", "/generate", headers={"Content-Type": "multipart/form-data"}, body=b"--x--"
    ),
    "multipart, 20 parts": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(*(part(f"f{i}", "x") for i in range(20))),
    ),
    "NUL bytes in the prompt": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "ta\x00lk"), *FILES),
    ),
    "NUL byte in a field name": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("pro\x00mpt", "talk"), *FILES),
    ),
    "prompt not UTF-8": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", b"\xff\xfe\xfd"), *FILES),
    ),
    "prompt of 1 MB": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "x" * 1_000_000), *FILES),
    ),
    "seed of 33 digits (form)": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk"), part("seed", "9" * 33), *FILES),
    ),
    "seed in Arabic-Indic digits (form)": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk"), part("seed", "٤٢"), *FILES),
    ),
    "seed 4_2 (form)": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk"), part("seed", "4_2"), *FILES),
    ),
    "resolution of 100 KB": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART},
        body=form(part("prompt", "talk"), part("resolution", "p" * 100_000), *FILES),
    ),
    # Content types and lengths.
    "generate as text/plain": Case(
        "POST", "/generate", headers={"Content-Type": "text/plain"}, body="talk"
    ),
    "generate as multipart/mixed": Case(
        "POST", "/generate", headers={"Content-Type": "multipart/mixed; boundary=x"}, body="--x--"
    ),
    "generate as JSON in UTF-16": Case(
        "POST",
        "/generate",
        headers={"Content-Type": "application/json; charset=utf-16"},
        body=generate_json().encode("utf-16"),
    ),
    "generate, a content type of 8 KB": Case(
        "POST", "/generate", headers={"Content-Type": "application/" + "x" * 8000}, body="{}"
    ),
    "generate, Content-Length of 30 digits": Case(
        "POST",
        "/generate",
        headers={"Content-Type": MULTIPART, "Content-Length": "9" * 30},
        body=form(part("prompt", "talk")),
    ),
    "uploads, Content-Length of 30 digits": Case(
        "POST",
        "/uploads",
        headers={"Content-Type": "application/json", "Content-Length": "9" * 30},
        body=uploads("1"),
    ),
    "uploads as text/plain": Case(
        "POST", "/uploads", headers={"Content-Type": "text/plain"}, body=uploads("1")
    ),
    # Odd and oversize headers.
    "Idempotency-Key of 100 KB": Case(
        "POST",
        "/generate",
        headers={"Content-Type": "application/json", "Idempotency-Key": "k" * 100_000},
        body=generate_json(),
    ),
    "Idempotency-Key with control characters": Case(
        "POST",
        "/generate",
        headers={"Content-Type": "application/json", "Idempotency-Key": "a\tb\x7f"},
        body=generate_json(),
    ),
    "X-Request-Id of 100 KB": Case("GET", "/jobs", headers={"X-Request-Id": "r" * 100_000}),
    "Authorization of 100 KB": Case("GET", "/jobs", {"Authorization": "Bearer " + "k" * 100_000}),
    "Authorization, no scheme": Case("GET", "/jobs", {"Authorization": "k"}),
    "Range of garbage on a blob": Case("GET", "{blob}", {}, {"Range": "bytes=9-1,x-,-"}),
    "Range with huge numbers": Case("GET", "{blob}", {}, {"Range": f"bytes={HUGE}-{HUGE}"}),
    # JSON: depth, encoding, huge numbers in every numeric field.
    "deep JSON on /generate": GENERATE.json_body("[" * 10_000 + "]" * 10_000),
    "deep JSON on /uploads": UPLOADS.json_body(DEEP),
    "deep JSON in a string is fine": UPLOADS.json_body(json.dumps({"image": "[" * 50_000})),
    "unterminated string, then deep JSON": UPLOADS.json_body('"\\"' + "[" * 50_000),
    "JSON not UTF-8 on /generate": GENERATE.json_body('{"prompt": "\udcff"}'),
    "JSON not UTF-8 on /uploads": Case(
        "POST", "/uploads", headers={"Content-Type": "application/json"}, body=b'{"\xff": 1}'
    ),
    "JSON NUL bytes on /uploads": UPLOADS.json_body('{"image\\u0000": null}'),
    "size_bytes huge": UPLOADS.json_body(uploads(HUGE)),
    "size_bytes 1e400": UPLOADS.json_body(uploads("1e400")),
    "size_bytes negative": UPLOADS.json_body(uploads("-1")),
    "size_bytes true": UPLOADS.json_body(uploads("true")),
    "content_type with NUL": UPLOADS.json_body(uploads("1", "image/png\\u0000")),
    "seed huge (json)": GENERATE.json_body(
        generate_json().replace('"talk"', f'"talk", "seed": {HUGE}')
    ),
    "seed true (json)": GENERATE.json_body(generate_json(seed=True)),
    "seed as a string (json)": GENERATE.json_body(generate_json(seed="42")),
    "prompt of 1 MB (json)": GENERATE.json_body(generate_json(prompt="x" * 1_000_000)),
    "claim, agent_id a number": CLAIM.json_body(f'{{"agent_id": {HUGE}}}'),
    "claim, deep JSON": CLAIM.json_body(DEEP),
    "claim, not UTF-8": Case(
        "POST",
        "/agent/jobs/{job}/claim",
        AGENT_AUTH,
        {"Content-Type": "application/json"},
        b'{"agent_id": "\xff"}',
    ),
    "progress, huge progress": PROGRESS.json_body(
        f'{{"claim_token": "{{claim}}", "progress": {HUGE}, "stage": "generating"}}'
    ),
    "progress, 1e400 eta": PROGRESS.json_body(
        '{"claim_token": "{claim}", "progress": 1, "stage": "generating", "eta_seconds": 1e400}'
    ),
    "progress, NaN": PROGRESS.json_body(
        '{"claim_token": "{claim}", "progress": NaN, "stage": "generating"}'
    ),
    "progress, deep JSON": PROGRESS.json_body(DEEP),
    "complete, huge size": COMPLETE.json_body(result(size=HUGE)),
    "complete, width past SQLite's integers": COMPLETE.json_body(result(width=2**64)),
    "complete, width huge": COMPLETE.json_body(result(width=HUGE)),
    "complete, duration 1e400": COMPLETE.json_body(result(duration="1e400")),
    "complete, deep JSON": COMPLETE.json_body(DEEP),
    "fail, message with NUL": FAIL.json_body(
        '{"claim_token": "{claim}", "code": "ENGINE_ERROR", "message": "a\\u0000b"}'
    ),
    "fail, deep JSON": FAIL.json_body(DEEP),
    "fail, claim token of non-ASCII text": FAIL.json_body(
        '{"claim_token": "é", "code": "ENGINE_ERROR", "message": "m"}'
    ),
    "pull, huge batch": PULL.json_body(f'{{"batch_size": {HUGE}}}'),
    "pull, huge visibility": PULL.json_body(f'{{"visibility_timeout_ms": {HUGE}}}'),
    "pull, deep JSON": PULL.json_body(DEEP),
    "pull, not UTF-8": Case(
        "POST", PULL_URL, QUEUE_AUTH, {"Content-Type": "application/json"}, b'{"\xff": 1}'
    ),
    "ack, huge delay": ACK.json_body(
        f'{{"retries": [{{"lease_id": "l", "delay_seconds": {HUGE}}}]}}'
    ),
    "ack, lease ids numbers": ACK.json_body(f'{{"acks": [{{"lease_id": {HUGE}}}]}}'),
    "ack, deep JSON": ACK.json_body(DEEP),
    # Query parameters.
    "jobs, limit huge": Case("GET", f"/jobs?limit={HUGE}"),
    "jobs, limit 1e400": Case("GET", "/jobs?limit=1e400"),
    "jobs, limit in Arabic-Indic digits": Case("GET", "/jobs?limit=%D9%A4"),
    "jobs, cursor garbage": Case("GET", "/jobs?cursor=%FF%00" + "A" * 3000),
    "jobs, cursor of huge numbers": Case(
        "GET", "/jobs?cursor=" + base64.urlsafe_b64encode(f"[{HUGE},{HUGE}]".encode()).decode()
    ),
    "jobs, status with NUL": Case("GET", "/jobs?status=pending%00"),
    "blob, expires huge": Case("GET", "/blobs/inputs/x/image.png?expires=" + HUGE + "&sig=x", {}),
    "blob PUT, max_bytes huge": Case(
        "PUT", f"/blobs/inputs/x/image.png?expires=1&max_bytes={HUGE}&sig=x", {}, body=b"x"
    ),
    "blob, signature non-ASCII": Case("GET", "{blob}é", {}),
    # Path traversal and odd bytes in every path parameter.
    "status, ../": Case("GET", "/status/..%2F..%2Fetc%2Fpasswd"),
    "status, NUL": Case("GET", "/status/a%00b"),
    "status, id of 60 KB": Case("GET", "/status/" + "a" * 60_000),
    "result, ../": Case("GET", "/result/..%2Fx"),
    "cancel, ../": Case("DELETE", "/jobs/..%2F..%2Fx"),
    "cancel, non-UTF-8": Case("DELETE", "/jobs/%FF%FE"),
    "claim, ../": Case(
        "POST",
        "/agent/jobs/..%2F..%2Fx/claim",
        AGENT_AUTH,
        {"Content-Type": "application/json"},
        '{"agent_id": "a"}',
    ),
    "blob GET, ../": Case("GET", "/blobs/..%2F..%2Fetc%2Fpasswd?expires=9999999999&sig=x", {}),
    "blob GET, dotted": Case("GET", "/blobs/inputs/%2e%2e/%2e%2e/x?expires=9999999999&sig=x", {}),
    "blob HEAD, ../": Case("HEAD", "/blobs/..%2Fx?expires=9999999999&sig=x", {}),
    "blob PUT, ../": Case(
        "PUT", "/blobs/..%2Fx?expires=9999999999&max_bytes=9&content_type=&sig=x", {}, body=b"x"
    ),
    "blob GET, NUL": Case("GET", "/blobs/inputs/a%00b?expires=9999999999&sig=x", {}),
    "queue, ../ account": Case(
        "POST", "/client/v4/accounts/..%2F/queues/avatar-jobs/messages/pull", QUEUE_AUTH
    ),
    "queue, NUL queue name": Case(
        "POST", "/client/v4/accounts/local/queues/a%00b/messages/pull", QUEUE_AUTH
    ),
}


@pytest.fixture
def claimed(client: TestClient) -> dict[str, str]:
    """A job claimed by an agent, its result uploaded, and the path of its image's signed
    GET URL."""
    job = submit(client)
    claim = client.post(
        f"/agent/jobs/{job['job_id']}/claim",
        json={"agent_id": "a", "lease_id": "l"},
        headers=AGENT_AUTH,
    )
    assert claim.status_code == 200, claim.text
    grant = claim.json()
    uploaded = client.put(
        grant["output"]["upload_url"], content=VIDEO, headers={"Content-Type": "video/mp4"}
    )
    assert uploaded.status_code == 200, uploaded.text
    image = urlsplit(grant["inputs"]["image_url"])
    return {
        "job": grant["job_id"],
        "claim": grant["claim_token"],
        "blob": f"{image.path}?{image.query}",
    }


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def send(client: TestClient, case: Case, values: dict[str, str]) -> Any:
    body = case.body
    if isinstance(body, str):
        body = fill(body, values).encode("utf-8", "surrogateescape")
    return client.request(
        case.method,
        fill(case.path, values),
        headers={**case.auth, **case.headers},
        content=body,
    )


def assert_refused_in_shape(path: str, method: str, response: Any) -> None:
    assert response.status_code < 500, response.text
    if method == "HEAD" or response.status_code < 400:
        return
    if response.status_code == 416:  # a range past the object: no body, as R2 answers
        assert response.headers["content-range"].startswith("bytes */")
        return
    body = response.json()
    if path.startswith("/client/v4/"):
        assert body["success"] is False and body["result"] is None, body
        assert {"code", "message"} <= set(body["errors"][0]), body
        return
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert ErrorCode(error["code"]).http_status == response.status_code, body


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_input_is_refused_without_a_5xx(
    client: TestClient, claimed: dict[str, str], name: str
) -> None:
    case = CASES[name]
    response = send(client, case, claimed)
    assert_refused_in_shape(case.path, case.method, response)


# --- Each cause of a 500 in issue 12, and the weak spots, with their exact answers -------


def post_form(client: TestClient, *parts: bytes, **headers: str) -> Any:
    return client.post(
        "/generate", headers={**AUTH, "Content-Type": MULTIPART, **headers}, content=form(*parts)
    )


def test_a_forged_upload_id_is_refused_before_its_numbers_are_read(client: TestClient) -> None:
    as_json = send(client, CASES["forged upload id, huge numbers (json)"], {})
    assert invalid_fields(as_json) == ["image_upload_id"]
    as_form = post_form(client, part("prompt", "talk"), part("audio_upload_id", FORGED), FILES[0])
    assert invalid_fields(as_form) == ["audio_upload_id"]


def test_a_signed_upload_id_naming_a_stray_key_is_refused(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    """Even under our own signature, an id reaches storage only with a key `/uploads` makes."""
    secret = runtime.use_cases.context.settings.signing_secret
    for key in ("../../etc/passwd", "inputs/uploads/x/../../image.png", "videos/j/1.mp4"):
        ticket = upload_tokens.UploadTicket(
            owner_id(API_KEY, PEPPER), MediaKind.IMAGE, key, 10, clock.now() + timedelta(hours=1)
        )
        body = {"image_upload_id": upload_tokens.issue(ticket, secret), "prompt": "talk"}
        response = client.post("/generate", headers=AUTH, json={**body, "audio_upload_id": FORGED})
        assert invalid_fields(response) == ["image_upload_id"]


@pytest.mark.parametrize("case", ["part header of 100 KB", "part with 20 header lines"])
def test_the_multipart_parsers_limits_are_400(client: TestClient, case: str) -> None:
    response = send(client, CASES[case], {})
    assert invalid_fields(response) == [None]
    assert "multipart" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["/uploads", "/agent/jobs/j/claim", "/generate"])
def test_deep_json_is_400_on_our_routes(client: TestClient, url: str) -> None:
    auth = AGENT_AUTH if url.startswith("/agent") else AUTH
    deep = "[" * 1000 + "]" * 1000
    response = client.post(url, headers={**auth, "Content-Type": "application/json"}, content=deep)
    assert invalid_fields(response) == [None]
    assert "nested deeper than 32 levels" in response.json()["error"]["message"]
    shallow = "[" * 32 + "]" * 32  # at the limit: refused by the model, not the depth check
    at_limit = client.post(
        url, headers={**auth, "Content-Type": "application/json"}, content=shallow
    )
    assert "nested" not in at_limit.json()["error"]["message"]


def test_deep_json_is_400_in_cloudflares_shape_on_the_queue(client: TestClient) -> None:
    response = client.post(
        PULL_URL, headers={**QUEUE_AUTH, "Content-Type": "application/json"}, content=DEEP
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": 10400, "message": "JSON body is nested deeper than 32 levels"}
    ]


def test_the_queue_emulator_logs_what_it_cannot_answer(
    client: TestClient, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runtime.queue, "pull", broken)
    with caplog.at_level(logging.ERROR, logger="edge_worker.queue"):
        response = client.post(PULL_URL, headers=QUEUE_AUTH, json={"batch_size": 1})
    assert response.status_code == 500
    assert response.json()["errors"] == [{"code": 10500, "message": "internal error"}]
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == ["disk on fire"]


@pytest.mark.parametrize("seed", ["٤٢", "4_2", " 42", "+42", "-1", "4.0", "9" * 11, "9" * 33])
def test_a_form_seed_is_ascii_digits_only_and_400_when_long(client: TestClient, seed: str) -> None:
    response = post_form(client, part("prompt", "talk"), part("seed", seed), *FILES)
    assert invalid_fields(response) == ["seed"]


@pytest.mark.parametrize("seed", [True, "42", 4.0, 2**32, 10**40])
def test_a_json_seed_is_a_strict_integer(client: TestClient, seed: Any) -> None:
    response = client.post(
        "/generate", headers=AUTH, json={**json.loads(generate_json()), "seed": seed}
    )
    assert invalid_fields(response) == ["seed"]


def test_a_long_prompt_is_400_and_a_big_file_still_413(client: TestClient) -> None:
    prompt = post_form(client, part("prompt", "x" * 1_000_000), *FILES)
    assert invalid_fields(prompt) == ["prompt"]
    assert submit(client, seed="4294967295")["job_id"]
    big = part("image", png_bytes() + bytes(11 * 1024 * 1024), "Content-Type: image/png\r\n")
    too_big = post_form(client, part("prompt", "talk"), big, FILES[1])
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_claim_tokens_are_compared_in_constant_time(
    client: TestClient, claimed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body = {"claim_token": "not-it", "progress": 1, "stage": "generating"}
    response = client.post(f"/agent/jobs/{claimed['job']}/progress", json=body, headers=AGENT_AUTH)
    assert response.status_code == 409
    assert (claimed["claim"].encode(), b"not-it") in compared


def test_an_idempotency_key_header_cannot_reach_the_upload_records(client: TestClient) -> None:
    """`upload:<key>` names the server's record that an upload fed a job; a header of that
    name is a client key like any other: it neither blocks the upload's job nor frees it."""
    grants = grant(client)
    put(client, grants["image"], png_bytes())
    put(client, grants["audio"], wav_bytes())
    image_key = urlsplit(grants["image"]["url"]).path.removeprefix("/blobs/")
    body = {
        "image_upload_id": grants["image"]["upload_id"],
        "audio_upload_id": grants["audio"]["upload_id"],
        "prompt": "talk",
    }
    headers = {**AUTH, "Idempotency-Key": f"upload:{image_key}"}
    first = client.post("/generate", headers=headers, json=body)
    assert first.status_code == 200, first.text
    replay = client.post("/generate", headers=headers, json=body)
    assert replay.json()["job_id"] == first.json()["job_id"]
    again = client.post("/generate", headers=AUTH, json=body)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")


@pytest.mark.parametrize("size", ["true", '"1000"', "1000.0", HUGE])
def test_a_declared_size_is_a_strict_integer(client: TestClient, size: str) -> None:
    response = send(client, CASES["size_bytes huge"].json_body(uploads(size)), {})
    if size == HUGE:  # an integer, just over the limit
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    else:
        assert invalid_fields(response) == ["image.size_bytes"]
