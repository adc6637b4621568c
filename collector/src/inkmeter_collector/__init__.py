"""Inkmeter LAN data collector: SNMP discovery and polling, disk outbox, signed uploads."""

__version__ = "0.1.0"
AGENT = f"inkmeter-collector/{__version__}"
