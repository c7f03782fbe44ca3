"""Authentication: credentials in, identities out. No HTTP framework in here."""

from maas_gateway.auth.authenticator import Authenticator
from maas_gateway.auth.credentials import parse_authorization
from maas_gateway.auth.identity import Identity
from maas_gateway.auth.jwks import JWKSCache
from maas_gateway.auth.keys import InMemoryKeyStore, KeyRecord, KeyStore, hash_key, key_id_for
from maas_gateway.auth.oidc import OIDCVerifier, looks_like_jwt

__all__ = [
    "Authenticator",
    "Identity",
    "InMemoryKeyStore",
    "JWKSCache",
    "KeyRecord",
    "KeyStore",
    "OIDCVerifier",
    "hash_key",
    "key_id_for",
    "looks_like_jwt",
    "parse_authorization",
]
