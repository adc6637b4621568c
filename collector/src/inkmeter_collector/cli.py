"""`inkmeter-collector`: discover, add, poll, run, poll-now, upload, status, requeue."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from inkmeter_collector import AGENT, config, control, discovery, printer, upload, urgent
from inkmeter_collector.outbox import Outbox, utcnow
from inkmeter_collector.poll import PollResult, poll
from inkmeter_collector.ranges import RangeError, parse_range
from inkmeter_collector.snmp import (
    Credentials,
    SnmpClient,
    SnmpError,
    Target,
    UnresolvableHost,
    parse_address,
)

log = logging.getLogger("inkmeter_collector")


# --- output --------------------------------------------------------------------------------------


def supply_summary(reading: printer.PrinterReading) -> str:
    parts = []
    for supply in reading.supplies:
        name = f"{supply.color} {supply.kind}" if supply.color else supply.kind
        if supply.percent is not None:
            value = f"{supply.percent:g}%" + (" free" if supply.is_receptacle else "")
        elif supply.level_state != "ok":
            value = supply.level_state.replace("_", " ")
        else:
            value = f"{supply.level:g}" if supply.level is not None else "?"
        parts.append(f"{name} {value}")
    return ", ".join(parts) or "no supplies reported"


def describe(result: PollResult, target: Target) -> str:
    identity = result.reading.identity
    return (
        f"{target.host}:{target.port}  {identity.manufacturer or '?'}  {identity.model or '?'}"
        f"  serial {identity.serial or 'none'}  [{supply_summary(result.reading)}]"
    )


class ProgressBar:
    """Plain-text progress on stderr: redrawn in place on a terminal, every 10 % otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_draw = 0.0
        self._last_decile = -1

    def __call__(self, progress: discovery.Progress) -> None:
        share = progress.done / progress.total if progress.total else 1.0
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw < 0.1 and progress.done < progress.total:
                return
            self._last_draw = now
            filled = int(share * 30)
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {progress.done}/{progress.total}"
                f" addresses, {progress.found} printers, {now - progress.started:.0f} s"
            )
        else:
            decile = int(share * 10)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(
                f"progress: {progress.done}/{progress.total} addresses, {progress.found} printers\n"
            )
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --- shared plumbing -----------------------------------------------------------------------------


def _client(cfg: config.Config) -> SnmpClient:
    return SnmpClient(timeout_s=cfg.snmp_timeout_s, retries=cfg.snmp_retries)


def _credentials_dict(credentials: Credentials) -> dict[str, str]:
    return {key: str(value) for key, value in vars(credentials).items()}


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform == "win32":
        return stop  # no loop signal handlers there: Ctrl-C raises KeyboardInterrupt instead
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    return stop


def _poll_request_event() -> asyncio.Event:
    """Set by SIGUSR1 (`poll-now`): the running service polls every printer at once."""
    requested = asyncio.Event()
    if control.SUPPORTED:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, requested.set)
    return requested


def _ignore_poll_requests() -> None:
    """Past the loop, a late SIGUSR1 must not end the process (its default action)."""
    if control.SUPPORTED:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)


