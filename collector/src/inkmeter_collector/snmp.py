"""A thin asyncio wrapper over pysnmp: GET, table walks by GETBULK (GETNEXT for v1), discovery
probes, timeouts and retries, and a count of the bytes each agent cost on the wire.

Values come back decoded (`mib.SnmpValue`); objects an agent does not have are left out.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as usm
from pysnmp.proto import rfc1905
from pysnmp.proto.rfc1902 import ObjectName

from inkmeter_collector.mib import SnmpValue

log = logging.getLogger(__name__)

AUTH_PROTOCOLS: dict[str, Any] = {
    "none": usm.usmNoAuthProtocol,
    "md5": usm.usmHMACMD5AuthProtocol,
    "sha": usm.usmHMACSHAAuthProtocol,
    "sha224": usm.usmHMAC128SHA224AuthProtocol,
    "sha256": usm.usmHMAC192SHA256AuthProtocol,
    "sha384": usm.usmHMAC256SHA384AuthProtocol,
    "sha512": usm.usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "none": usm.usmNoPrivProtocol,
    "des": usm.usmDESPrivProtocol,
    "3des": usm.usm3DESEDEPrivProtocol,
    "aes": usm.usmAesCfb128Protocol,
    "aes192": usm.usmAesCfb192Protocol,
    "aes256": usm.usmAesCfb256Protocol,
}


class SnmpError(Exception):
    """The agent did not answer, or answered with an error we cannot work around."""


class UnresolvableHost(SnmpError):
    """The name has no address: no other community or retry can help."""


def parse_address(text: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[IPv6]`, `[IPv6]:port` or a bare IPv6 address: the host and the
    port (None when the text names none). Raises ValueError with the reason."""
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text}: write an IPv6 address with a port as [address]:port")
        port_text = rest[1:] if rest else None
        if not _is_ipv6(host):
            raise ValueError(f"{text}: [{host}] is not an IPv6 address")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text  # a name, an IPv4 address, or a bare IPv6 address (several colons)
    if not host:
        raise ValueError(f"{text!r}: no host")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


@dataclass(frozen=True)
class Credentials:
    """SNMP v1/v2c community, or an SNMPv3 user (authentication and privacy optional)."""

    version: str = "2c"  # "1", "2c" or "3"
    community: str = "public"
    user: str = ""
    auth_protocol: str = "none"
    auth_key: str = ""
    priv_protocol: str = "none"
    priv_key: str = ""
    context: str = ""

    def describe(self) -> str:
        if self.version == "3":
            return f"v3 user {self.user}"
        return f"v{self.version} community {self.community}"

    def auth_data(self) -> Any:
        if self.version == "3":
            return UsmUserData(
                self.user,
                authKey=self.auth_key or None,
                privKey=self.priv_key or None,
                authProtocol=AUTH_PROTOCOLS[self.auth_protocol],
                privProtocol=PRIV_PROTOCOLS[self.priv_protocol],
            )
        return CommunityData(self.community, mpModel=0 if self.version == "1" else 1)

    def context_data(self) -> Any:
        return ContextData(contextName=self.context.encode()) if self.context else ContextData()


@dataclass(frozen=True)
class Target:
    host: str
    port: int = 161
    credentials: Credentials = Credentials()


class _Meter:
    """Bytes sent to and received from each agent address, UDP payload only."""

    def __init__(self) -> None:
        self.by_peer: defaultdict[tuple[str, int], int] = defaultdict(int)


class _CountingUdpTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    meter: ClassVar[_Meter] = _Meter()

    def send_message(self, outgoing_message: bytes, transport_address: Any) -> Any:
        self.meter.by_peer[tuple(transport_address[:2])] += len(outgoing_message)
        return super().send_message(outgoing_message, transport_address)

    def datagram_received(self, datagram: bytes, transport_address: Any) -> Any:
        self.meter.by_peer[tuple(transport_address[:2])] += len(datagram)
        return super().datagram_received(datagram, transport_address)


class _CountingUdpTarget(UdpTransportTarget):  # type: ignore[misc]
    PROTO_TRANSPORT = _CountingUdpTransport


class _CountingUdp6Transport(udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    meter: ClassVar[_Meter] = _CountingUdpTransport.meter

    def send_message(self, outgoing_message: bytes, transport_address: Any) -> Any:
        self.meter.by_peer[tuple(transport_address[:2])] += len(outgoing_message)
        return super().send_message(outgoing_message, transport_address)

    def datagram_received(self, datagram: bytes, transport_address: Any) -> Any:
        self.meter.by_peer[tuple(transport_address[:2])] += len(datagram)
        return super().datagram_received(datagram, transport_address)


class _CountingUdp6Target(Udp6TransportTarget):  # type: ignore[misc]
    PROTO_TRANSPORT = _CountingUdp6Transport


def _decode(value: Any) -> SnmpValue | None:
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView):
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    return None


