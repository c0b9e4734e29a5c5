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
    """Whether every address the host resolves to is this machine's loopback: a server binds them all, and
    `localhost` can be made to resolve elsewhere."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(str(a[4][0]).split("%")[0]).is_loopback for a in found)


def http_url(host: str, port: int) -> str:
    """The address a server listens on, as a browser or client takes it (an IPv6 host in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
