"""The TLS context for https backends: the system's trusted CAs, a private CA, a client certificate.

Backends on OpenShift and KServe usually present certificates of a cluster-private CA (the service CA),
and some want the gateway to present a certificate of its own (mutual TLS).
"""

from __future__ import annotations

import ssl

__all__ = ["tls_context"]


def tls_context(
    *, ca_bundle: str | None = None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """A verifying client context trusting the system's CAs plus those in ``ca_bundle``.

    ``client_cert`` (PEM, with the key in it unless ``client_key`` is given) is presented to backends
    that ask for one. Raises ``ValueError`` with a whole sentence when a file cannot be used.
    """
    context = ssl.create_default_context()
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"The CA bundle {ca_bundle} cannot be used: {_reason(exc)}.") from None
    if client_cert is not None:
        try:
            context.load_cert_chain(client_cert, client_key)
        except (OSError, ssl.SSLError) as exc:
            files = client_cert if client_key is None else f"{client_cert} with the key {client_key}"
            raise ValueError(f"The client certificate {files} cannot be used: {_reason(exc)}.") from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return reason.rstrip(".") or type(exc).__name__
