"""The webhook allow-list (``HITL_WEBHOOK_ALLOW``): CIDRs and host names, parsed in one place.

Pure (``ipaddress`` only) so that settings can validate it at start-up, before
Django is configured, and ``reviews.services.webhook_guard`` can apply it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowListError(ValueError):
    """An entry that was meant as an address or network but is not one."""


def normal_host(host: str) -> str:
    """Host names compare case-insensitively and without a trailing dot."""
    return host.strip().rstrip(".").lower()


@dataclass(frozen=True)
class AllowList:
    """The operator's exceptions for on-premises webhook receivers."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)

    def allows_host(self, host: str) -> bool:
        return normal_host(host) in self.hosts


def parse_allow_list(entries: Iterable[str]) -> AllowList:
    """Networks and host names from the entries; raises ``AllowListError`` naming a malformed one."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        # A slash, a colon (never in a host name) or only digits and dots: meant as an address.
        if "/" in text or ":" in text or all(ch in "0123456789." for ch in text):
            raise AllowListError(f"HITL_WEBHOOK_ALLOW: {text!r} is neither a CIDR nor a host name")
        hosts.add(normal_host(text))
    return AllowList(networks=tuple(networks), hosts=frozenset(hosts))
