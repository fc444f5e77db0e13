import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphsentry.ingest.uri import (
    _analyze_path,
    analyze_path,
    analyze_uri,
    clear_caches,
    is_download,
    is_write,
)

G = "https://graph.microsoft.com"
GUID = "5e7a7e7a-1111-4222-8333-444455556666"
DRIVE = "b!-RIj2DuyvEyV1T4NlOaMHk8XkS_I8MdFlUCq1BlcjgmhRfAj3-Z8RY2VpuvV_tpd"
ITEM = "01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K"


@pytest.mark.parametrize(
    ("uri", "template"),
    [
        (f"{G}/v1.0/users", "/users"),
        (f"{G}/beta//users/{GUID}/memberOf", "/users/{id}/memberOf"),
        (f"{G}/v1.0/users/{GUID}/", "/users/{id}"),
        (f"{G}/V1.0/groups/{GUID.upper()}/members?$top=999", "/groups/{id}/members"),
        (f"{G}/v1.0/users/rob@m7kni.io/messages", "/users/{upn}/messages"),
        (f"{G}/v1.0/users/rob%40m7kni.io/messages", "/users/{upn}/messages"),
        (f"{G}/v1.0/users/<pii>First.Last</pii>@example.com", "/users/{upn}"),
        (f"{G}/v1.0/users/john_x.com%23EXT%23@t.onmicrosoft.com", "/users/{upn}"),
        (f"{G}/v1.0/drives/{DRIVE}/items/{ITEM}/content", "/drives/{id}/items/{id}/content"),
        (f"{G}/v1.0/me/drive/root:/Docs/Q1 plan.xlsx:/content", "/me/drive/root:{path}:/content"),
        (f"{G}/v1.0/me/drive/root:/Docs", "/me/drive/root:{path}"),
        (f"{G}/v1.0/me/photos/48x48/$value", "/me/photos/{id}/$value"),
        (f"{G}/v1.0/devices/12345", "/devices/{id}"),
        (f"{G}/v1.0/me/messages/AAMkAGI2TG93AAA=/attachments", "/me/messages/{id}/attachments"),
        (f"{G}/v1.0/me/messages/AAMkAGI2TG93AAA/attachments", "/me/messages/{id}/attachments"),
        (f"{G}/v1.0/me/mailFolders/Inbox/messages", "/me/mailFolders/Inbox/messages"),
        (f"{G}/v1.0/oauth2PermissionGrants", "/oauth2PermissionGrants"),
        (f"{G}/v1.0/me/authentication/fido2Methods", "/me/authentication/fido2Methods"),
        (f"{G}/v1.0/users/delta()", "/users/delta()"),
        (f"{G}/v1.0/users/microsoft.graph.delta", "/users/microsoft.graph.delta"),
        (f"{G}/v1.0/applications(appId='{GUID}')", "/applications(appId={id})"),
        (f"{G}/v1.0/users('bob@x.com')/drive", "/users({upn})/drive"),
        (f"{G}/v1.0/sites/contoso.sharepoint.com:/sites/mkt:/drives", "/sites/{id}:{path}:/drives"),
        (f"{G}/v1.0/sites/contoso.sharepoint.com,{GUID},{GUID}/lists", "/sites/{id}/lists"),
        (f"{G}/v1.0/teams/{GUID}/channels/19:abc@thread.tacv2/messages",
         "/teams/{id}/channels/{id}/messages"),
        (f"{G}/v1.0/$batch", "/$batch"),
        (f"{G}/v1.0/users#fragment", "/users"),
        (G, "/"),
        ("/v1.0/organization", "/organization"),
    ],
)
def test_template_strips_version_query_slashes_and_ids(uri: str, template: str) -> None:
    assert analyze_uri(uri).path.template == template


