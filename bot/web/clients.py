"""Who is on the other end of a web request: the client's address.

Behind a reverse proxy every request arrives from the proxy, so the peer address says
nothing about the client; the proxy names the client in ``X-Forwarded-For``. But any
client can send that header too, so it is believed only from a configured proxy
(``TRUSTED_PROXIES``), and only as far as it was written by trusted hops:

* the direct peer is not a trusted proxy: the peer is the client, the header is
  ignored (a client cannot choose its own address);
* it is: the header's entries are read right to left (each proxy appends the address
  it saw) skipping trusted proxies; the first address that is not one is the client.
  Entries further left were written by the client itself and are never read.

The rate limiter of logins keys on this address (bot/web/auth.py).
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from bot import keys
from bot.config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(request: web.Request) -> str:
    """The client's address as text (``?`` when the peer has none, e.g. a Unix socket)."""
    peer = _address(request.remote or "")
    if peer is None:
        return (request.remote or "?")[:64]
    trusted = request.app[keys.SETTINGS].trusted_proxy_networks
    if not _trusted(peer, trusted):
        return str(peer)
    hops = [
        entry.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for entry in header.split(",")
    ]
    client = peer
    for entry in reversed(hops):
        address = _address(entry)
        if address is None:
            # Not an address: a trusted proxy wrote something else ("unknown"). The
            # last hop we can name is the client; nothing further left is believed.
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def _trusted(address: Address, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


def _address(text: str) -> Address | None:
    """An address from a peer or a header entry: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``[::1]:5678``, ``::1``; IPv4-mapped IPv6 as IPv4 (a dual-stack listener)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
