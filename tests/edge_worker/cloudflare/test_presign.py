"""The R2 presigner: byte-for-byte equal to botocore, and accepted end to end by a fake R2."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import httpx
import pytest
from botocore.config import Config

from contracts.settings import SettingsError
from edge_worker.adapters.cloudflare.presign import (
    MAX_EXPIRES_SECONDS,
    R2Presigner,
    R2Settings,
    presign,
    r2_endpoint,
)
from tests.edge_worker.cloudflare.fake_r2 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeR2

ACCOUNT = "0123456789abcdef0123456789abcdef"
KEY_ID = "AKIDEXAMPLE0123456789"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BUCKET = "avatar-media"
NOW = datetime(2026, 3, 9, 23, 59, 58, 750_000, tzinfo=UTC)

KEYS = [
    "videos/3f0c9a1e.mp4",
    "inputs/3f0c9a1e/image.png",
    "deeply/nested/path/to/a/file.wav",
    "with space/and  two spaces.png",
    "ünïcødé/日本語の音声.mp3",
    "plus+sign+key.mp4",
    "tilde~key~.png",
    "reserved !'()*;:@&=$,?#[]%.bin",
    "double//slash/and/trailing/",
    "emoji/🎬.mp4",
]


def botocore_url(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    key: str,
    *,
    expires_in: int,
    now: datetime,
    content_type: str | None = None,
    endpoint: str | None = None,
) -> str:
    """botocore's presigned URL at a frozen time. `SigV4Auth.add_auth` reads the clock
    through `botocore.auth.get_current_datetime` (a naive UTC datetime): that is the seam."""
    frozen = now.astimezone(UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: frozen)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint or r2_endpoint(ACCOUNT),
        region_name="auto",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    params: dict[str, Any] = {"Bucket": BUCKET, "Key": key}
    if content_type is not None:
        params["ContentType"] = content_type
    operation = "put_object" if method == "PUT" else "get_object"
    return client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)


def our_url(
    method: str,
    key: str,
    *,
    expires_in: int,
    now: datetime,
    content_type: str | None = None,
    endpoint: str | None = None,
) -> str:
    return presign(
        method,
        BUCKET,
        key,
        account_id=ACCOUNT,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        expires_in=expires_in,
        now=now,
        content_type=content_type,
        endpoint=endpoint,
    )


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("method", "content_type"),
    [("GET", None), ("PUT", None), ("PUT", "image/png"), ("PUT", "video/mp4")],
)
@pytest.mark.parametrize("expires_in", [1, 3600, 21_600, MAX_EXPIRES_SECONDS])
def test_url_equals_botocore_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    method: str,
    content_type: str | None,
    expires_in: int,
) -> None:
    expected = botocore_url(
        monkeypatch, method, key, expires_in=expires_in, now=NOW, content_type=content_type
    )
    assert our_url(method, key, expires_in=expires_in, now=NOW, content_type=content_type) == (
        expected
    )


@pytest.mark.parametrize(
    "now",
    [
        datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),
        datetime(2030, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        # Not UTC: the URL is the same instant, stamped in UTC (here the previous day).
        datetime(2026, 3, 10, 1, 30, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_any_instant_is_signed_as_its_utc_time(
    monkeypatch: pytest.MonkeyPatch, now: datetime
) -> None:
    key = "videos/x.mp4"
    expected = botocore_url(monkeypatch, "GET", key, expires_in=600, now=now)
    assert our_url("GET", key, expires_in=600, now=now) == expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9000",
        "http://localhost:80",
        "https://R2.Example.COM:8443",
        "https://eu.r2.cloudflarestorage.com/",
        "http://[::1]:9000",
    ],
)
def test_endpoint_override_matches_botocore(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    args = {"expires_in": 900, "now": NOW, "content_type": "audio/wav", "endpoint": endpoint}
    expected = botocore_url(monkeypatch, "PUT", "inputs/j/audio.wav", **args)
    assert our_url("PUT", "inputs/j/audio.wav", **args) == expected


def test_content_type_is_trimmed_like_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    content_type = "  text/plain;   charset=UTF-8 "
    args = {"expires_in": 60, "now": NOW, "content_type": content_type}
    expected = botocore_url(monkeypatch, "PUT", "k.txt", **args)
    assert our_url("PUT", "k.txt", **args) == expected


def test_url_shape_is_r2_path_style() -> None:
    url = our_url("PUT", "inputs/j/image.png", expires_in=600, now=NOW, content_type="image/png")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == f"https://{ACCOUNT}.r2.cloudflarestorage.com"
    assert parts.path == f"/{BUCKET}/inputs/j/image.png"
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert query["X-Amz-Credential"] == f"{KEY_ID}/20260309/auto/s3/aws4_request"
    assert query["X-Amz-Date"] == "20260309T235958Z"
    assert query["X-Amz-Expires"] == "600"
    assert query["X-Amz-SignedHeaders"] == "content-type;host"
    assert len(query["X-Amz-Signature"]) == 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "DELETE"}, "method must be one of"),
        ({"method": "get"}, "method must be one of"),
        ({"expires_in": 0}, "outside 1..604800"),
        ({"expires_in": MAX_EXPIRES_SECONDS + 1}, "outside 1..604800"),
        ({"now": datetime(2026, 3, 9, 12, 0)}, "timezone-aware"),
        ({"method": "GET", "content_type": "image/png"}, "only a PUT"),
        ({"key": ""}, "cannot be presigned"),
        ({"key": "inputs/../secrets"}, "cannot be presigned"),
        ({"key": "./videos/x.mp4"}, "cannot be presigned"),
        ({"bucket": ""}, "invalid bucket"),
        ({"bucket": "a/b"}, "invalid bucket"),
        ({"endpoint": "ftp://example.com"}, "endpoint must look like"),
        ({"endpoint": "https://example.com/prefix"}, "endpoint must look like"),
        ({"endpoint": "https://user:pw@example.com"}, "endpoint must look like"),
        ({"endpoint": "https://example.com?x=1"}, "endpoint must look like"),
        ({"endpoint": "https://"}, "endpoint must look like"),
        ({"content_type": "image/png\r\nX-Evil: 1"}, "printable ASCII"),
        ({"content_type": "image/pngé"}, "printable ASCII"),
        ({"content_type": "   "}, "empty content type"),
    ],
)
def test_refuses_what_r2_would_not_accept(change: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "method": "PUT",
        "bucket": BUCKET,
        "key": "videos/x.mp4",
        "account_id": ACCOUNT,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        "expires_in": 60,
        "now": NOW,
        "content_type": None,
        **change,
    }
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        presign(args.pop("method"), args.pop("bucket"), args.pop("key"), **args)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


SETTINGS = R2Settings(
    account_id=ACCOUNT, access_key_id=KEY_ID, secret_access_key=SECRET, bucket_name=BUCKET
)


def test_settings_come_from_the_design_env_names_and_hide_the_secret() -> None:
    env = {
        "R2_ACCOUNT_ID": ACCOUNT,
        "R2_ACCESS_KEY_ID": KEY_ID,
        "R2_SECRET_ACCESS_KEY": SECRET,
        "R2_BUCKET_NAME": BUCKET,
    }
    assert R2Settings.from_env(env) == SETTINGS
    assert R2Settings.from_env(env, endpoint="http://127.0.0.1:1").endpoint == (
        "http://127.0.0.1:1"
    )
    assert SECRET not in repr(SETTINGS)


def test_missing_settings_are_all_named() -> None:
    with pytest.raises(SettingsError) as caught:
        R2Settings.from_env({"R2_ACCOUNT_ID": ACCOUNT, "R2_BUCKET_NAME": ""})
    assert caught.value.problems == {
        "R2_ACCESS_KEY_ID": "missing",
        "R2_SECRET_ACCESS_KEY": "missing",
        "R2_BUCKET_NAME": "missing",
    }


def test_presigner_signs_at_the_clock_second_until_expires_at() -> None:
    clock = FixedClock(NOW)  # 23:59:58.750
    presigner = R2Presigner(SETTINGS, clock)
    signed_at = NOW.replace(microsecond=0)
    expires_at = NOW + timedelta(hours=6)  # 05:59:58.750 the next day

    url = presigner.presign_get("videos/x.mp4", expires_at)

    # Rounded up to the next whole second: 6 h + 1 s after the truncated signing time.
    assert url == our_url("GET", "videos/x.mp4", expires_in=21_601, now=signed_at)
    query = parse_qs(urlsplit(url).query)
    valid_until = signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0]))
    assert expires_at <= valid_until < expires_at + timedelta(seconds=1)


def test_presigner_put_binds_the_content_type() -> None:
    now = NOW.replace(microsecond=0)
    presigner = R2Presigner(SETTINGS, FixedClock(now))
    url = presigner.presign_put("inputs/j/audio.wav", now + timedelta(hours=1), "audio/wav")
    assert url == our_url(
        "PUT", "inputs/j/audio.wav", expires_in=3600, now=now, content_type="audio/wav"
    )


def test_presigner_refuses_an_expiry_in_the_past() -> None:
    presigner = R2Presigner(SETTINGS, FixedClock(NOW))
    with pytest.raises(ValueError, match="outside"):
        presigner.presign_get("videos/x.mp4", NOW - timedelta(seconds=2))


# --- end to end against moto behind R2's checks (see conftest) -------------------------


def presigner_for(fake_r2: FakeR2, bucket: str, now: datetime | None = None) -> R2Presigner:
    settings = R2Settings(
        account_id=ACCOUNT,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        bucket_name=bucket,
        endpoint=fake_r2.endpoint,
    )
    return R2Presigner(settings, FixedClock(now or datetime.now(UTC)))


@pytest.mark.parametrize(
    "key",
    [
        "inputs/3f0c/image.png",
        "with space/ünïcødé+plus~tilde/日本語.png",
        "reserved !'()*;:@&=$,?#[]%.png",
    ],
)
def test_put_then_get_through_presigned_urls(fake_r2: FakeR2, bucket: str, key: str) -> None:
    presigner = presigner_for(fake_r2, bucket)
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    body = b"\x89PNG\r\n\x1a\n" + key.encode()

    put = httpx.put(
        presigner.presign_put(key, expires_at, "image/png"),
        content=body,
        headers={"Content-Type": "image/png"},
    )
    assert put.status_code == 200, put.text

    stored = fake_r2.client().get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "image/png"

    got = httpx.get(presigner.presign_get(key, expires_at))
    assert got.status_code == 200, got.text
    assert got.content == body


def test_expired_url_is_refused(fake_r2: FakeR2, bucket: str) -> None:
    fake_r2.client().put_object(Bucket=bucket, Key="videos/old.mp4", Body=b"old")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    presigner = presigner_for(fake_r2, bucket, now=an_hour_ago)
    url = presigner.presign_get("videos/old.mp4", an_hour_ago + timedelta(minutes=30))

    response = httpx.get(url)
    assert response.status_code == 403
    assert "Request has expired" in response.text


def _flip_last_hex(url: str) -> str:
    return url[:-1] + ("1" if url.endswith("0") else "0")


@pytest.mark.parametrize(
    "tamper",
    [
        _flip_last_hex,
        lambda url: url.replace("/videos/a.mp4?", "/videos/b.mp4?"),
        lambda url: url.replace("X-Amz-Expires=600&", "X-Amz-Expires=604800&"),
        lambda url: url.replace(f"{ACCESS_KEY_ID}%2F", "SOMEONEELSE%2F"),
    ],
    ids=["signature", "key", "expiry", "access-key"],
)
def test_tampered_url_is_refused(
    fake_r2: FakeR2, bucket: str, tamper: Callable[[str], str]
) -> None:
    client = fake_r2.client()
    client.put_object(Bucket=bucket, Key="videos/a.mp4", Body=b"a")
    client.put_object(Bucket=bucket, Key="videos/b.mp4", Body=b"b")
    now = datetime.now(UTC).replace(microsecond=0)
    url = presigner_for(fake_r2, bucket, now).presign_get(
        "videos/a.mp4", now + timedelta(minutes=10)
    )
    assert httpx.get(url).content == b"a"

    tampered = tamper(url)
    assert tampered != url
    response = httpx.get(tampered)
    assert response.status_code == 403
    assert response.content != b"b"


@pytest.mark.parametrize("headers", [{"Content-Type": "text/html"}, {}])
def test_put_with_another_content_type_is_refused(
    fake_r2: FakeR2, bucket: str, headers: dict[str, str]
) -> None:
    url = presigner_for(fake_r2, bucket).presign_put(
        "inputs/j/image.png", datetime.now(UTC) + timedelta(minutes=5), "image/png"
    )
    response = httpx.put(url, content=b"<script>", headers=headers)
    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text


def test_moto_alone_accepts_expired_and_tampered_urls(fake_r2: FakeR2, bucket: str) -> None:
    """Why the gate exists: if moto ever starts checking, this fails and the gate can go."""
    fake_r2.client().put_object(Bucket=bucket, Key="videos/a.mp4", Body=b"a")
    long_ago = datetime.now(UTC) - timedelta(days=2)
    expired = presigner_for(fake_r2, bucket, now=long_ago).presign_get(
        "videos/a.mp4", long_ago + timedelta(seconds=1)
    )
    fake_r2.gate.enforce = False
    try:
        assert httpx.get(expired).status_code == 200
        assert httpx.get(_flip_last_hex(expired)).status_code == 200
    finally:
        fake_r2.gate.enforce = True


# --- upload URLs: the length and If-None-Match: * signed -------------------------------


@pytest.mark.parametrize("key", KEYS[:3])
@pytest.mark.parametrize("size", [1, 10 * 1024 * 1024])
def test_upload_url_equals_botocore_with_length_and_if_none_match(
    monkeypatch: pytest.MonkeyPatch, key: str, size: int
) -> None:
    frozen = NOW.astimezone(UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: frozen)
    client = boto3.client(
        "s3",
        endpoint_url=r2_endpoint(ACCOUNT),
        region_name="auto",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    params = {
        "Bucket": BUCKET,
        "Key": key,
        "ContentType": "image/png",
        "ContentLength": size,
        "IfNoneMatch": "*",
    }
    expected = client.generate_presigned_url("put_object", Params=params, ExpiresIn=3600)
    ours = presign(
        "PUT",
        BUCKET,
        key,
        account_id=ACCOUNT,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        expires_in=3600,
        now=NOW,
        content_type="image/png",
        content_length=size,
        create_only=True,
    )
    assert ours == expected
    assert parse_qs(urlsplit(ours).query)["X-Amz-SignedHeaders"] == [
        "content-length;content-type;host;if-none-match"
    ]


@pytest.mark.parametrize(
    ("method", "extra", "message"),
    [
        ("GET", {"content_length": 5}, "only a PUT"),
        ("GET", {"create_only": True}, "only a PUT"),
        ("PUT", {"content_length": -1}, "negative"),
    ],
)
def test_lengths_and_conditions_only_on_puts(
    method: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        presign(
            method,
            BUCKET,
            "k",
            account_id=ACCOUNT,
            access_key_id=KEY_ID,
            secret_access_key=SECRET,
            expires_in=60,
            now=NOW,
            **extra,
        )


def upload(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.put(
        url, content=body, headers={"Content-Type": "image/png", "If-None-Match": "*", **headers}
    )


def test_an_upload_url_takes_one_body_of_the_granted_size(fake_r2: FakeR2, bucket: str) -> None:
    presigner = presigner_for(fake_r2, bucket)
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    url = presigner.presign_upload("inputs/uploads/u/image.png", expires_at, "image/png", 1000)

    longer = upload(url, bytes(1001))
    assert longer.status_code == 403
    assert "SignatureDoesNotMatch" in longer.text
    assert upload(url, bytes(11 * 1024 * 1024)).status_code == 403
    without_condition = httpx.put(url, content=bytes(1000), headers={"Content-Type": "image/png"})
    assert without_condition.status_code == 403
    client = fake_r2.client()
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    assert upload(url, b"a" * 1000).status_code == 200
    overwrite = upload(url, b"b" * 1000)
    assert overwrite.status_code == 412, overwrite.text
    stored = client.get_object(Bucket=bucket, Key="inputs/uploads/u/image.png")
    assert stored["Body"].read() == b"a" * 1000