@pytest.mark.parametrize(
    ("path", "family", "category"),
    [
        ("/organization", "organization", "directory"),
        ("/users", "users", "directory"),
        (f"/users/{GUID}/memberOf", "users", "directory"),
        ("/groups", "groups", "directory"),
        ("/applications", "applications", "directory"),
        ("/servicePrincipals", "servicePrincipals", "directory"),
        ("/serviceprincipals", "servicePrincipals", "directory"),
        ("/directoryRoles", "directoryRoles", "directory"),
        ("/roleManagement/directory/roleDefinitions", "roleManagement", "directory"),
        ("/devices", "devices", "directory"),
        ("/policies/authorizationPolicy", "policies", "directory"),
        ("/domains", "domains", "directory"),
        ("/me", "me", "directory"),
        (f"/drives/{DRIVE}/root/children", "onedrive", "storage"),
        ("/me/drive/root/children", "onedrive", "storage"),
        (f"/users/{GUID}/drive", "onedrive", "storage"),
        (f"/users/{GUID}/drives", "onedrive", "storage"),
        ("/sites/root", "sharepoint", "storage"),
        (f"/groups/{GUID}/drive/root", "sharepoint", "storage"),
        ("/me/messages", "mail", "mail"),
        (f"/users/{GUID}/mailFolders/Inbox/messages", "mail", "mail"),
        ("/me/sendMail", "mail", "mail"),
        (f"/users/{GUID}/authentication/methods", "authentication_methods",
         "authentication_methods"),
        ("/me/authentication/phoneMethods", "authentication_methods", "authentication_methods"),
        ("/search/query", "search", "search"),
        ("/$batch", "batch", "batch"),
        ("/teams", "teams", "other"),
        ("/somethingNew/x", "other", "other"),
        ("/", "other", "other"),
        (f"/{GUID}", "other", "other"),
    ],
)
def test_family_and_category(path: str, family: str, category: str) -> None:
    info = analyze_uri(G + "/v1.0" + path).path
    assert (info.family, info.category) == (family, category)


@pytest.mark.parametrize(
    ("path", "targets"),
    [
        (f"/users/{GUID}/drive/root/children", {"target_user": GUID}),
        ("/users/rob@m7kni.io/messages", {"target_user": "rob@m7kni.io"}),
        ("/users/<pii>First.Last</pii>@example.com", {"target_user": "First.Last@example.com"}),
        ("/me/drive/root/children", {"target_user": "me"}),
        (f"/drives/{DRIVE}/items/{ITEM}/content", {"target_drive": DRIVE, "target_item": ITEM}),
        (f"/users/{GUID}/drives/{DRIVE}/items/{ITEM}",
         {"target_user": GUID, "target_drive": DRIVE, "target_item": ITEM}),
        ("/me/drive/root:/a/b.txt:/content", {"target_user": "me", "target_item": "root:/a/b.txt"}),
        (f"/sites/{GUID}/drive/items/{ITEM}", {"target_site": GUID, "target_item": ITEM}),
        ("/sites/contoso.sharepoint.com:/sites/mkt",
         {"target_site": "contoso.sharepoint.com:/sites/mkt"}),
        (f"/sites/{GUID}/lists/{GUID}/items/7", {"target_site": GUID}),  # a list item, not a file
        (f"/applications/{GUID}/addPassword", {"target_application": GUID}),
        (f"/servicePrincipals/{GUID}/appRoleAssignedTo", {"target_application": GUID}),
        (f"/applications(appId='{GUID}')/addKey", {"target_application": GUID}),
        (f"/servicePrincipals(appId='{GUID}')", {"target_application": GUID}),
        ("/users/delta()", {}),
        ("/users", {}),
    ],
)
def test_targets_from_the_path(path: str, targets: dict[str, str]) -> None:
    info = analyze_uri(G + "/v1.0" + path).path
    found = {name: getattr(info, name) for name in
             ("target_user", "target_drive", "target_site", "target_item", "target_application")
             if getattr(info, name) is not None}
    assert found == targets


