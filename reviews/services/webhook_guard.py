"""Where webhooks may go: the SSRF guard of callback URLs (at submission and at send time).

An integration chooses ``callback_url``; the worker then POSTs signed case JSON
there from inside the operator's network. Without a guard that is a request
forgery primitive against loopback services, RFC 1918 hosts and the cloud
metadata endpoint. Two checks:

- **At submission** (``callback_url_problem``), what can be decided without DNS:
  the scheme (http/https), no credentials in the URL, no localhost names, and an
  IP literal must be public. A 400 naming ``callback_url``.
- **At send time** (``PinnedAddressAdapter``), because DNS can change after
  submission: the host is resolved, *every* address it resolves to must be
  public, and the connection goes to the address that was checked (the name is
  kept for the ``Host`` header, TLS SNI and certificate checks), so there is no
  window between the check and the connect for DNS rebinding.

"Public" means ``ipaddress``'s ``is_global`` and not multicast, and none of the
extra ranges requests-hardened blocks (CG-NAT, NAT64, 6to4, ...). The operator's
allow-list ``HITL_WEBHOOK_ALLOW`` (CIDRs and host names) lets on-premises
receivers through: an address inside an allowed network, or any address of an
allowed host name.

requests-hardened supplies the session (never follows redirects, a default
timeout, a fixed User-Agent) and its list of extra blocked ranges; its own IP
filter has no allow-list and checks only the first address, so the pinning
adapter here replaces it, following the same approach (pool key host = checked
IP; ``assert_hostname``/``server_hostname`` = the name).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.util.connection import allowed_gai_family

from hitl_portal.webhook_allow import AllowList, AllowListError, IPAddress, normal_host, parse_allow_list

ALLOWED_SCHEMES = ("http", "https")

# Named so that a refusal says what was hit; both are also non-global anyway.
CLOUD_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# Names that mean "this machine" or the metadata service without asking DNS.
LOCAL_HOST_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata", "metadata.google.internal"}
)


class DestinationRefused(requests.RequestException):
    """The callback's host is (or resolves to) an address webhooks may not reach."""


@functools.lru_cache(maxsize=8)
def _parse_allow_list(entries: tuple[str, ...]) -> AllowList:
    try:
        return parse_allow_list(entries)
    except AllowListError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


def allow_list() -> AllowList:
    """The allow-list from settings (parsed once per distinct value)."""
    entries = getattr(settings, "HITL_WEBHOOK_ALLOW", ()) or ()
    if isinstance(entries, str):
        entries = entries.split(",")
    return _parse_allow_list(tuple(str(entry) for entry in entries))


def _unwrap(address: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_problem(address: IPAddress, *, allowed: AllowList | None = None) -> str | None:
    """Why a webhook may not go to ``address`` (``None`` when it may)."""
    allowed = allow_list() if allowed is None else allowed
    address = _unwrap(address)
    if allowed.allows_address(address):
        return None
    if address in CLOUD_METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if not address.is_global or any(address in net for net in EXTRA_BLOCKED_NET_RANGES):
        return "not a public address"
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def callback_url_problem(url: str) -> str | None:
    """What can be refused at submission without DNS (``None`` when nothing can).

    The URL has already passed Django's URL syntax check (http/https, a valid host).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on an out-of-range port
    except ValueError:
        return "Must be an http(s) URL."
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "Must be an http(s) URL."
    if parts.username is not None or parts.password is not None:
        return "Must not contain credentials (user:password@); authenticate with the webhook signature."
    if not host:
        return "Must be an http(s) URL."
    allowed = allow_list()
    literal = _ip_literal(host)
    if literal is not None:
        problem = address_problem(literal, allowed=allowed)
        if problem:
            return f"Must be a public address: {host} is {problem}."
        return None
    name = normal_host(host)
    if allowed.allows_host(name):
        return None
    if name in LOCAL_HOST_NAMES or name.endswith(".localhost"):
        return f"Must be a public address: {host} names this machine or its metadata service."
    return None


def resolve_checked(host: str, port: int) -> IPAddress:
    """Resolve ``host`` and return the address to connect to, or raise ``DestinationRefused``.

    Every address the name resolves to must be allowed (a name that resolves to a
    public and a private address is refused: which one a client picks is not ours
    to predict). An allow-listed host name is trusted whatever it resolves to.
    """
    allowed = allow_list()
    literal = _ip_literal(host)
    if literal is not None:
        problem = address_problem(literal, allowed=allowed)
        if problem:
            raise DestinationRefused(f"{host} is {problem}")
        return literal
    try:
        infos = socket.getaddrinfo(host, port, family=allowed_gai_family(), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise requests.ConnectionError(f"could not resolve {host}") from exc
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # A scoped IPv6 address (fe80::1%eth0) comes back without its scope: still link-local.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise requests.ConnectionError(f"could not resolve {host}")
    if not allowed.allows_host(host):
        for address in addresses:
            problem = address_problem(address, allowed=allowed)
            if problem:
                raise DestinationRefused(f"{host} resolves to {_unwrap(address)}, {problem}")
    return addresses[0]


class PinnedAddressAdapter(IPFilterAdapter):
    """Connects to the address ``resolve_checked`` approved, keeping the name for Host, SNI and TLS."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # Skip IPFilterAdapter's own filter (no allow-list, first address only): start from requests'.
        host_params, pool_kwargs = requests.adapters.HTTPAdapter.build_connection_pool_key_attributes(
            self, request, verify, cert
        )
        # A copy: the caller's header mapping may be shared between requests.
        headers: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(request.headers or {})
        hostname = str(host_params["host"])
        port = host_params["port"] or (443 if self._is_https_proto else 80)
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        if host_params["port"] is not None:
            host_header += f":{host_params['port']}"
        headers["Host"] = host_header
        request.headers = headers
        if self._is_https_proto:
            # Verify the certificate against the name, not the pinned address.
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        address = resolve_checked(hostname, int(port))
        host_params["host"] = f"[{address}]" if address.version == 6 else str(address)
        return host_params, pool_kwargs


def webhook_session(*, timeout: float, user_agent: str) -> requests.Session:
    """A session that never follows redirects, ignores proxy variables and pins checked addresses."""
    session = HTTPSession(
        Config(
            ip_filter_enable=False,  # replaced by PinnedAddressAdapter below
            ip_filter_allow_loopback_ips=False,
            never_redirect=True,
            default_timeout=(timeout, timeout),
            user_agent_override=user_agent,
        )
    )
    # A proxy from the environment would make us "connect" to the proxy and check nothing.
    session.trust_env = False
    session.mount("http://", PinnedAddressAdapter(is_https_proto=False))
    session.mount("https://", PinnedAddressAdapter(is_https_proto=True))
    return session
