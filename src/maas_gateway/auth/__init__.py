"""Authentication: credentials in, identities out. No HTTP framework in here."""

from maas_gateway.auth.authenticator import Authenticator
from maas_gateway.auth.credentials import parse_authorization
from maas_gateway.auth.identity import Identity
from maas_gateway.auth.keys import InMemoryKeyStore, KeyRecord, KeyStore, hash_key, key_id_for

__all__ = [
    "Authenticator",
    "Identity",
    "InMemoryKeyStore",
    "KeyRecord",
    "KeyStore",
    "hash_key",
    "key_id_for",
    "parse_authorization",
]
