"""The portal's cookies and where a sign-in may send the browser next.

Both cookies are HttpOnly, SameSite=Lax, limited to ``/portal``, and Secure when the browser reached the
gateway over https (directly or through a trusted proxy). They are session cookies (no Max-Age): the
server decides when a session ends.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response

__all__ = ["LOGIN_STATE_COOKIE", "SESSION_COOKIE", "SIGN_IN_CSRF_COOKIE", "forget", "remember", "safe_next"]

SESSION_COOKIE = "maas_portal_session"
SIGN_IN_CSRF_COOKIE = "maas_portal_csrf"  # the sign-in form's CSRF token, before there is a session
LOGIN_STATE_COOKIE = (
    "maas_portal_login"  # an identity provider sign-in under way (portal/oidc/login_state.py)
)
_PATH = "/portal"
_HOME = "/portal/"


def remember(response: Response, name: str, value: str, *, secure: bool, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=_PATH, httponly=True, samesite="lax", secure=secure
    )


def forget(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path=_PATH, httponly=True, samesite="lax", secure=secure)


def safe_next(target: str | None) -> str:
    """``target`` when it is a path inside the portal, else the overview: never another site.

    Refused: absolute URLs, scheme-relative ``//host``, backslashes (browsers read ``/\\host`` as
    ``//host``), control characters, and any path outside ``/portal``.
    """
    if not target or len(target) > 2000:
        return _HOME
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return _HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return _HOME
    if parts.path != _PATH and not parts.path.startswith(_HOME):
        return _HOME
    if "/../" in parts.path or parts.path.endswith("/.."):
        return _HOME
    return target
