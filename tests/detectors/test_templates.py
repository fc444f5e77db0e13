"""detectors.templates: one comparable form for every spelling of a template (no type-cast
segment may hide one from a detector)."""

from __future__ import annotations

import pytest

from detectors.templates import canonical_template


@pytest.mark.parametrize(("template", "canonical"), [
    ("/applications/{id}/addPassword", "/applications/{id}/addpassword"),
    ("/v1.0/applications/{id}/addPassword/", "/applications/{id}/addpassword"),
    ("/beta/Applications(appId='{id}')/microsoft.graph.addPassword",
     "/applications/{id}/addpassword"),
    ("/applications/{id}/microsoft.graph.agentIdentityBlueprint/addPassword",
     "/applications/{id}/addpassword"),
    ("/applications/{id}/microsoft.graph.agentIdentityBlueprint/addKey",
     "/applications/{id}/addkey"),
    ("/servicePrincipals/{id}/microsoft.graph.servicePrincipal/owners/$ref",
     "/serviceprincipals/{id}/owners/$ref"),
    ("/users/{upn}/messages", "/users/{id}/messages"),
    ("/users/5b1e2c7a-93d4-4f0e-8a61-2f3c9d7e4b10/drive", "/users/{id}/drive"),
    ("/groups/{id}/members/microsoft.graph.user", "/groups/{id}/members/user"),
    ("/sites?search=*", "/sites"),
    ("/v1.0", "/"),
    ("", "/"),
])
def test_canonical_form(template: str, canonical: str) -> None:
    assert canonical_template(template) == canonical


def test_a_final_cast_segment_keeps_its_name() -> None:
    """A trailing ``microsoft.graph.x`` is an action or a cast of the collection: it stays,
    without its prefix; only casts followed by more segments are dropped."""
    assert canonical_template("/directoryObjects/microsoft.graph.getByIds") \
        == "/directoryobjects/getbyids"