def _is_end(value: Any) -> bool:
    return isinstance(value, rfc1905.EndOfMibView)


def _object(oid: str) -> Any:
    return ObjectType(ObjectIdentity(ObjectName(oid)))


class _Engine:
    """A pysnmp engine and what it has seen. pysnmp keeps a configuration row for every agent
    it ever talked to, so a long-lived engine grows with the fleet; the client swaps in a fresh
    engine every RECYCLE_AFTER agents and closes the old one once its requests are done."""

    def __init__(self) -> None:
        self.engine = SnmpEngine()
        self.peers: set[tuple[str, int]] = set()
        self.active = 0
        self.retired = False

    def release(self) -> None:
        self.active -= 1
        if self.retired and self.active == 0:
            self.engine.close_dispatcher()


RECYCLE_AFTER = 64


class SnmpClient:
    """SNMP for the whole process; any number of concurrent requests."""

    def __init__(
        self, *, timeout_s: float = 1.0, retries: int = 1, max_repetitions: int = 12
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_repetitions = max_repetitions
        self._current = _Engine()
        self._meter = _CountingUdpTransport.meter
        self._bulk_refused: set[tuple[str, int]] = set()

    def close(self) -> None:
        self._current.retired = True
        self._current.active += 1
        self._current.release()

    def _engine_for(self, peer: tuple[str, int]) -> _Engine:
        holder = self._current
        if peer not in holder.peers and len(holder.peers) >= RECYCLE_AFTER:
            holder.retired = True
            if holder.active == 0:
                holder.engine.close_dispatcher()
            holder = self._current = _Engine()
        holder.peers.add(peer)
        holder.active += 1
        return holder

    def traffic_bytes(self, host: str, port: int) -> int:
        return self._meter.by_peer.get((host, port), 0)

    async def _transport(self, target: Target, *, timeout_s: float | None = None) -> Any:
        # IPv4 first, as printers mostly are; a name with only an IPv6 address still works.
        if _is_ipv6(target.host):
            kinds = [_CountingUdp6Target]
        else:
            kinds = [_CountingUdpTarget, _CountingUdp6Target]
        reasons = []
        for kind in kinds:
            try:
                return await kind.create(
                    (target.host, target.port),
                    timeout=timeout_s if timeout_s is not None else self.timeout_s,
                    retries=self.retries,
                )
            except Exception as error:  # pysnmp wraps gaierror; idna rejects malformed names
                cause = error.__context__ if isinstance(error.__context__, OSError) else error
                reasons.append(
                    cause.strerror
                    if isinstance(cause, socket.gaierror) and cause.strerror
                    else str(cause)
                )
        raise UnresolvableHost(f"cannot resolve {target.host} ({reasons[0]})")

    async def resolve(self, target: Target) -> str:
        transport = await self._transport(target)
        return str(transport.transport_address[0])

    async def _request(
        self, kind: str, target: Target, oids: Sequence[str], transport: Any, **extra: Any
    ) -> tuple[Any, int, int, list[tuple[str, Any]]]:
        credentials = target.credentials
        holder = self._engine_for((target.host, target.port))
        args = (holder.engine, credentials.auth_data(), transport, credentials.context_data())
        objects = [_object(oid) for oid in oids]
        try:
            if kind == "get":
                result = await get_cmd(*args, *objects, lookupMib=False)
            elif kind == "next":
                result = await next_cmd(*args, *objects, lookupMib=False)
            else:
                result = await bulk_cmd(
                    *args, 0, extra["max_repetitions"], *objects, lookupMib=False
                )
        finally:
            holder.release()
        error_indication, error_status, error_index, var_binds = result
        if error_indication:
            raise SnmpError(f"{target.host}: {error_indication}")
        pairs = [(str(name), value) for name, value in var_binds]
        return error_indication, int(error_status), int(error_index), pairs

    async def get(self, target: Target, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """GET the objects; ones the agent lacks are left out (v1 noSuchName is worked around)."""
        transport = await self._transport(target)
        wanted = list(dict.fromkeys(oids))
        found: dict[str, SnmpValue] = {}
        for start in range(0, len(wanted), 24):  # keep each request and answer well under 1,500 B
            chunk = wanted[start : start + 24]
            while chunk:
                _, status, index, pairs = await self._request("get", target, chunk, transport)
                if status == 0:
                    for oid, value in pairs:
                        decoded = _decode(value)
                        if decoded is not None:
                            found[oid] = decoded
                    break
                if status == 2 and 0 < index <= len(chunk):  # noSuchName (v1): drop, ask again
                    del chunk[index - 1]
                    continue
                raise SnmpError(f"{target.host}: GET error status {status} at {index}")
        return found

    async def walk(
        self,
        target: Target,
        columns: Sequence[str],
        *,
        max_rows: int = 200,
        repetitions: int | None = None,
    ) -> dict[str, SnmpValue]:
        """Walk table columns side by side (one GETBULK answers a slice of every column).

        Each column stops at the end of its own subtree, so an agent that breaks off a walk
        elsewhere (okilan_9450g's interfaces table) cannot hide the columns asked for here.
        """
        transport = await self._transport(target)
        peer = (target.host, target.port)
        use_bulk = target.credentials.version != "1" and peer not in self._bulk_refused
        cursor = {column: column for column in columns}
        found: dict[str, SnmpValue] = {}
        rows = 0
        while cursor and rows < max_rows:
            names = list(cursor)
            oids = [cursor[name] for name in names]
            if use_bulk:
                # The caller's guess of the table's length saves the bytes of rows read past it.
                wanted = min(repetitions or self.max_repetitions, self.max_repetitions)
                try:
                    _, status, index, pairs = await self._request(
                        "bulk", target, oids, transport, max_repetitions=max(1, wanted)
                    )
                except SnmpError:
                    # Some agents drop GETBULK; try GETNEXT once before giving up on the target.
                    log.debug("GETBULK failed on %s, falling back to GETNEXT", target.host)
                    self._bulk_refused.add(peer)
                    use_bulk = False
                    continue
            else:
                _, status, index, pairs = await self._request("next", target, oids, transport)
            if status == 2 and 0 < index <= len(names):  # v1 noSuchName: that column has ended
                del cursor[names[index - 1]]
                continue
            if status != 0:
                if use_bulk and status == 1:  # tooBig
                    self.max_repetitions = max(1, self.max_repetitions // 2)
                    continue
                raise SnmpError(f"{target.host}: walk error status {status} at {index}")
            if not pairs:
                break
            for position, (oid, value) in enumerate(pairs):
                name = names[position % len(names)]
                if name not in cursor:
                    continue
                if _is_end(value) or not oid.startswith(name + ".") or oid == cursor[name]:
                    del cursor[name]
                    continue
                cursor[name] = oid
                decoded = _decode(value)
                if decoded is not None:
                    found[oid] = decoded
            rows += max(1, len(pairs) // len(names))
        return found

    async def first_rows(self, target: Target, columns: Sequence[str]) -> set[str]:
        """The columns that hold at least one row: one GETNEXT for all of them. Tells a poll
        which tables to walk, so an absent table costs one object instead of a GETBULK."""
        transport = await self._transport(target)
        asked = list(columns)
        present: set[str] = set()
        while asked:
            _, status, index, pairs = await self._request("next", target, asked, transport)
            if status == 2 and 0 < index <= len(asked):
                del asked[index - 1]
                continue
            if status != 0:
                raise SnmpError(f"{target.host}: GETNEXT error status {status} at {index}")
            for column, (oid, value) in zip(asked, pairs, strict=False):
                if not _is_end(value) and oid.startswith(column + "."):
                    present.add(column)
            break
        return present

    async def probe(
        self, target: Target, *, timeout_s: float | None = None
    ) -> dict[str, SnmpValue]:
        """One request that tells whether a printer answers: sysDescr, sysObjectID, the first
        hrDeviceType row and the first Printer-MIB object, all as GETNEXT."""
        oids = ["1.3.6.1.2.1.1.1", "1.3.6.1.2.1.1.2", "1.3.6.1.2.1.25.3.2.1.2", "1.3.6.1.2.1.43"]
        transport = await self._transport(target, timeout_s=timeout_s)
        found: dict[str, SnmpValue] = {}
        while oids:
            _, status, index, pairs = await self._request("next", target, oids, transport)
            if status == 2 and 0 < index <= len(oids):
                del oids[index - 1]
                continue
            if status != 0:
                raise SnmpError(f"{target.host}: probe error status {status}")
            for oid, value in pairs:
                decoded = _decode(value)
                if decoded is not None:
                    found[oid] = decoded
            break
        return found
