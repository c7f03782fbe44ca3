"""Who the client is, and the X-Forwarded-* headers a backend gets: believing only trusted proxies.

A client can write any ``X-Forwarded-For``. The gateway believes one only from a TCP peer inside
``server.trusted_proxies``, and then takes the rightmost address that is not itself a trusted proxy: each
proxy appends the address it saw, so that is the first one a trusted party vouches for. From any other
peer, forwarding headers are dropped and the peer is the client. The same address keys the
failed-authentication throttle, so rotating a forged X-Forwarded-For gains an attacker nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from maas_gateway.http.asgi import Scope

__all__ = ["NO_TRUSTED_PROXIES", "TrustedProxies", "came_over_https", "client_address", "forwarding_headers"]

_CACHE_SIZE = 4096


class TrustedProxies:
    """A set of networks; ``address in proxies`` for a textual address, cached (peers repeat)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(network, strict=False) for network in networks)
        self._known: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        known = self._known.get(address)
        if known is None:
            known = self._trusted(address)
            if len(self._known) >= _CACHE_SIZE:
                self._known.clear()  # addresses are client-chosen: the cache must stay bounded
            self._known[address] = known
        return known

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False  # "unknown", a host name, garbage: never a trusted proxy
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


NO_TRUSTED_PROXIES = TrustedProxies()


def client_address(scope: Scope, trusted: TrustedProxies = NO_TRUSTED_PROXIES) -> str:
    """The client's address: the TCP peer, or behind trusted proxies the rightmost untrusted forwarded one."""
    client: tuple[str, int] | None = scope.get("client")
    if client is None:
        return "unknown"
    peer = client[0]
    if not trusted or peer not in trusted:
        return peer
    chain = _forwarded_for(scope)
    for address in reversed(chain):
        if address not in trusted:
            return address
    return chain[0] if chain else peer  # every hop is a trusted proxy: the first one is the client


def came_over_https(scope: Scope, trusted: TrustedProxies = NO_TRUSTED_PROXIES) -> bool:
    """Whether the browser's connection was https: ours directly, or a trusted proxy's (its nearest
    X-Forwarded-Proto, the value that proxy set); a client's own claim from anywhere else is ignored."""
    if scope.get("scheme") == "https":
        return True
    client: tuple[str, int] | None = scope.get("client")
    if client is None or not trusted or client[0] not in trusted:
        return False
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-proto"]
    protos = [proto.strip().lower() for proto in ",".join(values).split(",") if proto.strip()]
    return bool(protos) and protos[-1] == "https"


def forwarding_headers(
    scope: Scope, trusted: TrustedProxies, sent: list[tuple[str, str]], host: str | None
) -> list[tuple[str, str]]:
    """The forwarding headers for the backend, given the client's own (``sent``, already filtered to the
    exact names x-forwarded-*, x-real-ip and forwarded).

    From a trusted proxy they are kept and the proxy's address is appended to X-Forwarded-For (and to
    Forwarded); from anyone else they are dropped. X-Forwarded-For (ending with the TCP peer),
    X-Forwarded-Proto and X-Forwarded-Host are always set.
    """
    client: tuple[str, int] | None = scope.get("client")
    peer = client[0] if client is not None else "unknown"
    proto: str = scope.get("scheme", "http")
    if not sent or not trusted or peer not in trusted:
        headers = [("x-forwarded-for", peer), ("x-forwarded-proto", proto)]
        return headers if host is None else [*headers, ("x-forwarded-host", host)]
    chain: list[str] = []
    forwarded: list[str] = []
    kept: list[tuple[str, str]] = []
    for name, value in sent:
        if name == "x-forwarded-for":
            chain.append(value)
        elif name == "forwarded":
            forwarded.append(value)
        else:
            kept.append((name, value))
    names = {name for name, _ in kept}
    headers = [("x-forwarded-for", ", ".join([*chain, peer]))]
    if forwarded:
        node = f'"[{peer}]"' if ":" in peer else peer
        headers.append(("forwarded", ", ".join([*forwarded, f"for={node}"])))
    if "x-forwarded-proto" not in names:
        headers.append(("x-forwarded-proto", proto))
    if "x-forwarded-host" not in names and host is not None:
        headers.append(("x-forwarded-host", host))
    return headers + kept


def _forwarded_for(scope: Scope) -> list[str]:
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
    return [address.strip() for address in ",".join(values).split(",") if address.strip()]
