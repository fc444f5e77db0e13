"""Over-long fields are cut and flagged, never the reason a record is lost (issue 10.1)."""

from __future__ import annotations

from typing import Any

import pytest

from graphsentry.avro import decode_activity, encode_activity
from graphsentry.ingest.limits import (
    MAX_ARRAY_ITEMS,
    MAX_CLAIM_CHARS,
    MAX_QUERY_VALUE_CHARS,
    MAX_STRING_CHARS,
    MAX_URI_CHARS,
    MAX_USER_AGENT_CHARS,
)
from graphsentry.ingest.normalize import Reject, normalize_record
from graphsentry.ingest.truncate import shorten_uri
from graphsentry.ingest.uri import analyze_uri
from tests.ingest.factory import eh_record

GRAPH = "https://graph.microsoft.com/v1.0"


def ok(obj: Any) -> dict[str, Any]:
    record = normalize_record(obj, "test:1")
    assert not isinstance(record, Reject), record
    assert decode_activity(encode_activity(record)) == record  # the flag travels on the wire
    return record


def delta_link(token_chars: int) -> str:
    """A users/delta link as Graph hands it out: a long $deltatoken, then the client's options."""
    return f"{GRAPH}/users/delta?$deltatoken={'Q' * token_chars}&$select=id,displayName&$top=50"


def test_the_8456_character_delta_link_is_kept_with_its_template_and_options() -> None:
    uri = delta_link(8456 - len(delta_link(0)))
    assert len(uri) == 8456
    record = ok(eh_record(requestUri=uri))
    assert record["truncated_fields"] == {"request_uri": 8456}
    assert len(record["request_uri"]) == MAX_URI_CHARS
    assert record["request_uri"].startswith(f"{GRAPH}/users/delta?$deltatoken=QQQ")
    assert record["request_uri"].endswith("&$select=id,displayName&$top=50")
    assert record["resource_template"] == "/users/delta"
    assert (record["resource_family"], record["resource_category"]) == ("users", "directory")
    assert record["query_top"] == 50


def test_key_options_survive_when_long_values_alone_are_not_enough() -> None:
    noise = "&".join(f"x{n}={'v' * 200}" for n in range(60))
    uri = f"{GRAPH}/groups?{noise}&$filter=startswith(displayName,'a')&$search=\"x\"&$top=7"
    record = ok(eh_record(requestUri=uri))
    assert record["truncated_fields"] == {"request_uri": len(uri)}
    assert len(record["request_uri"]) <= MAX_URI_CHARS
    assert record["request_uri"].endswith(
        "&$filter=startswith(displayName,'a')&$search=\"x\"&$top=7")
    assert (record["resource_template"], record["query_top"], record["has_filter"],
            record["has_search"]) == ("/groups", 7, True, True)


def test_shorten_uri_cuts_long_values_only_as_much_as_needed() -> None:
    uri = f"{GRAPH}/users?$skiptoken={'s' * 9000}&$top=999"
    short = shorten_uri(uri, MAX_URI_CHARS)
    assert len(short) == MAX_URI_CHARS
    assert short.endswith("&$top=999")
    kept = short.split("$skiptoken=", 1)[1].split("&", 1)[0]
    assert len(kept) == MAX_URI_CHARS - len(f"{GRAPH}/users?$skiptoken=&$top=999")
    assert analyze_uri(short)[1:] == analyze_uri(uri)[1:]
    assert shorten_uri("https://g/" + "p" * 9000, 100) == ("https://g/" + "p" * 9000)[:100]
    assert len(shorten_uri(f"{GRAPH}/users?" + "&".join(["$top=1"] * 2000), 500)) == 500
    assert MAX_QUERY_VALUE_CHARS < MAX_URI_CHARS


def test_padded_user_agent_cannot_hide_a_request() -> None:
    agent = "azurehound/v2.1.7 " + "A" * 5000
    record = ok(eh_record(userAgent=agent, requestUri=f"{GRAPH}/servicePrincipals"))
    assert record["truncated_fields"] == {"user_agent": len(agent)}
    assert record["user_agent"] == agent[:MAX_USER_AGENT_CHARS]
    assert record["resource_template"] == "/servicePrincipals"


def test_every_over_long_optional_string_is_cut_and_named() -> None:
    record = ok(eh_record(location="L" * 2000, clientRequestId="c" * 1500, userAgent="u" * 1025))
    assert record["truncated_fields"] == {"client_request_id": 1500, "user_agent": 1025,
                                          "location": 2000}
    assert (len(record["location"]), len(record["client_request_id"])) == (MAX_STRING_CHARS,) * 2


def test_envelope_fallback_values_are_cut_too() -> None:
    record = ok(eh_record(top={"callerIpAddress": "9" * 1100}, ipAddress=None))
    assert record["truncated_fields"] == {"ip_address": 1100}


def test_claims_keep_their_first_items() -> None:
    roles = " ".join(f"Role{n}.Read.All" for n in range(MAX_ARRAY_ITEMS + 44))
    record = ok(eh_record(roles=roles, scopes="s" * 1500 + " User.Read"))
    assert record["roles"] == [f"Role{n}.Read.All" for n in range(MAX_ARRAY_ITEMS)]
    assert record["scopes"] == ["s" * MAX_STRING_CHARS, "User.Read"]
    assert record["truncated_fields"] == {"roles": MAX_ARRAY_ITEMS + 44, "scopes": 1500}


def test_a_claim_string_beyond_its_limit_drops_the_item_cut_in_half() -> None:
    items = [f"Scope{n:04d}." + "x" * 290 for n in range(300)]  # 300 characters each
    scopes = " ".join(items)
    record = ok(eh_record(scopes=scopes))
    whole = MAX_CLAIM_CHARS // 301  # items that end before the cut (and their separators)
    assert whole < MAX_ARRAY_ITEMS
    assert record["scopes"] == items[:whole]
    assert record["truncated_fields"] == {"scopes": len(scopes)}


def test_records_within_limits_carry_no_flag() -> None:
    assert ok(eh_record(userAgent="u" * MAX_USER_AGENT_CHARS))["truncated_fields"] is None


@pytest.mark.parametrize("key", ["requestId", "appId"])
def test_over_long_identifiers_stay_rejects(key: str) -> None:
    result = normalize_record(eh_record(**{key: "x" * 5000}), "t")
    assert isinstance(result, Reject) and result.code == "field_too_large"
