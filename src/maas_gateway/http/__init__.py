"""HTTP plumbing shared by every app of the gateway (the proxy, the admin API, the metrics listener):
ASGI helpers, the client's address behind trusted proxies, request ids. It imports no feature package."""