@pytest.mark.parametrize(
    ("method", "path", "write"),
    [
        ("GET", "/users", False),
        ("POST", "/users", True),
        ("PATCH", f"/users/{GUID}", True),
        ("PUT", f"/drives/{DRIVE}/items/{ITEM}/content", True),
        ("DELETE", f"/users/{GUID}/authentication/phoneMethods/{GUID}", True),
        ("POST", f"/applications/{GUID}/addPassword", True),
        ("POST", "/$batch", False),
        ("POST", "/search/query", False),
        ("POST", "/roleManagement/directory/estimateAccess", False),
        ("POST", f"/users/{GUID}/getMemberObjects", False),
        ("POST", f"/users/{GUID}/checkMemberGroups", False),
        ("POST", "/directoryObjects/getByIds", False),
        ("POST", "/directoryObjects/microsoft.graph.getByIds", False),
        ("DELETE", "/$batch", True),  # only a POST can be a read-style action
    ],
)
def test_is_write(method: str, path: str, write: bool) -> None:
    assert is_write(method, analyze_uri(G + "/v1.0" + path).path) is write


@pytest.mark.parametrize(
    ("method", "path", "download"),
    [
        ("GET", f"/drives/{DRIVE}/items/{ITEM}/content", True),
        ("GET", f"/drives/{DRIVE}/items/{ITEM}/content?format=pdf", True),
        ("GET", "/me/drive/root:/a.txt:/content", True),
        ("GET", f"/me/drive/items/{ITEM}/$value", True),
        ("GET", "/me/photo/$value", False),
        ("GET", f"/me/messages/{ITEM}/$value", False),
        ("GET", f"/drives/{DRIVE}/items/{ITEM}", False),
        ("PUT", f"/drives/{DRIVE}/items/{ITEM}/content", False),
    ],
)
def test_is_download(method: str, path: str, download: bool) -> None:
    assert is_download(method, analyze_uri(G + "/v1.0" + path).path) is download


@pytest.mark.parametrize(
    ("query", "top", "search", "filter_"),
    [
        ("", None, False, False),
        ("?$top=999", 999, False, False),
        ("?%24top=50&%24filter=x%20eq%201", 50, False, True),
        ("?$TOP=5&$Search=%22a%22", 5, True, False),
        ("?top=7&filter=x", 7, False, True),
        ("?$select=id&$top=abc", None, False, False),
        ("?$top=-1", None, False, False),
        ("?$top=99999999999", None, False, False),
        ("?$select=displayName,id,deviceId&$search=%22displayName:a%22&$top=30", 30, True, False),
    ],
)
def test_query_flags(query: str, top: int | None, search: bool, filter_: bool) -> None:
    info = analyze_uri(f"{G}/v1.0/users{query}")
    assert (info.query_top, info.has_search, info.has_filter) == (top, search, filter_)


# --- the per-shape fast path gives exactly what the full analysis gives -----------------------

_SEGMENTS = st.sampled_from([
    "users", "Users", "memberOf", "drives", "drive", "items", "root", "children", "content",
    "$value", "sites", "groups", "me", "messages", "mailFolders", "Inbox", "applications",
    "servicePrincipals", "search", "query", "$batch", "delta", "v1.0", "beta", "addPassword",
    GUID, GUID.upper(), DRIVE, ITEM, "12345", "48x48", "AAMkAGI2TG93AAA", "x" * 70, "naïve",
    "rob@m7kni.io", "delta()", "root:", "a%20b", "<pii>x</pii>", "", "neverSeenWord",
]) | st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#"),
              min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(_SEGMENTS, max_size=7), st.sampled_from(["/v1.0", "/beta", "", "/V1.0"]))
def test_shape_fast_path_matches_the_full_analysis(segments: list[str], version: str) -> None:
    path = version + "/" + "/".join(segments)
    expected = _analyze_path.__wrapped__(path)
    assert analyze_path(path) == expected
    clear_caches()  # and again from nothing learned
    assert analyze_path(path) == expected
    assert analyze_path(path) == expected


def test_an_empty_segment_before_a_path_address_is_an_identifier() -> None:
    # ":/users" addresses a path from an empty segment: once an IndexError (internal_error)
    assert analyze_uri(f"{G}/v1.0/:/users").path.template == "/{id}:{path}"
