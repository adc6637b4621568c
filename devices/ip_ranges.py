"""Collector address ranges, as devices/protocol/telemetry-v1.md ("Address ranges") defines them.

The collector checks the same definition on its side (inkmeter_collector.ranges; neither imports
the other); both test suites read tests/data/ip_ranges.json so the two cannot drift.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# An IPv4 /16 (22 minutes of sweeping at the collector's default 50 requests per second); more
# is a typing mistake (0.0.0.0/0) or a scan of someone else's network.
MAX_ADDRESSES = 65_536


class RangeError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AddressRange:
    text: str  # the normalised form, what is stored and served
    first: IPAddress
    last: IPAddress

    @property
    def count(self) -> int:
        return int(self.last) - int(self.first) + 1


def _not_a_range(value: str) -> RangeError:
    return RangeError(
        "not_a_range",
        f"'{value}' is not a network (192.0.2.0/24), an address (192.0.2.10) or a range "
        "(192.0.2.10-192.0.2.50).",
    )


def range_parse(text: str) -> AddressRange:
    """A CIDR network, a 'first-last' range of one family, or one address; raises RangeError."""
    value = text.strip()
    try:
        if "-" in value:
            first_text, _, last_text = value.partition("-")
            first = ipaddress.ip_address(first_text.strip())
            last = ipaddress.ip_address(last_text.strip())
            if first.version != last.version:
                raise RangeError(
                    "mixed_families",
                    f"'{value}' mixes IPv4 and IPv6: give both ends in one family.",
                )
            if int(last) < int(first):
                raise RangeError(
                    "reversed_range",
                    f"'{value}' ends before it starts: give the lower address first.",
                )
            parsed = AddressRange(f"{first}-{last}", first, last)
        elif "/" in value:
            network = ipaddress.ip_network(value, strict=False)
            parsed = AddressRange(str(network), network.network_address, network.broadcast_address)
        else:
            address = ipaddress.ip_address(value)
            parsed = AddressRange(str(address), address, address)
    except RangeError:
        raise
    except ValueError as error:
        raise _not_a_range(value) from error
    if parsed.count > MAX_ADDRESSES:
        raise RangeError(
            "too_many_addresses",
            f"'{value}' covers {parsed.count:,} addresses; at most {MAX_ADDRESSES:,} (an IPv4 /16)"
            " can be swept: give smaller ranges.",
        )
    return parsed


def range_is_valid(text: str) -> bool:
    try:
        range_parse(text)
    except RangeError:
        return False
    return True