async def _wait_any(events: Sequence[asyncio.Event], timeout: float) -> None:
    """Until one of `events` is set or `timeout` seconds have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _installation(outbox: Outbox) -> str:
    """This collector's own id, made once and kept in the outbox: it keeps the identities
    derived for printers without a serial apart from another site's printer at the same
    address."""
    installation = outbox.get_setting("installation_id")
    if installation is None:
        installation = str(uuid.uuid4())
        outbox.set_setting("installation_id", installation)
    return installation


def _derived_warning(target: Target, identity: printer.Identity) -> str:
    return (
        f"{target.host}:{target.port}: printer exposes no serial number or MAC address; reporting"
        f" it as {identity.serial}, derived from this address and its model. Give its label's"
        " serial under [[printers]] to keep its history if its address changes"
    )


def _remember(outbox: Outbox, found: discovery.Found) -> bool:
    identity = found.result.reading.identity
    where = f"{found.target.host}:{found.target.port}"
    if not identity.serial:
        outbox.warn(
            f"{where}: printer exposes no serial number or MAC address; add it under"
            " [[printers]] with its label's serial to poll it"
        )
        return False
    if identity.serial_source == printer.DERIVED_SOURCE and all(
        device.serial != identity.serial for device in outbox.devices()
    ):
        outbox.warn(_derived_warning(found.target, identity))
    outbox.remember_device(
        serial=identity.serial,
        address=found.target.host,
        port=found.target.port,
        credentials=_credentials_dict(found.target.credentials),
        model=identity.model,
    )
    return True


def _portal(cfg: config.Config) -> upload.Portal | None:
    if not cfg.can_upload or not cfg.portal_url or not cfg.key_id or not cfg.secret:
        return None
    return upload.Portal(
        url=cfg.portal_url,
        key_id=cfg.key_id,
        secret=cfg.secret,
        proxy=cfg.proxy,
        verify=cfg.ca_file or True,
    )


# --- commands ------------------------------------------------------------------------------------


async def cmd_discover(cfg: config.Config, args: argparse.Namespace, outbox: Outbox) -> int:
    ranges = list(args.range or cfg.ranges or discovery.default_ranges())
    try:
        ranges = [parse_range(entry).text for entry in ranges]
    except RangeError as error:
        print(f"--range: {error.message}", file=sys.stderr)
        return 2
    if not ranges:
        print("no address range given and the host's own subnet is unknown", file=sys.stderr)
        return 2
    credentials = [Credentials(community=c) for c in args.community] or cfg.credentials()
    client = _client(cfg)
    bar = ProgressBar()
    stop = _stop_event()

    def on_found(found: discovery.Found) -> None:
        _remember(outbox, found)
        if bar.tty:
            sys.stderr.write("\r\033[K")
        print(describe(found.result, found.target), flush=True)

    print(
        f"sweeping {', '.join(ranges)} ({discovery.count_addresses(ranges)} addresses)",
        file=sys.stderr,
    )
    try:
        found = await discovery.sweep(
            client,
            ranges,
            credentials,
            port=args.port or cfg.snmp_port,
            rate_per_s=args.rate or cfg.discovery_rate_per_s,
            time_limit_s=args.time_limit or cfg.discovery_time_limit_s,
            timeout_s=cfg.snmp_timeout_s,
            stop=stop,
            on_found=on_found,
            on_progress=bar,
            installation=_installation(outbox),
        )
    finally:
        bar.close()
        client.close()
    if not stop.is_set():
        outbox.discovery_done()
    print(f"{len(found)} printers found", file=sys.stderr)
    return 0


async def _poll_target(
    client: SnmpClient,
    cfg: config.Config,
    host: str,
    port: int,
    community: str | None,
    serial: str | None = None,
    installation: str | None = None,
) -> tuple[Target, PollResult] | None:
    tried = [Credentials(community=community)] if community else cfg.credentials()
    for credentials in tried:
        target = Target(host=host, port=port, credentials=credentials)
        try:
            return target, await poll(
                client, target, serial_override=serial, installation=installation
            )
        except UnresolvableHost:
            raise  # no community can help
        except SnmpError as error:
            log.debug("%s with %s: %s", host, credentials.describe(), error)
    return None


def _address(cfg: config.Config, args: argparse.Namespace) -> tuple[str, int]:
    """The printer's host and port from `HOST`, `HOST:PORT` or `[IPv6]:PORT` and --port."""
    host, port = parse_address(args.address)
    if port is not None and args.port and args.port != port:
        raise ValueError(f"{args.address}: port {port} here, but --port {args.port}")
    return host, port or args.port or cfg.snmp_port


async def _poll_address(
    cfg: config.Config, args: argparse.Namespace, outbox: Outbox
) -> tuple[Target, PollResult] | str:
    """What polling the printer named on the command line gave, or why it could not."""
    try:
        host, port = _address(cfg, args)
    except ValueError as error:
        return str(error)
    client = _client(cfg)
    try:
        polled = await _poll_target(
            client, cfg, host, port, args.community, args.serial, _installation(outbox)
        )
    except UnresolvableHost as error:
        return str(error)
    finally:
        client.close()
    return polled if polled is not None else f"{host}:{port}: no SNMP answer"


