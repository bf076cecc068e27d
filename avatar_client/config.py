"""Where the API is and which key to use: arguments, the environment, then `avatar dev`'s file."""

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from avatar_client.errors import MissingApiKey

DEFAULT_URL = "http://127.0.0.1:8787"
DEV_DATA_DIR = Path(".avatar")
"""`avatar dev`'s default data directory, relative to the working directory."""
DEV_SECRETS_FILE = "dev-secrets.json"
"""The file in the data directory where `avatar dev` keeps its generated secrets."""
URL_ENV = "AVATAR_URL"
API_KEY_ENV = "AVATAR_API_KEY"


def resolve_url(explicit: str | None, env: Mapping[str, str]) -> str:
    return (explicit or env.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def is_loopback(url: str) -> bool:
    """Whether `url` names this machine, where a local dev key file may belong to it."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(explicit: str | None, env: Mapping[str, str], url: str, cwd: Path) -> str:
    """The key argument, else `AVATAR_API_KEY`, else (for a local edge only) the key that
    `avatar dev` generated, so that a remote server never receives a local secret."""
    if explicit:
        return explicit
    if env.get(API_KEY_ENV):
        return env[API_KEY_ENV]
    path = cwd / DEV_DATA_DIR / DEV_SECRETS_FILE
    if is_loopback(url):
        key = dev_api_key(path)
        if key:
            return key
    raise MissingApiKey(
        f"no API key: pass api_key, set {API_KEY_ENV}, or run `avatar dev` here "
        f"(a local edge's key is read from {path})",
        code="MISSING_API_KEY",
    )


def dev_api_key(path: Path) -> str | None:
    """The first key of `API_KEYS` in a dev secrets file; None when there is none to read."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = stored.get("API_KEYS") if isinstance(stored, dict) else None
    if not isinstance(keys, str):
        return None
    return next((key.strip() for key in keys.split(",") if key.strip()), None)
