"""User-facing errors (printed without a traceback by the CLI) and secret masking.

Every :class:`GraphsentryError` masks secrets in its message (:func:`redact`), so whatever the
CLI prints of it never shows a password, token or connection string. Code that prints or logs
anything else that may carry one (URLs, librdkafka messages, configuration values) passes it
through :func:`redact` or :func:`redact_config` first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# scheme://user:password@host, scheme://:password@host (Redis), scheme://token@host
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@'\"]*)@")
# key=value / key: value pairs whose key names a secret (connection strings, config dumps,
# URL query strings, librdkafka property listings).
_SECRET_KEYS = (r"password|passwd|secret|token|sharedaccesskey|accountkey"
                r"|sharedaccesssignature|apikey|api_key|access_key|credential")
_SECRET_WORDS = r"sig|pwd"  # only as a whole key: "design", "resultSignature" are no secrets
_KEY_VALUE = re.compile(
    rf"(?P<key>(?:\b[\w.$-]*(?:{_SECRET_KEYS})[\w.-]*|\b(?:{_SECRET_WORDS})\b)['\"]?)"
    r"(?P<sep>\s*[=:]\s*)"
    r"(?P<quote>['\"]?)(?P<value>[^\s;&,'\"}]+)", re.IGNORECASE)
# A whole Event Hubs / Service Bus connection string is a secret wherever it appears.
_CONNECTION_STRING = re.compile(r"Endpoint=sb://[^\s'\"]+", re.IGNORECASE)
_SECRET_NAME = re.compile(
    rf"(?:{_SECRET_KEYS}|connection.?string|sasl\.jaas|^(?:{_SECRET_WORDS})$)", re.IGNORECASE)
_NOT_SECRET_NAMES = frozenset({"sasl.username", "security.protocol", "sasl.mechanism",
                               "sasl.mechanisms", "token_issued_at"})


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    if not userinfo:
        return match.group(0)
    user, colon, _password = userinfo.partition(":")
    if colon:
        return f"{match.group('scheme')}{user}:{MASK}@"
    # A lone userinfo is a password for Redis (redis://secret@host) and a token elsewhere.
    return f"{match.group('scheme')}{MASK}@"


def redact(text: str) -> str:
    """``text`` with every password, token, key and connection string replaced by ``***``.

    Masks URL credentials (``redis://user:pw@host`` → ``redis://user:***@host``), Event Hubs
    connection strings (``Endpoint=sb://…`` as a whole), and ``key=value`` / ``key: value``
    pairs whose key names a secret (``password``, ``sasl.password``, ``SharedAccessKey``,
    ``sig``, ``token``, ``secret`` …). Idempotent; text without secrets is returned unchanged.
    """
    if not text:
        return text
    text = _CONNECTION_STRING.sub(f"Endpoint=sb://{MASK}", text)
    text = _URL_USERINFO.sub(_mask_userinfo, text)

    def mask_pair(match: re.Match[str]) -> str:
        if match.group("key").strip("'\"").lower() in _NOT_SECRET_NAMES:
            return match.group(0)
        return f"{match.group('key')}{match.group('sep')}{match.group('quote')}{MASK}"

    return _KEY_VALUE.sub(mask_pair, text)


def is_secret_name(name: str) -> bool:
    """Whether a configuration key names a secret (``sasl.password``, ``ssl.key.password``,
    ``sasl.oauthbearer.client.secret``, ``connection_string`` …)."""
    lowered = name.lower()
    return lowered not in _NOT_SECRET_NAMES and bool(_SECRET_NAME.search(lowered))


def redact_config(value: Any) -> Any:
    """A copy of a configuration value (mappings and lists, at any depth) that can be printed:
    values under secret-named keys become ``***``, strings elsewhere go through
    :func:`redact`, callables (``error_cb``) are shown by name."""
    if isinstance(value, Mapping):
        return {key: (MASK if isinstance(key, str) and is_secret_name(key) and item is not None
                      else redact_config(item)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_config(item) for item in value]
    if isinstance(value, str):
        return redact(value)
    if callable(value):
        return f"<{getattr(value, '__name__', type(value).__name__)}>"
    return value


class GraphsentryError(Exception):
    """An error the user can fix (bad argument, unreachable service, invalid config).

    Its text is masked (:func:`redact`): a URL or setting quoted in the message never shows
    its secret.
    """

    def __str__(self) -> str:
        return redact(super().__str__())


class DeliveryError(GraphsentryError):
    """Kafka did not acknowledge messages after the bounded retries: the batch (and with it
    the Bytewax epoch) failed and must be retried from the last snapshot."""


class StoreWriteError(GraphsentryError):
    """A write to the enrichment store (Redis) failed after the bounded retries."""
