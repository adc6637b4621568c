"""Address ranges, as protocol/telemetry-v1.md ("Address ranges") defines them.

The portal checks the same definition on its side (it cannot import this package, nor this
package the portal); both test suites read tests/data/ip_ranges.json so the two cannot drift.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# An IPv4 /16: a sweep of it takes 22 minutes at the default 50 requests per second; more is
# a typing mistake (0.0.0.0/0) or a scan of someone else's network.
MAX_ADDRESSES = 65_536


class RangeError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AddressRange:
    text: str  # the normalised form
    first: IPAddress
    last: IPAddress
    network: IPNetwork | None  # set for the CIDR form

    @property
    def count(self) -> int:
        return int(self.last) - int(self.first) + 1

    def swept(self) -> Iterator[IPAddress]:
        """The addresses a sweep asks: a network without its network and broadcast addresses
        (ipaddress' hosts()), a first-last range or one address in full."""
        if self.network is not None:
            if self.network.num_addresses == 1:
                yield self.network.network_address
            else:
                yield from self.network.hosts()
            return
        family = type(self.first)
        for number in range(int(self.first), int(self.last) + 1):
            yield family(number)


def _not_a_range(value: str) -> RangeError:
    return RangeError(
        "not_a_range",
        f"'{value}' is not a network (192.0.2.0/24), an address (192.0.2.10) or a range "
        "(192.0.2.10-192.0.2.50).",
    )


def parse_range(text: str) -> AddressRange:
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
            parsed = AddressRange(f"{first}-{last}", first, last, None)
        elif "/" in value:
            network = ipaddress.ip_network(value, strict=False)
            parsed = AddressRange(
                str(network), network.network_address, network.broadcast_address, network
            )
        else:
            address = ipaddress.ip_address(value)
            parsed = AddressRange(str(address), address, address, None)
    except ValueError as error:
        if isinstance(error, RangeError):
            raise
        raise _not_a_range(value) from error
    if parsed.count > MAX_ADDRESSES:
        raise RangeError(
            "too_many_addresses",
            f"'{value}' covers {parsed.count:,} addresses; at most {MAX_ADDRESSES:,} (an IPv4 /16)"
            " can be swept: give smaller ranges.",
        )
    return parsed
