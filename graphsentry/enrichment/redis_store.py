"""The Redis enrichment store: batched, cached, and tolerant of Redis being down.

Keys (under ``key_prefix``, default ``graphsentry:``):

* ``app:{app_id}`` hash: ``display_name``, ``owner_tenant_id``, ``first_party`` (1/0),
  ``allowed`` (1/0), ``suppressed_detectors`` (comma separated), ``service_principal_type``.
  An app id without a hash is answered from the shipped Microsoft snapshot when it lists it
  (``AppInfo(first_party=True, display_name=…)``); a loaded hash always wins.
* ``asn:v4`` / ``asn:v6`` sorted sets: score = range start as a number, member =
  ``start|end|asn|name``. A lookup takes the few members with the greatest score ≤ the address
  (``ZREVRANGEBYSCORE … LIMIT 0 n``) and checks the ends exactly in Python, because scores are
  doubles: IPv4 is exact, IPv6 starts that differ only below the 53rd bit share a score.
* ``prof:{tenant}/{principal}`` hash: one field per stored profile version (its newest event
  time, ``version_field``) → the profile's JSON; the :data:`PROFILE_VERSIONS` newest kept, the
  whole key expiring after ``history_ttl_days`` without a write.

One ``lookup`` is one pipelined round trip for whatever the process-local TTL cache misses.
When Redis cannot be reached a lookup answers at once with ``available=False`` and tries
again after ``retry_seconds``. Writes are different: a profile save that Redis does not
acknowledge is retried in place (:data:`WRITE_ATTEMPTS`, backing off from
:data:`WRITE_BACKOFF_S`) and then raises :class:`~graphsentry.errors.StoreWriteError`, so the
dataflow's epoch fails and is retried from its last snapshot (where the principal being
evicted is still in worker state) instead of counting a lost write.

:meth:`RedisStore.probe` is the start-up check of ``graphsentry run``/``enrich``: a persistent
configuration problem (wrong password or user, a database index the server does not have,
plain text to a TLS port or TLS to a plain-text one, a server that does not speak Redis's
protocol) is an error; an unreachable server only a
warning (detection starts without enrichment and reconnects).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from detectors.base import AppInfo
from graphsentry.enrichment.apps import first_party_app
from graphsentry.enrichment.store import (
    PROFILE_VERSIONS,
    AppEntry,
    AsnRange,
    Lookup,
    TTLCache,
    app_entry,
    ip_key,
    pick_version,
    profile_from_json,
    profile_to_json,
    version_field,
)
from graphsentry.errors import GraphsentryError, StoreWriteError, redact

if TYPE_CHECKING:
    from graphsentry.config import RedisConfig

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
ASN_CANDIDATES = 8
WRITE_CHUNK = 2000
WRITE_ATTEMPTS = 6
"""Tries of one profile save before :class:`StoreWriteError` (wanted config key:
``redis.write_attempts``)."""
WRITE_BACKOFF_S = 0.5
"""Wait before the second try, doubled before each further one up to
:data:`WRITE_BACKOFF_MAX_S`: 0.5 + 1 + 2 + 4 + 8 = 15.5 s of retrying by default (wanted config
key: ``redis.write_backoff_seconds``)."""
WRITE_BACKOFF_MAX_S = 8.0
PROBE_ATTEMPTS = 3
"""Start-up probes before a protocol failure (the server closing or resetting a connection it
accepted) counts as a configuration error rather than a passing fault."""


def app_to_hash(info: AppInfo, sp_type: str | None = None) -> dict[str, str]:
    fields = {
        "display_name": info.display_name or "",
        "owner_tenant_id": info.owner_tenant_id or "",
        "first_party": "1" if info.first_party else "0",
        "allowed": "1" if info.allowed else "0",
        "suppressed_detectors": ",".join(sorted(info.suppressed_detectors)),
    }
    if sp_type:
        fields["service_principal_type"] = sp_type
    return fields


def app_from_hash(app_id: str, fields: Mapping[str, str]) -> AppInfo:
    suppressed = fields.get("suppressed_detectors") or ""
    return AppInfo(
        app_id=app_id,
        display_name=fields.get("display_name") or None,
        owner_tenant_id=fields.get("owner_tenant_id") or None,
        first_party=fields.get("first_party") == "1",
        allowed=fields.get("allowed") == "1",
        suppressed_detectors=frozenset(s for s in suppressed.split(",") if s),
    )


class RedisStore:
    def __init__(self, url: str, *, key_prefix: str = "graphsentry:",
                 cache_ttl_seconds: float = 300.0, cache_size: int = 100_000,
                 socket_timeout_seconds: float = 0.5, retry_seconds: float = 5.0,
                 history_ttl_days: float = 30.0) -> None:
        self.url = url
        self.prefix = key_prefix
        self.retry_seconds = retry_seconds
        self.history_ttl = max(1, int(history_ttl_days * 86_400))
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds, retry=Retry(NoBackoff(), 0),
            health_check_interval=0)
        self._cache = TTLCache(cache_size, cache_ttl_seconds)
        self._down_until = 0.0
        self.round_trips = 0
        self.failures = 0
        self.write_attempts = WRITE_ATTEMPTS
        self.write_backoff = WRITE_BACKOFF_S
        self.sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls, cfg: RedisConfig) -> RedisStore:
        """From a ``graphsentry.config.RedisConfig``; its ``url`` must be set."""
        if not cfg.url:
            raise ValueError("RedisStore.from_config: redis.url is null (no Redis configured)")
        return cls(cfg.url, key_prefix=cfg.key_prefix, cache_ttl_seconds=cfg.cache_ttl_seconds,
                   cache_size=cfg.cache_size, socket_timeout_seconds=cfg.socket_timeout_seconds,
                   retry_seconds=cfg.retry_seconds, history_ttl_days=cfg.history_ttl_days)

    # -- availability -------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self._down_until == 0.0

    def _may_try(self) -> bool:
        return self._down_until == 0.0 or time.monotonic() >= self._down_until

    def _failed(self) -> None:
        self.failures += 1
        self._down_until = time.monotonic() + self.retry_seconds

    def _run(self, pipe: Any) -> list[Any] | None:
        """Execute a pipeline; None (and back off) when Redis is unreachable."""
        if not self._may_try():
            return None
        self.round_trips += 1
        try:
            replies: list[Any] = pipe.execute()
        except REDIS_ERRORS:
            self._failed()
            return None
        self._down_until = 0.0
        return replies

    @property
    def where(self) -> str:
        """The URL for messages, password masked."""
        return redact(self.url)

    def check(self) -> None:
        """Raise a user-facing error when Redis cannot be used now (for ``enrich``)."""
        problem = self.probe()
        if problem is not None:
            raise GraphsentryError(problem)

    def probe(self) -> str | None:
        """Start-up check: None when Redis answers; ``cannot reach Redis at …`` when it cannot
        be reached (refused, timed out, unknown host: it may come back); raises
        :class:`GraphsentryError` for a configuration problem that retrying cannot fix
        (authentication, database index, TLS mismatch, a server that is not Redis)."""
        last = ""
        for attempt in range(PROBE_ATTEMPTS):
            try:
                self.client.ping()
                return None
            except (redis.AuthenticationError, redis.ResponseError) as exc:
                raise GraphsentryError(f"Redis at {self.where} refused the connection: {exc} "
                                       "(check the password, user and database in redis.url)"
                                       ) from None
            except REDIS_ERRORS as exc:
                kind = _protocol_mismatch(exc, self.url)
                if kind is None:
                    return f"cannot reach Redis at {self.where}: {exc}"
                last = f"{kind} ({exc})"
            except redis.RedisError as exc:  # e.g. InvalidResponse: something else answered
                raise GraphsentryError(f"Redis at {self.where} did not answer as Redis: {exc} "
                                       "(is redis.url the address of a Redis server?)") from None
            if attempt + 1 < PROBE_ATTEMPTS:
                time.sleep(0.2)
        raise GraphsentryError(f"Redis at {self.where}: {last}")

    # -- keys ---------------------------------------------------------------------------------

    def app_key(self, app_id: str) -> str:
        return f"{self.prefix}app:{app_id}"

    def asn_key(self, version: int) -> str:
        return f"{self.prefix}asn:v{version}"

    def profile_key(self, principal_key: str) -> str:
        return f"{self.prefix}prof:{principal_key}"

    # -- reads --------------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return True

    def lookup(self, app_ids: Iterable[str], ips: Iterable[str],
               profiles_before: Mapping[str, float]) -> Lookup:
        result = Lookup(available=True)
        miss = TTLCache.MISSING
        app_misses: list[str] = []
        for app_id in set(app_ids):
            cached = self._cache.get("a" + app_id, miss)
            if cached is miss:
                app_misses.append(app_id)
            elif cached is not None:
                result.apps[app_id] = cached
        ip_misses: list[tuple[str, int, int]] = []
        for ip in set(ips):
            cached = self._cache.get("i" + ip, miss)
            if cached is not miss:
                if cached is not None:
                    result.asns[ip] = cached
                continue
            parsed = ip_key(ip)
            if parsed is None:
                self._cache.put("i" + ip, None)
            else:
                ip_misses.append((ip, parsed[0], parsed[1]))
        hist_keys = list(profiles_before)
        if not (app_misses or ip_misses or hist_keys):
            result.available = self.available
            return result
        pipe = self.client.pipeline(transaction=False)
        for app_id in app_misses:
            pipe.hgetall(self.app_key(app_id))
        for _, version, value in ip_misses:
            pipe.zrevrangebyscore(self.asn_key(version), repr(float(value)), "-inf",
                                  start=0, num=ASN_CANDIDATES)
        for key in hist_keys:
            pipe.hgetall(self.profile_key(key))
        replies = self._run(pipe)
        if replies is None:
            result.available = False
            return result
        it = iter(replies)
        for app_id, fields in zip(app_misses, it, strict=False):
            info = app_from_hash(app_id, fields) if fields else first_party_app(app_id)
            self._cache.put("a" + app_id, info)
            if info is not None:
                result.apps[app_id] = info
        for (ip, version, value), members in zip(ip_misses, it, strict=False):
            found = _pick_range(members, version, value)
            answer = (found.asn, found.name) if found else None
            self._cache.put("i" + ip, answer)
            if answer is not None:
                result.asns[ip] = answer
        for key, versions in zip(hist_keys, it, strict=False):
            text = pick_version(versions or {}, profiles_before[key])
            result.profiles[key] = profile_from_json(text) if text else None
        return result

    def get_app(self, app_id: str) -> AppInfo | None:
        try:
            fields: dict[str, str] = self.client.hgetall(  # type: ignore[assignment]
                self.app_key(app_id))
        except REDIS_ERRORS as exc:
            raise GraphsentryError(f"cannot reach Redis at {self.where}: {exc}") from exc
        return app_from_hash(app_id, fields) if fields else first_party_app(app_id)

    def app_fields(self, app_id: str) -> dict[str, str]:
        """The raw stored hash (for ``enrich show-app``)."""
        try:
            fields: dict[str, str] = self.client.hgetall(  # type: ignore[assignment]
                self.app_key(app_id))
            return dict(fields)
        except REDIS_ERRORS as exc:
            raise GraphsentryError(f"cannot reach Redis at {self.where}: {exc}") from exc

    # -- writes -------------------------------------------------------------------------------

    def save_profiles(self, profiles: Mapping[str, Any]) -> int:
        """Write a version of each profile and trim each principal to the
        :data:`PROFILE_VERSIONS` newest (two pipelined round trips); return how many Redis
        acknowledged, which is all of them. Each round trip is retried in place
        (:meth:`_acknowledged`); then :class:`StoreWriteError` is raised."""
        if not profiles:
            return 0
        texts = {self.profile_key(k): (version_field(p.last_seen), profile_to_json(p))
                 for k, p in profiles.items()}

        def write(pipe: Any) -> None:
            for key, (field, text) in texts.items():
                pipe.hset(key, field, text)
                pipe.expire(key, self.history_ttl)
                pipe.hkeys(key)

        replies = self._acknowledged(write, f"{len(texts)} profile write(s)")
        stale = {key: sorted(names)[:-PROFILE_VERSIONS]
                 for key, names in zip(texts, replies[2::3], strict=True)}
        stale = {key: names for key, names in stale.items() if names}
        if stale:
            def trim(pipe: Any) -> None:
                for key, names in stale.items():
                    pipe.hdel(key, *names)

            self._acknowledged(trim, f"{len(stale)} profile trim(s)")
        return len(texts)

    def _acknowledged(self, build: Callable[[Any], None], what: str) -> list[Any]:
        """Run the pipeline ``build`` fills until Redis acknowledges it: ``write_attempts``
        tries, backing off from ``write_backoff`` seconds (doubling, at most
        :data:`WRITE_BACKOFF_MAX_S`); then :class:`StoreWriteError`. Nothing is kept for
        later: the caller's batch failed."""
        delay = self.write_backoff
        for attempt in range(1, self.write_attempts + 1):
            pipe = self.client.pipeline(transaction=False)
            build(pipe)
            self.round_trips += 1
            try:
                replies: list[Any] = pipe.execute()
            except (*REDIS_ERRORS, redis.ResponseError) as exc:
                self._failed()
                if attempt == self.write_attempts:
                    raise StoreWriteError(f"Redis at {self.where} did not acknowledge {what} "
                                          f"after {attempt} tries: {exc}") from exc
                self.sleep(delay)
                delay = min(delay * 2, WRITE_BACKOFF_MAX_S)
                continue
            self._down_until = 0.0
            return replies
        return []  # not reached: write_attempts >= 1

    def put_apps(self, apps: Iterable[AppEntry]) -> int:
        """Store apps (replacing each app's hash), ``WRITE_CHUNK`` per round trip."""
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for item in apps:
            info, sp_type = app_entry(item)
            key = self.app_key(info.app_id)
            pipe.delete(key)
            pipe.hset(key, mapping=app_to_hash(info, sp_type))  # type: ignore[arg-type]
            self._cache.put("a" + info.app_id, info)
            count += 1
            if count % WRITE_CHUNK == 0:
                self._write(pipe)
        self._write(pipe)
        return count

    def put_asn_ranges(self, ranges: Iterable[AsnRange]) -> int:
        """Replace the ASN table: written beside the live sets, then renamed over them."""
        count = 0
        pipe = self.client.pipeline(transaction=False)
        staging = {v: self.asn_key(v) + ":loading" for v in (4, 6)}
        pipe.delete(*staging.values())
        batch: dict[int, dict[str, float]] = {4: {}, 6: {}}
        for item in ranges:
            batch[item.version][item.member()] = float(item.start)
            count += 1
            if count % WRITE_CHUNK == 0:
                for version, members in batch.items():
                    if members:
                        pipe.zadd(staging[version], members)
                        members.clear()
                self._write(pipe)
        for version, members in batch.items():
            if members:
                pipe.zadd(staging[version], members)
        self._write(pipe)
        for key in staging.values():
            pipe.exists(key)
        present = self._write(pipe)
        for (version, key), exists in zip(staging.items(), present, strict=True):
            if exists:
                pipe.rename(key, self.asn_key(version))
            else:
                pipe.delete(self.asn_key(version))
        self._write(pipe)
        self._cache = TTLCache(self._cache.maxsize, self._cache.ttl)
        return count

    def _write(self, pipe: Any) -> list[Any]:
        try:
            replies: list[Any] = pipe.execute()
        except REDIS_ERRORS as exc:
            raise GraphsentryError(f"cannot reach Redis at {self.where}: {exc}") from exc
        return replies

    def close(self) -> None:
        self.client.close()


