"""Where a job's webhooks may go: the URL and event rules of `/generate`, and the SSRF
guard (docs/SECURITY.md#webhooks) that keeps the edge from calling into private networks.

The guard runs at creation on the URL as written: http(s) only, and no host that names a
private, loopback, link-local, unique-local, multicast or unspecified address (IPv4, IPv6 or
IPv4 inside IPv6) or a local-only name. A name's addresses are judged again when each
delivery resolves it (the local sender; on Cloudflare, fetch() cannot reach private ranges).
"""

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from contracts.webhooks import TERMINAL_EVENTS, WebhookEventType
from edge_worker.domain.problems import invalid_input

URL_MAX_CHARS = 2048
URL_FIELD = "webhook_url"
EVENTS_FIELD = "webhook_events"
# Names that resolve to the machine itself or to the local network only.
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa")
# A host whose last label is a number is an IPv4 address to URL parsers and resolvers
# (`127.1`, `2130706433`, `0x7f.0.0.1`), whatever else it looks like.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    events: frozenset[WebhookEventType]

    @property
    def fingerprint(self) -> str:
        """The target as one string for the idempotency fingerprint."""
        return " ".join([self.url, *sorted(self.events)])


def parse_target(url: str | None, events: Iterable[str] | None) -> WebhookTarget | None:
    """`webhook_url` and `webhook_events` as sent (events: names, each possibly a
    comma-separated list); None when no webhook was asked for."""
    url = (url or "").strip()
    names = [name.strip() for given in events or () for name in given.split(",")]
    names = [name for name in names if name]
    if not url:
        if names:
            raise invalid_input("webhook_events needs a webhook_url", EVENTS_FIELD)
        return None
    check_url(url)
    return WebhookTarget(url, parse_events(names) if events is not None else TERMINAL_EVENTS)


def parse_events(names: list[str]) -> frozenset[WebhookEventType]:
    known = ", ".join(event.value for event in WebhookEventType)
    if not names:
        raise invalid_input(f"webhook_events must name at least one of {known}", EVENTS_FIELD)
    chosen = set()
    for name in names:
        try:
            chosen.add(WebhookEventType(name))
        except ValueError:
            raise invalid_input(
                f"unknown webhook event {name!r}; events are {known}", EVENTS_FIELD
            ) from None
    return frozenset(chosen)


def check_url(url: str) -> None:
    """The URL's form: absolute http(s) with a host, no fragment, printable ASCII."""
    if len(url) > URL_MAX_CHARS:
        raise invalid_input(f"webhook_url must be at most {URL_MAX_CHARS} characters", URL_FIELD)
    if not url.isascii() or any(not char.isprintable() or char.isspace() for char in url):
        raise invalid_input("webhook_url must be printable ASCII without spaces", URL_FIELD)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid_input(f"webhook_url is malformed: {exc}", URL_FIELD) from None
    if parts.scheme not in ("http", "https"):
        raise invalid_input("webhook_url must be an http or https URL", URL_FIELD)
    if not parts.hostname:
        raise invalid_input("webhook_url has no host", URL_FIELD)
    if parts.fragment:
        raise invalid_input("webhook_url must not have a #fragment", URL_FIELD)
    if port == 0:
        raise invalid_input("webhook_url has port 0", URL_FIELD)


def host_of(url: str) -> str:
    """The URL's host, lower case, without brackets or a trailing dot."""
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def check_destination(target: WebhookTarget, allow_private: bool) -> None:
    """Refuse a URL that names a private address or a local-only name (SSRF), unless the
    edge runs with WEBHOOK_ALLOW_PRIVATE (a local stack calling a local receiver)."""
    if allow_private:
        return
    reason = private_host_reason(host_of(target.url))
    if reason is not None:
        raise invalid_input(
            f"webhook_url must reach a public address: {reason} "
            "(WEBHOOK_ALLOW_PRIVATE=1 allows it on a local edge)",
            URL_FIELD,
        )


def private_host_reason(host: str) -> str | None:
    """Why `host` (as in a URL) is not a public destination, or None if it may be one."""
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES):
        return f"{host} is a local name"
    address = _literal_address(host)
    if address is None:
        if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
            return f"{host} is a numeric host that is not a dotted-quad IPv4 address"
        return None
    if is_forbidden_address(address):
        return f"{address} is a private, loopback, link-local or otherwise non-public address"
    return None


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def is_forbidden_address(address: IPAddress) -> bool:
    """Anything but a globally reachable unicast address; IPv4 carried inside IPv6
    (mapped, 6to4, NAT64) is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_forbidden_address(embedded)
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def forbidden_addresses(addresses: Iterable[str]) -> list[str]:
    """Those of a name's resolved addresses that a delivery must not connect to."""
    return [text for text in addresses if (a := _literal_address(text)) and is_forbidden_address(a)]
