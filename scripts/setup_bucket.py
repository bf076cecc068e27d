"""Apply the R2 bucket's lifecycle and CORS rules: an operator tool (boto3), never the Worker.

    R2_ACCOUNT_ID=... R2_ACCESS_KEY_ID=... R2_SECRET_ACCESS_KEY=... R2_BUCKET_NAME=... \\
        .venv/bin/python scripts/setup_bucket.py --origin https://app.example.com

Lifecycle: objects under `inputs/` and `videos/` are deleted 1 day after upload. The
edge's own sweep deletes them after 6 hours; this is the safety net for whatever the sweep
misses, and R2 counts lifecycle ages in whole days. Rules with other IDs (R2's default
multipart-abort rule, anything an operator added) are kept.

CORS: browsers PUT inputs straight to presigned URLs and read results back, so the listed
origins may PUT/GET/HEAD with a `content-type` header and read `ETag`. This tool owns the
bucket's CORS configuration: it replaces whatever rules were there with this one.

Idempotent: it reads the current rules and writes only what differs; `--dry-run` writes
nothing. It prints what it did either way.
"""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contracts.settings import SettingsError
from edge_worker.adapters.cloudflare.presign import REGION, R2Settings, r2_endpoint
from edge_worker.adapters.local.s3_blobs import s3_client

EXPIRE_AFTER_DAYS = 1
EXPIRING_PREFIXES = ("inputs/", "videos/")
CORS_RULE_ID = "avatar-direct-upload"
CORS_METHODS = ("PUT", "GET", "HEAD")
CORS_HEADERS = ("content-type", "if-none-match")
CORS_EXPOSE = ("ETag",)
DEFAULT_MAX_AGE = 3600


def lifecycle_rules() -> list[dict[str, Any]]:
    return [
        {
            "ID": f"avatar-expire-{prefix.rstrip('/')}",
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": EXPIRE_AFTER_DAYS},
        }
        for prefix in EXPIRING_PREFIXES
    ]


def cors_rule(origins: Sequence[str], max_age: int) -> dict[str, Any]:
    return {
        "ID": CORS_RULE_ID,
        "AllowedOrigins": list(origins),
        "AllowedMethods": list(CORS_METHODS),
        "AllowedHeaders": list(CORS_HEADERS),
        "ExposeHeaders": list(CORS_EXPOSE),
        "MaxAgeSeconds": max_age,
    }


def _lifecycle_shape(rule: Mapping[str, Any]) -> tuple[object, ...]:
    """What our rules set, read the same way whether the prefix sits in `Filter` or in the
    legacy top-level `Prefix` a store may answer with."""
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix"))
    return (rule.get("ID"), prefix, rule.get("Status"), rule.get("Expiration", {}).get("Days"))


def _cors_shape(rule: Mapping[str, Any]) -> tuple[object, ...]:
    """A CORS rule as a browser sees it: order of list entries and the rule ID do not matter."""
    return (
        sorted(rule.get("AllowedOrigins", [])),
        sorted(rule.get("AllowedMethods", [])),
        sorted(header.lower() for header in rule.get("AllowedHeaders", [])),
        sorted(rule.get("ExposeHeaders", [])),
        rule.get("MaxAgeSeconds"),
    )


def _current(call: Any, bucket: str, field: str, missing_code: str) -> list[dict[str, Any]]:
    try:
        return list(call(Bucket=bucket)[field])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == missing_code:
            return []
        raise


def apply_lifecycle(client: Any, bucket: str, dry_run: bool) -> str:
    current = _current(
        client.get_bucket_lifecycle_configuration,
        bucket,
        "Rules",
        "NoSuchLifecycleConfiguration",
    )
    wanted = lifecycle_rules()
    ours = {rule["ID"] for rule in wanted}
    by_id = {rule.get("ID"): rule for rule in current}
    changes = [
        f"{'update' if rule['ID'] in by_id else 'add'} {rule['ID']} "
        f"({rule['Filter']['Prefix']} after {EXPIRE_AFTER_DAYS} day)"
        for rule in wanted
        if rule["ID"] not in by_id or _lifecycle_shape(by_id[rule["ID"]]) != _lifecycle_shape(rule)
    ]
    kept = [rule for rule in current if rule.get("ID") not in ours]
    if not changes:
        return f"lifecycle: unchanged (rules: {len(current)})"
    if not dry_run:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": kept + wanted}
        )
    verb = "would " if dry_run else ""
    return f"lifecycle: {verb}{', '.join(changes)}; other rules kept: {len(kept)}"


def apply_cors(
    client: Any, bucket: str, origins: Sequence[str], max_age: int, dry_run: bool
) -> str:
    current = _current(client.get_bucket_cors, bucket, "CORSRules", "NoSuchCORSConfiguration")
    wanted = cors_rule(origins, max_age)
    summary = (
        f"{'/'.join(CORS_METHODS)} from {', '.join(origins)}, headers "
        f"{', '.join(CORS_HEADERS)}, expose {', '.join(CORS_EXPOSE)}, max age {max_age} s"
    )
    if [_cors_shape(rule) for rule in current] == [_cors_shape(wanted)]:
        return f"cors: unchanged ({summary})"
    if not dry_run:
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [wanted]})
    verb = "would set" if dry_run else "set"
    return f"cors: {verb} {summary}; previous rules replaced: {len(current)}"


def r2_client(settings: R2Settings) -> Any:
    """The S3 client of the local runtime's S3 blob store, pointed at R2."""
    return s3_client(
        settings.endpoint or r2_endpoint(settings.account_id),
        REGION,
        settings.access_key_id,
        settings.secret_access_key,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Apply the R2 bucket's lifecycle and CORS rules.")
    parser.add_argument(
        "--origin",
        dest="origins",
        action="append",
        required=True,
        help="an origin allowed to PUT/GET from browsers, e.g. https://app.example.com "
        "(repeat for several; '*' allows any)",
    )
    parser.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MAX_AGE,
        help=f"seconds browsers may cache a CORS preflight (default {DEFAULT_MAX_AGE})",
    )
    parser.add_argument("--endpoint", help="S3 endpoint instead of the account's R2 URL (tests)")
    parser.add_argument("--dry-run", action="store_true", help="print, change nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    args = parse_args(argv)
    try:
        settings = R2Settings.from_env(env, endpoint=args.endpoint)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = r2_client(settings)
    bucket = settings.bucket_name
    print(f"bucket {bucket} at {client.meta.endpoint_url}")
    try:
        print(apply_lifecycle(client, bucket, args.dry_run))
        print(apply_cors(client, bucket, args.origins, args.max_age, args.dry_run))
    except (BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
