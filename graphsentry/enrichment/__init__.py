"""Enrichment: app directory, IP → ASN, principal histories (Redis or in process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.store import AsnRange, EnrichmentStore, LoadReport, Lookup, TTLCache

if TYPE_CHECKING:
    from graphsentry.config import Config

__all__ = ["AsnRange", "EnrichmentStore", "LoadReport", "Lookup", "MemoryStore", "TTLCache",
           "store_from_config"]


def store_from_config(cfg: Config) -> EnrichmentStore:
    """The store a ``graphsentry.config.Config`` asks for: Redis when ``redis.url`` is set."""
    if cfg.redis.url:
        from graphsentry.enrichment.redis_store import RedisStore

        return RedisStore.from_config(cfg.redis)
    return MemoryStore()
