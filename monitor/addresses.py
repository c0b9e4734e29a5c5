"""Addresses a civmon server (the dashboard, the scoring API) may listen on."""

from __future__ import annotations

import ipaddress
import socket

from monitor.errors import CivmonError


def require_free_address(host: str, port: int) -> None:
    """Say now, before a server starts (and loads a model), that the address cannot be served (Streamlit's own
    error is a traceback)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        raise CivmonError(f"--host {host!r} is no address of this machine", "use 127.0.0.1 (the default)") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Tornado binds: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            raise CivmonError(
                f"cannot listen on {host} port {port}: {exc.strerror}",
                "another program (a civmon server or dashboard already running?) uses it: pass another --port",
            ) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False
