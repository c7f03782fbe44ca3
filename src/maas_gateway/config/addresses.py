"""Listening addresses written as ``host:port``, with IPv6 hosts in brackets (``[::1]:9464``)."""

from __future__ import annotations

import ipaddress

__all__ = ["parse_listen_address"]

_EXAMPLES = "such as 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464"


def parse_listen_address(text: str) -> tuple[str, int]:
    """The host and port of ``text``, or ``ValueError`` with a sentence saying what is wrong.

    The host is an IPv4 address, a host name, or an IPv6 address in brackets; brackets are required for
    IPv6 because its colons would otherwise be read as the port separator. The port is 1 to 65535: a
    listener on a port chosen by the system could not be found by a scraper.
    """
    host, separator, port_text = text.rpartition(":")
    if not separator or not host:
        raise ValueError(f"'{text}' is not a listening address; write host:port, {_EXAMPLES}.")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"'{text}' opens an IPv6 address with '[' but does not close it with ']'.")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"'{host}' in '{text}' is not an IPv6 address.") from None
    elif ":" in host:
        raise ValueError(f"Put the IPv6 address of '{text}' in brackets, as in [::1]:9464.")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"The port of '{text}' must be a number from 1 to 65535.")
    return host, int(port_text)
