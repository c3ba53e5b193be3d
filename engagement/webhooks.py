"""Webhook URLs, signatures and the HTTP call.

Signature header: `Milepost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
A receiver recomputes v1 over the raw body with the endpoint's secret, compares in constant
time, and refuses timestamps older than a few minutes (replays). `Milepost-Delivery` carries
the delivery's id, the same on every retry, so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.core.exceptions import ValidationError

SIGNATURE_HEADER = "Milepost-Signature"
DELIVERY_HEADER = "Milepost-Delivery"
TIMEOUT_SECONDS = 10.0


def new_secret() -> str:
    return f"whsec_{secrets.token_hex(24)}"


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def _addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse anything but an http(s) URL with a host, and (unless allowed) one whose host is
    or resolves to a loopback, private, link-local or otherwise non-public address."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError(
            f"{url!r} is not an http(s) URL such as https://crm.example.com/hooks/milepost."
        )
    if parts.username or parts.password:
        raise ValidationError("Put no credentials in the URL; verify the signature instead.")
    if allow_private:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise ValidationError(f"{host} is a loopback address, which this workspace forbids.")
    private = [address for address in _addresses(host) if _is_private(address)]
    if private:
        raise ValidationError(
            f"{host} points at the private address {private[0]}, which this workspace forbids "
            "(a superuser can allow private webhook addresses in its engagement settings)."
        )


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    response_code: int | None
    error: str


def post(
    *, url: str, secret: str, body: bytes, delivery_id: str, timestamp: int, allow_private: bool
) -> Outcome:
    """POST one signed webhook. Any 2xx is success; anything else is a failure to retry."""
    try:
        # Checked again at send time: the name may resolve elsewhere than when it was saved.
        check_url(url, allow_private=allow_private)
    except ValidationError as error:
        return Outcome(False, None, error.messages[0])
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Milepost-Webhooks/1",
        SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False
        )
    except httpx.HTTPError as error:
        return Outcome(False, None, f"{type(error).__name__}: {error}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, "")
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")