async def cmd_poll(cfg: config.Config, args: argparse.Namespace, outbox: Outbox) -> int:
    polled = await _poll_address(cfg, args, outbox)
    if isinstance(polled, str):
        print(polled, file=sys.stderr)
        return 1
    target, result = polled
    identity = result.reading.identity
    if identity.serial_source == printer.DERIVED_SOURCE and not args.enqueue:
        print(f"warning: {_derived_warning(target, identity)}", file=sys.stderr)
    if args.json:
        has_serial = result.reading.identity.serial
        print(
            json.dumps(
                result.snapshot() if has_serial else result.readings,
                indent=2,
                default=lambda value: value.hex() if isinstance(value, bytes) else str(value),
            )
        )
    else:
        print(describe(result, target))
        print(f"poll took {result.duration_s * 1000:.0f} ms and {result.snmp_bytes} bytes of SNMP")
    if args.enqueue:
        if not result.reading.identity.serial:
            print("no serial: not queued", file=sys.stderr)
            return 1
        outbox.put([result.snapshot()])
        _remember(outbox, discovery.Found(target, result))
    return 0


async def cmd_add(cfg: config.Config, args: argparse.Namespace, outbox: Outbox) -> int:
    polled = await _poll_address(cfg, args, outbox)
    if isinstance(polled, str):
        print(polled, file=sys.stderr)
        return 1
    target, result = polled
    if not _remember(outbox, discovery.Found(target, result)):
        return 1
    print("added " + describe(result, target))
    return 0


def _examine(cfg: config.Config, outbox: Outbox, snapshot: dict[str, Any]) -> list[str]:
    """Why this snapshot must be uploaded at once (urgent.examine), remembering what it saw so
    that a supply that stays low or an alert that stays raised does not upload on every poll."""
    serial = str(snapshot["device"]["serial"])
    key = f"seen:{serial}"
    stored = outbox.get_setting(key)
    previous = urgent.Seen.from_json(json.loads(stored)) if stored else urgent.Seen()
    reasons, seen = urgent.examine(snapshot, cfg.reorder_threshold(serial), previous)
    if seen != previous:
        outbox.set_setting(key, json.dumps(seen.to_json()))
    return [f"{serial}: {reason}" for reason in reasons]


async def poll_all(
    cfg: config.Config, outbox: Outbox, client: SnmpClient, reasons: list[str] | None = None
) -> int:
    """Poll every known printer once and queue the snapshots; returns how many were queued.
    With `reasons`, appends why any of them must be uploaded at once."""
    slots = asyncio.Semaphore(cfg.concurrency)
    queued = 0
    configured = {(entry.address, entry.port): entry for entry in cfg.printers}
    known = {(device.address, device.port): device for device in outbox.devices()}
    installation = _installation(outbox)

    async def one(address: str, port: int) -> None:
        nonlocal queued
        async with slots:
            entry = configured.get((address, port))
            device = known.get((address, port))
            if device is not None and (entry is None or not entry.community):
                creds = device.credentials
                attempts: list[Credentials] = [Credentials(**creds)]
            elif entry is not None and entry.community:
                attempts = [Credentials(community=entry.community)]
            else:
                attempts = cfg.credentials()
            for credentials in attempts:
                target = Target(host=address, port=port, credentials=credentials)
                try:
                    result = await poll(
                        client,
                        target,
                        serial_override=entry.serial if entry else None,
                        installation=installation,
                    )
                except SnmpError as error:
                    log.info("%s: %s", address, error)
                    continue
                if _remember(outbox, discovery.Found(target, result)):
                    snapshot = result.snapshot()
                    outbox.put([snapshot])
                    queued += 1
                    if reasons is not None:
                        reasons.extend(_examine(cfg, outbox, snapshot))
                return
            log.warning("%s:%s did not answer this poll", address, port)

    await asyncio.gather(*(one(address, port) for address, port in {*configured, *known}))
    return queued


def _cached_portal_config(cfg: config.Config, outbox: Outbox) -> config.Config:
    cached = outbox.get_setting("portal_config")
    if cached:
        with contextlib.suppress(ValueError, config.ConfigError):
            return config.apply_portal(cfg, json.loads(cached))
    return cfg


def refresh_portal_config(
    cfg: config.Config, base: config.Config, outbox: Outbox, portal: upload.Portal | None
) -> config.Config:
    if portal is None:
        return cfg
    warnings: list[str] = []
    try:
        answer = portal.fetch_config()
        updated = config.apply_portal(base, answer, on_warning=warnings.append)
    except Exception as error:  # the portal may be down for days: keep the last known config
        log.warning("cannot fetch the portal configuration (%s); keeping the last one", error)
        return cfg
    text = json.dumps(answer)
    is_new = text != outbox.get_setting("portal_config")
    for message in warnings:
        log.warning("%s", message)
        if is_new:  # once per answer in `status`, not once per check
            outbox.warn(message)
    outbox.set_setting("portal_config", text)
    return updated


