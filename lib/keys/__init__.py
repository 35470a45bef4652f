"""Virtual API keys: what they are (``model``), where they live (``repository``) and the per-worker
copy auth reads on every request (``cache``)."""

from lib.keys.cache import KeyCache
from lib.keys.model import ANONYMOUS_KEY_ID, ROOT_KEY_ID, SCOPES, KeyRecord, KeySpec
from lib.keys.repository import KeyNotFoundError, KeyRepository, looks_like_virtual_key

__all__ = [
    "ANONYMOUS_KEY_ID",
    "ROOT_KEY_ID",
    "SCOPES",
    "KeyCache",
    "KeyNotFoundError",
    "KeyRecord",
    "KeyRepository",
    "KeySpec",
    "looks_like_virtual_key",
]
