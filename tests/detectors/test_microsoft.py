"""detectors.microsoft: the shipped snapshot parses, first-party ids, permission tiers (rules
and overrides), token privileges, and Microsoft clients' start-up requests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources

import pytest

from detectors import microsoft as ms

GRAPH = "00000003-0000-0000-c000-000000000000"
OFFICE = "d3590ed6-52b3-4102-aeff-aad2292ab01c"  # Microsoft Office, a FOCI public client
UNNAMED = "c4b110d7-6f1d-473d-aa9e-6e74b8b8bd4b"  # listed by upstream without a display name
CUSTOMER_APP = "5b1e2c7a-93d4-4f0e-8a61-2f3c9d7e4b10"


def data(*parts: str) -> str:
    return resources.files("detectors").joinpath("data", *parts).read_text(encoding="utf-8")


# -- the data files -------------------------------------------------------------------------

def test_every_data_file_parses_and_the_manifest_matches_the_rows() -> None:
    apps = ms.parse_first_party_apps(data("microsoft_info", ms.APPS_FILE))
    permissions = ms.parse_permissions(data("microsoft_info", ms.PERMISSIONS_FILE))
    rules = ms.parse_tier_rules(data("permission_tiers.json"))
    startup = ms.parse_client_startup(data("client_startup.csv"))
    manifest = ms.snapshot_manifest()
    counts = manifest["counts"]
    assert isinstance(counts, dict)
    assert counts["first_party_apps"] == len(apps) > 1000
    by_kind = {k: sum(p.kind == k for p in permissions) for k in ms.KINDS}
    assert counts["permissions"] == by_kind and min(by_kind.values()) > 500
    assert re.fullmatch(r"[0-9a-f]{40}", str(manifest["upstream_commit"]))
    assert manifest["license"] == "MIT" and rules.overrides and len(startup) >= 8
    assert "MIT License" in data("microsoft_info", "LICENSE")
    assert "Merill Fernando" in data("microsoft_info", "LICENSE")


def test_every_override_names_a_permission_of_the_snapshot() -> None:
    rules = ms.tier_rules()
    missing = [(name, kind) for name, kind in rules.overrides
               if ms.permission(name, kind) is None]
    assert missing == []


def test_overrides_carry_reasons_and_the_critical_ones_are_writes() -> None:
    entries = json.loads(data("permission_tiers.json"))["overrides"]
    assert all(e["reason"].strip() for e in entries)
    critical = [e["permission"] for e in entries if e["tier"] == "critical"]
    assert len(critical) >= 15 and all(".ReadWrite." in p for p in critical)


def test_the_module_imports_no_engine_or_service_library() -> None:
    code = ("import sys, detectors.microsoft as m; m.privileges('Mail.Read', None); "
            "m.is_client_startup('GET', '/me'); m.is_first_party('x'); "
            "print(sorted({n.split('.')[0] for n in sys.modules} & "
            "{'bytewax', 'confluent_kafka', 'redis', 'pydantic', 'fastavro'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- first-party applications -------------------------------------------------------------

def test_first_party_ids_in_any_case_with_their_names() -> None:
    assert ms.is_first_party(GRAPH) and ms.is_first_party(f" {GRAPH.upper()} ")
    assert ms.first_party_name(GRAPH) == "Microsoft Graph"
    assert ms.first_party_name(OFFICE) == "Microsoft Office"
    assert ms.is_first_party(UNNAMED) and ms.first_party_name(UNNAMED) is None
    assert ms.first_party_count() > 1000


@pytest.mark.parametrize("app_id", [
    CUSTOMER_APP,
    "00000000-0000-0000-0000-000000000000",  # nil GUID, listed upstream from the docs
    "11111111-1111-1111-1111-111111111111",  # documentation placeholder
    "1aaaaaa1-2bb2-3cc3-4dd4-5eeeeeeeeee5",  # "Old dummy policy ID 1"
    "e1fe6dd8-ba31-4d61-89e7-88639da4683d",  # the id of the User.Read permission, not an app
    "", None, "not-a-guid",
])
def test_other_ids_are_not_first_party(app_id: str | None) -> None:
    assert not ms.is_first_party(app_id)
    assert ms.first_party_name(app_id) is None


# -- permission tiers ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind", "tier"), [
    # critical: take over the tenant or grant itself more (overrides)
    ("RoleManagement.ReadWrite.Directory", "application", "critical"),
    ("AppRoleAssignment.ReadWrite.All", "application", "critical"),
    ("Application.ReadWrite.All", "application", "critical"),
    ("Application.ReadWrite.OwnedBy", "application", "critical"),
    ("Directory.ReadWrite.All", "delegated", "critical"),
    ("UserAuthenticationMethod.ReadWrite.All", "application", "critical"),
    # high: tenant-wide writes, tenant-wide reads of sensitive content (derived)
    ("Mail.Read", "application", "high"),
    ("Mail.ReadWrite", "application", "high"),
    ("Files.Read.All", "application", "high"),
    ("Files.ReadWrite.All", "delegated", "high"),
    ("Sites.Read.All", "application", "high"),
    ("Sites.FullControl.All", "application", "high"),
    ("User.ReadWrite.All", "application", "high"),
    ("Chat.Read.All", "application", "high"),
    ("Policy.ReadWrite.ConditionalAccess", "delegated", "high"),  # tenant-wide by description
    ("Directory.AccessAsUser.All", "delegated", "high"),
    ("BitlockerKey.Read.All", "application", "high"),
    # medium: other tenant-wide reads (derived)
    ("Directory.Read.All", "application", "medium"),
    ("User.Read.All", "delegated", "medium"),
    ("Group.Read.All", "application", "medium"),
    ("AuditLog.Read.All", "application", "medium"),
    ("Policy.Read.ConditionalAccess", "delegated", "medium"),
    # low: own data, narrow grants, basic reads, sign-in scopes
    ("Mail.Read", "delegated", "low"),
    ("Mail.Send", "delegated", "low"),
    ("Files.ReadWrite", "delegated", "low"),
    ("Calendars.ReadWrite.Shared", "delegated", "low"),
    ("Sites.Selected", "application", "low"),
    ("Chat.ReadWrite.WhereInstalled", "application", "low"),
    ("User.ReadBasic.All", "delegated", "low"),
    ("People.Read", "delegated", "low"),
    ("User.Read", "delegated", "low"),
    ("openid", "delegated", "low"),
    ("offline_access", "delegated", "low"),
])
def test_tiers_of_known_permissions(name: str, kind: ms.PermissionKind, tier: str) -> None:
    assert ms.permission(name, kind) is not None
    assert ms.permission_tier(name, kind) == tier


@pytest.mark.parametrize(("name", "kind", "tier"), [
    ("Widgets.ReadWrite.All", "application", "high"),  # a future permission, by its name
    ("Widgets.Read.All", "application", "medium"),
    ("Widgets.Read.All", "delegated", "medium"),
    ("Widgets.ReadWrite", "delegated", "low"),  # no description: the user's own
    ("Widgets.ReadBasic.All", "application", "low"),
    ("user_impersonation", "delegated", "low"),  # does not parse: default_tier
    ("not a permission!", "application", "low"),
])
def test_unknown_names_get_the_name_rules_or_the_default(name: str, kind: ms.PermissionKind,
                                                         tier: str) -> None:
    assert ms.permission(name, kind) is None
    assert ms.permission_tier(name, kind) == tier
    assert ms.tier_rules().default_tier == "low"


def test_names_are_matched_case_insensitively() -> None:
    assert ms.permission_tier("rolemanagement.readwrite.directory", "delegated") == "critical"
    assert ms.permission("mail.read", "application") == ms.permission("Mail.Read", "application")


def test_the_shipped_tier_distribution_is_the_documented_one() -> None:
    # docs/detection.md quotes these figures: update both after a refresh changes them
    tally = {tier: 0 for tier in ms.TIERS}
    application = {tier: 0 for tier in ms.TIERS}
    for p in ms.permissions():
        tier = ms.permission_tier(p.name, p.kind)
        tally[tier] += 1
        application[tier] += p.kind == "application"
    assert tally == {"critical": 43, "high": 636, "medium": 550, "low": 294}
    assert application == {"critical": 22, "high": 357, "medium": 291, "low": 46}
    assert ms.first_party_count() == 3369


def test_every_snapshot_permission_has_a_tier_and_every_tier_is_used() -> None:
    seen = {ms.permission_tier(p.name, p.kind) for p in ms.permissions()}
    assert seen == set(ms.TIERS)
    assert [ms.tier_rank(t) for t in ms.TIERS] == [0, 1, 2, 3]


RULES = {
    "default_tier": "low", "tenant_constraints": ["All"], "narrow_constraints": ["OwnedBy"],
    "delegated_tenant_words": ["organization"], "delegated_own_phrases": ["signed-in user's"],
    "read_operations": [], "basic_operations": ["ReadBasic"], "sensitive_resources": ["Mail"],
    "overrides": [{"permission": "Group.Read.All", "tier": "critical", "reason": "test"}],
}


def test_rules_are_data_an_override_or_a_list_entry_changes_the_tier() -> None:
    rules = ms.parse_tier_rules(json.dumps(RULES))
    assert ms.derive_tier("Group.Read.All", "delegated", None, rules) == "critical"
    assert ms.derive_tier("Mail.Read", "application", None, rules) == "high"
    assert ms.derive_tier("Notes.Read", "application", None, rules) == "medium"
    assert ms.derive_tier("Notes.ReadWrite.OwnedBy", "application", None, rules) == "low"
    org = "Allows the app to read your organization's notes on behalf of the signed-in user."
    own = "Allows the app to read the signed-in user's notes."
    assert ms.derive_tier("Notes.Read", "delegated", org, rules) == "medium"
    assert ms.derive_tier("Notes.Read", "delegated", own, rules) == "low"
    more = dict(RULES, sensitive_resources=["Mail", "Notes"])
    assert ms.derive_tier("Notes.Read", "application", None,
                          ms.parse_tier_rules(json.dumps(more))) == "high"


@pytest.mark.parametrize(("change", "message"), [
    ({"default_tier": "severe"}, "tier must be one of"),
    ({"sensitive_resources": "Mail"}, "must be a list of strings"),
    ({"overrides": [{"permission": "X.Read.All", "tier": "low"}]}, "needs permission and reason"),
    ({"overrides": [{"permission": "X.Read.All", "tier": "low", "reason": "r", "kind": "user"}]},
     "kind must be"),
    ({"overrides": [{"permission": "X.Read.All", "tier": "low", "reason": "r"},
                    {"permission": "x.read.all", "tier": "high", "reason": "r",
                     "kind": "delegated"}]}, "overridden twice"),
])
def test_bad_rules_are_rejected_with_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ms.parse_tier_rules(json.dumps(dict(RULES, **change)))


# -- privileges of a record's claims ------------------------------------------------------

def test_app_only_roles_give_the_highest_tier_and_sorted_privileged_names() -> None:
    got = ms.privileges("User.Read.All Mail.Read Mail.Read RoleManagement.ReadWrite.Directory "
                        "User.ReadBasic.All", None)
    assert got == ms.Privileges(tier="critical", app_only=True, unknown=(), privileged=(
        "Mail.Read", "RoleManagement.ReadWrite.Directory", "User.Read.All"))


def test_delegated_scopes_are_judged_as_delegated() -> None:
    got = ms.privileges("", "openid profile email offline_access User.Read Mail.Read Files.Read")
    assert got == ms.Privileges(tier="low", privileged=(), app_only=False)
    got = ms.privileges(None, "User.Read Directory.Read.All Sites.ReadWrite.All")
    assert got.tier == "high" and not got.app_only
    assert got.privileged == ("Directory.Read.All", "Sites.ReadWrite.All")


def test_empty_claims_and_unknown_names() -> None:
    assert ms.privileges(None, None) == ms.Privileges(tier="low", privileged=(), app_only=False)
    assert ms.privileges("", "  ") == ms.privileges(None, None)
    got = ms.privileges("Widgets.ReadWrite.All Device.Read.All", None)
    assert got.tier == "high" and got.app_only
    assert got.privileged == ("Device.Read.All", "Widgets.ReadWrite.All")
    assert got.unknown == ("Widgets.ReadWrite.All",)


def test_both_claims_present_is_not_app_only() -> None:
    got = ms.privileges("Group.Read.All", "User.Read")
    assert got.tier == "medium" and not got.app_only and got.privileged == ("Group.Read.All",)


# -- Microsoft clients' start-up requests -------------------------------------------------

@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/v1.0/organization"),
    ("GET", "/v1.0/me/licenseDetails"),
    ("get", "/v1.0/me/photo/$value"),
    ("GET", "/v1.0/me/photo"),
    ("GET", "/v1.0/me/photos/{id}/$value"),  # /me/photos/96x96/$value after ingest
    ("GET", "/beta/me/settings/regionalAndLanguageSettings"),
    ("GET", "/v1.0/me/drive/special/copilotuploads"),
    ("GET", "/v1.0/me/informationProtection/sensitivityLabels/"),
    ("GET", "/beta/me/informationProtection/dataLossPreventionPolicies"),
])
def test_client_startup_requests(method: str, template: str) -> None:
    assert ms.is_client_startup(method, template)


@pytest.mark.parametrize(("method", "template"), [
    ("POST", "/v1.0/me/drive/special/copilotuploads:{path}:/createUploadSession"),
    ("PATCH", "/beta/me/settings/regionalAndLanguageSettings"),
    ("GET", "/v1.0/me/photographs"),  # a prefix of a word is not the subtree
    ("GET", "/v1.0/users/{id}/photo/$value"),  # another user's photo is not start-up
    ("GET", "/v1.0/organization/{id}/branding"),
    ("GET", "/v1.0/me/messages"),
    ("GET", "/v1.0/me"),
    ("GET", "/v1.0/me/drive/special/copilotuploads/children"),
])
def test_other_requests_are_not_client_startup(method: str, template: str) -> None:
    assert not ms.is_client_startup(method, template)


def test_every_startup_pattern_matches_itself_and_notes_its_source() -> None:
    for method, template, note in ms.client_startup_patterns():
        assert ms.is_client_startup(method, template.removesuffix(ms.SUBTREE))
        assert "detection-rules" in note or "http" in note


@pytest.mark.parametrize(("line", "message"), [
    ("GET,/v1.0/Me/Photo,note", "not canonical"),
    ("FETCH,/me/photo,note", "unknown method"),
    ("GET,/me/photo,", "note"),
    ("GET,/me/photo", "2 fields"),
])
def test_bad_startup_lines_are_rejected(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ms.parse_client_startup("method,template,note\n" + line + "\n")