def _protocol_mismatch(exc: BaseException, url: str) -> str | None:
    """What a connection failure says about the configuration, or None for a passing fault.

    Plain text to a TLS port: the server accepts the connection, then resets or closes it.
    TLS to a plain-text port: the TLS handshake fails or times out.
    """
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(c) for c in chain).lower()
    if any(isinstance(c, ssl.SSLError) for c in chain) or "handshake" in text or "ssl" in text:
        return ("the TLS handshake failed: is this a plain-text port? (rediss:// is TLS, "
                "redis:// plain text)" if url.startswith("rediss:") else
                "TLS error: check the certificate settings")
    if "error while reading" in text or "closed by server" in text or any(
            isinstance(c, (ConnectionResetError, BrokenPipeError)) for c in chain):
        if not url.startswith("rediss:"):
            return ("the server accepted the connection and then closed it: is this a TLS "
                    "port? (use rediss://)")
        return "the server accepted the connection and then closed it"
    return None


def _pick_range(members: list[str], version: int, value: int) -> AsnRange | None:
    """The range holding ``value`` among candidates with the greatest starts."""
    best: AsnRange | None = None
    for member in members:
        try:
            item = AsnRange.from_member(member, version)
        except ValueError:
            continue
        if item.start <= value <= item.end and (best is None or item.start > best.start):
            best = item
    return best


class ExceptionStore:
    """Exceptions in Redis: hash ``{prefix}exceptions``, field = id, value = JSON. Removing one
    keeps it with ``removed``/``removed_by`` set (the audit trail); it no longer applies."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.key = f"{store.prefix}exceptions"

    def load(self) -> list[Any]:
        """Every stored exception (removed ones included); unreadable entries are skipped
        with a warning on stderr. Raises ``GraphsentryError`` when Redis cannot be reached."""
        import json
        import sys

        from graphsentry.alerting.exceptions import AlertException

        pipe = self.store.client.pipeline(transaction=False)
        pipe.hgetall(self.key)
        (raw,) = self.store._write(pipe)
        items = []
        for ident, text in sorted(raw.items()):
            try:
                items.append(AlertException.from_dict(json.loads(text)))
            except (ValueError, TypeError) as exc:
                print(f"graphsentry: skipping stored exception {ident}: {exc}", file=sys.stderr)
        return items

    def put(self, item: Any) -> None:
        import json

        pipe = self.store.client.pipeline(transaction=False)
        pipe.hset(self.key, item.id, json.dumps(item.to_dict(), sort_keys=True))
        self.store._write(pipe)