async def cmd_run(cfg: config.Config, args: argparse.Namespace, outbox: Outbox) -> int:
    stop = _stop_event()
    # The handler first: a `poll-now` that finds the pid must not meet SIGUSR1's default action.
    poll_requested = _poll_request_event()
    pid_file = control.PidFile(control.pid_path(cfg.outbox_path))
    try:
        pid_file.acquire()
    except control.AlreadyRunning as error:
        print(error, file=sys.stderr)
        return 1
    try:
        return await _run(cfg, args, outbox, stop, poll_requested)
    finally:
        pid_file.release()
        _ignore_poll_requests()


async def _run(
    cfg: config.Config,
    args: argparse.Namespace,
    outbox: Outbox,
    stop: asyncio.Event,
    poll_requested: asyncio.Event,
) -> int:
    base = cfg
    cfg = _cached_portal_config(cfg, outbox)
    portal = _portal(cfg)
    client = _client(cfg)
    # Everything is due at start: configuration, discovery, a poll and an upload.
    next_config = next_discovery = next_poll = next_upload = time.monotonic()
    is_urgent = False  # an urgent batch is still waiting for its acknowledgement
    try:
        while not stop.is_set():
            now = time.monotonic()
            if poll_requested.is_set():
                # poll-now: a poll at once; its upload waits for the interval unless urgent.
                poll_requested.clear()
                log.info("poll requested (%s)", control.POLL_SIGNAL_NAME)
                next_poll = now
            if now >= next_config:
                cfg = await asyncio.to_thread(refresh_portal_config, cfg, base, outbox, portal)
                next_config = now + cfg.config_interval_minutes * 60
            if now >= next_discovery:
                ranges = list(cfg.ranges)
                if not ranges and not cfg.printers and not outbox.devices():
                    ranges = discovery.default_ranges()
                if ranges:
                    found = await discovery.sweep(
                        client,
                        ranges,
                        cfg.credentials(),
                        port=cfg.snmp_port,
                        rate_per_s=cfg.discovery_rate_per_s,
                        time_limit_s=cfg.discovery_time_limit_s,
                        timeout_s=cfg.snmp_timeout_s,
                        stop=stop,
                        installation=_installation(outbox),
                    )
                    for item in found:
                        _remember(outbox, item)
                    if not stop.is_set():
                        outbox.discovery_done()
                    log.info("discovery found %d printers", len(found))
                next_discovery = now + cfg.discovery_interval_hours * 3600
            if now >= next_poll and not stop.is_set():
                reasons: list[str] = []
                queued = await poll_all(cfg, outbox, client, reasons)
                log.info("polled %d printers", queued)
                next_poll = now + cfg.poll_interval_minutes * 60
                if reasons and portal is not None:
                    log.info("uploading at once: %s", "; ".join(reasons))
                    next_upload = now
                    is_urgent = True
            if portal is not None and now >= next_upload and not stop.is_set():
                report = await asyncio.to_thread(
                    upload.flush, outbox, portal, max_snapshots=cfg.batch_max_snapshots
                )
                log.info("upload: %s", report)
                next_upload = now + cfg.upload_interval_minutes * 60
                retry_at = outbox.next_attempt_at() if is_urgent else None
                if retry_at is None:
                    is_urgent = False
                else:
                    # An urgent batch retries on its own backoff, not the upload interval, also
                    # when a later batch went up meanwhile. Counted from the clock now, not from
                    # the start of this pass: the poll before it may have taken seconds.
                    wait_s = (retry_at - utcnow()).total_seconds()
                    next_upload = min(next_upload, time.monotonic() + max(1.0, wait_s))
            if args.once:
                break
            wake = min(next_config, next_discovery, next_poll, next_upload)
            await _wait_any([stop, poll_requested], max(1.0, wake - time.monotonic()))
    finally:
        client.close()
        if portal is not None:
            portal.close()
    return 0


