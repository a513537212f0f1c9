"""Allowed networks: is a client address inside one of a user's CIDR networks (IPv4 and IPv6)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NetworkCheck:
    allowed: bool
    invalid: list[str]  # stored entries that are not networks; they never allow anything


def parse_address(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client address, IPv4-mapped IPv6 read as IPv4; None when it is not an address."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def check_address(networks: list[str] | None, address: str | None) -> NetworkCheck:
    """Whether the address may log in: always when no networks are set, else inside one of them."""
    if not networks:
        return NetworkCheck(True, [])
    if not isinstance(networks, list):  # a stored value of the wrong shape allows nothing
        return NetworkCheck(False, [str(networks)])
    parsed: list[Network] = []
    invalid: list[str] = []
    for entry in networks:
        try:
            parsed.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            invalid.append(str(entry))
    client = parse_address(address)
    allowed = client is not None and any(client.version == net.version and client in net for net in parsed)
    return NetworkCheck(allowed, invalid)
