"""Net guard: URL fetching that refuses loopback, private, link-local and other non-public addresses.

Used for URLs that arrive over HTTP (POST /ingest), so a token holder cannot make the server read its
own admin ports or cloud metadata (SSRF). The check runs on the address actually connected to — after
DNS, on every redirect hop — so a name that resolves (or re-resolves) to 127.0.0.1 is caught too.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from typing import Any


class BlockedAddress(OSError):
    """The URL's host is not a public address."""


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not loopback, private, link-local, reserved...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _check_peer(sock: socket.socket | None, host: str) -> None:
    if sock is None:
        return
    address = sock.getpeername()[0]
    if not is_public(address):
        sock.close()
        raise BlockedAddress(f"{host} resolves to {address}, which is not a public address "
                             "(URLs sent over HTTP may not reach loopback/private networks; "
                             "set NEWSQA_ALLOW_PRIVATE_URLS=true to allow)")


class _GuardedHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self.sock, self.host)


class _GuardedHTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self.sock, self.host)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_GuardedHTTP, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_GuardedHTTPS, req, context=self._context)  # type: ignore[attr-defined]


def opener(allow_private: bool) -> urllib.request.OpenerDirector:
    """An opener for fetching articles; without `allow_private`, only public addresses are reached."""
    if allow_private:
        return urllib.request.build_opener()
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)