def cmd_upload(cfg: config.Config, outbox: Outbox) -> int:
    portal = _portal(cfg)
    if portal is None:
        print("portal url, key id and secret are needed to upload", file=sys.stderr)
        return 2
    try:
        report = upload.flush(outbox, portal, max_snapshots=cfg.batch_max_snapshots)
    finally:
        portal.close()
    print(
        f"sent {report.sent} batches ({report.upload_bytes} bytes): {report.acked} acknowledged,"
        f" {report.retried} to retry, {report.quarantined} quarantined"
    )
    return 0 if report.stopped is None else 1


def cmd_poll_now(cfg: config.Config) -> int:
    """Ask the running service (`run`) with this outbox to poll every printer at once."""
    try:
        pid = control.request_poll(control.pid_path(cfg.outbox_path))
    except control.NotRunning as error:
        print(error, file=sys.stderr)
        return 1
    except OSError as error:  # it exited between the check and the signal, or is not ours
        print(f"cannot signal the collector: {error}", file=sys.stderr)
        return 1
    print(f"asked the collector (pid {pid}) to poll now")
    return 0


def cmd_status(outbox: Outbox) -> int:
    for key, value in outbox.stats().items():
        print(f"{key}: {value}")
    for device in outbox.devices():
        print(f"device {device.serial}  {device.address}:{device.port}  {device.model or ''}")
    for at, message in outbox.warnings():
        print(f"warning {at}: {message}")
    return 0


# --- entry point ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inkmeter-collector", description=AGENT)
    parser.add_argument("--config", type=Path, help="TOML file (default: $INKMETER_CONFIG)")
    parser.add_argument("--outbox", type=Path, help="SQLite outbox path")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    sweep = commands.add_parser("discover", help="sweep address ranges for printers")
    sweep.add_argument(
        "--range",
        action="append",
        help="192.0.2.0/24, 192.0.2.10-192.0.2.50 or one address (repeatable)",
    )
    sweep.add_argument("--community", action="append", default=[], help="(repeatable)")
    sweep.add_argument("--port", type=int)
    sweep.add_argument("--rate", type=float, help="requests per second")
    sweep.add_argument("--time-limit", type=float, help="seconds")

    for name, text in (("poll", "poll one printer now"), ("add", "add a printer by address")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "address", help="IP address or DNS name, with :PORT if not 161 ([IPv6]:PORT)"
        )
        sub.add_argument("--community")
        sub.add_argument("--port", type=int)
        sub.add_argument("--serial", help="serial to report for a printer that exposes none")
        if name == "poll":
            sub.add_argument("--json", action="store_true", help="print the wire snapshot")
            sub.add_argument("--enqueue", action="store_true", help="queue it for upload")

    run = commands.add_parser("run", help="discover, poll and upload on schedule")
    run.add_argument("--once", action="store_true", help="one cycle, then exit")
    commands.add_parser(
        "poll-now", help="make the running service poll now (SIGUSR1; uploads only if urgent)"
    )
    commands.add_parser("upload", help="send what the outbox holds now")
    commands.add_parser("status", help="outbox, devices and recent warnings")
    commands.add_parser("requeue", help="give quarantined batches another try")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        cfg = config.load(args.config)
    except config.ConfigError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
    if args.outbox:
        cfg = replace(cfg, outbox_path=args.outbox)
    if args.command == "poll-now":  # talks to the service; the outbox is the service's
        return cmd_poll_now(cfg)
    outbox = Outbox(cfg.outbox_path, max_bytes=int(cfg.outbox_max_mb * 1024 * 1024))
    try:
        return _dispatch(cfg, args, outbox)
    except KeyboardInterrupt:
        return 130
    finally:
        outbox.close()


def _dispatch(cfg: config.Config, args: argparse.Namespace, outbox: Outbox) -> int:
    command: Any = args.command
    if command == "discover":
        return asyncio.run(cmd_discover(cfg, args, outbox))
    if command == "poll":
        return asyncio.run(cmd_poll(cfg, args, outbox))
    if command == "add":
        return asyncio.run(cmd_add(cfg, args, outbox))
    if command == "run":
        return asyncio.run(cmd_run(cfg, args, outbox))
    if command == "upload":
        return cmd_upload(cfg, outbox)
    if command == "requeue":
        print(f"{outbox.requeue_quarantined()} batches queued again")
        return 0
    return cmd_status(outbox)


if __name__ == "__main__":
    sys.exit(main())
