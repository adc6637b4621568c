"""Schemathesis over every operation of the public API, as two resellers' integration tokens.

Reseller A fuzzes the whole schema with a token of each role tokens may hold (drawn per case);
then reseller B, with its admin token, runs a smaller round against A's objects. Every answer
must be below 500 and conform to the schema (status code, content type, body), and may never
contain the other reseller's marker or keys. Path parameters and body references are drawn from
the caller's own ids, the other reseller's ids or whatever the fuzzer generated; naming the other
reseller's object must look exactly like naming no object at all (404, or the 403 the role gets
whatever the id), and a write that refers to the other reseller's object must be refused.

Both resellers are built once per module (services and real ingestion take seconds), inside a
transaction that is rolled back at the end; each case runs in the per-test savepoint on top.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import override_settings
from django.test.client import ClientHandler
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal import rls
from portal.tenancy import MEMBERSHIP_ROLES, Role
from tests.openapi import openapi_document
from tests.portal.api_tenants import TenantWorld, tenant_world_build

# Cases per operation (38 operations): 15 as A (each with a token of a drawn role), 5 as B, and
# 3 workflows of 6 calls; about 780 requests, sized for CI's budget of ~3 minutes for this file.
# Derandomized: every run sends the same cases. Raise it locally to dig deeper.
EXAMPLES = int(os.environ.get("INKMETER_API_FUZZ_EXAMPLES", "15"))
EXAMPLES_OTHER = max(1, EXAMPLES // 3)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# An id no object has: the answer to the other reseller's ids must be this one's.
MISSING_ID = 2**31 - 1
# Body fields that refer to objects: the fuzzer may point them at either reseller's.
BODY_REFERENCES = ("site", "product", "supply")

schema = schemathesis.openapi.from_dict(openapi_document())


class DjangoApp:
    """Django's test request handler as a WSGI application, for schemathesis' WSGI transport.

    Unlike the production WSGIHandler it keeps the test's database connection (and so its
    transaction) open, and it re-raises a view's exception with its traceback, as the test
    client does, instead of hiding it behind a 500 page."""

    def __init__(self) -> None:
        self.handler = ClientHandler(enforce_csrf_checks=True)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        raised: list[BaseException] = []

        def store(sender: Any, request: Any = None, **kwargs: Any) -> None:
            import sys

            raised.append(sys.exc_info()[1])

        got_request_exception.connect(store, dispatch_uid="api-fuzz")
        try:
            response = self.handler(environ)
        finally:
            got_request_exception.disconnect(dispatch_uid="api-fuzz")
        if raised:
            raise raised[0]
        headers = [*response.items()]
        headers += [("Set-Cookie", c.output(header="").strip()) for c in response.cookies.values()]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return response


APP = DjangoApp()


@dataclass
class Tenants:
    a: TenantWorld
    b: TenantWorld


@pytest.fixture(scope="module")
def tenants(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Tenants]:
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            # Set-up spans tenants, as in every test (tests/conftest.py acts as system there).
            with (
                override_settings(
                    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
                ),
                rls.system("a test's set-up builds two resellers"),
            ):
                built = Tenants(
                    # A token of each role tokens may hold for A; B's admin token.
                    a=tenant_world_build("A", token_roles=MEMBERSHIP_ROLES),
                    b=tenant_world_build("B", token_roles=[Role.RESELLER_ADMIN]),
                )
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


def _point_at(
    data: st.DataObject, value: Any, name: str, me: TenantWorld, other: TenantWorld
) -> tuple[Any, bool]:
    """The generated value, one of my objects or one of the other reseller's."""
    if not isinstance(value, int) or isinstance(value, bool):
        return value, False
    choice = data.draw(st.sampled_from(["generated", "mine", "theirs"]), label=f"{name} from")
    if choice == "generated" or not me.ids[name] or not other.ids[name]:
        return value, False
    pool = me.ids[name] if choice == "mine" else other.ids[name]
    return data.draw(st.sampled_from(sorted(pool)), label=name), choice == "theirs"


def _aim(
    case: Any, data: st.DataObject, me: TenantWorld, other: TenantWorld
) -> tuple[set[str], set[str]]:
    """Point the case's path parameters and body references at objects; returns the names of
    those that now name the other reseller's objects."""
    theirs_in_path: set[str] = set()
    for name, value in list((case.path_parameters or {}).items()):
        case.path_parameters[name], theirs = _point_at(data, value, name, me, other)
        if theirs:
            theirs_in_path.add(name)
    theirs_in_body: set[str] = set()
    if isinstance(case.body, dict):
        targets = [case.body]
        lines = case.body.get("lines")
        if isinstance(lines, list):
            targets += [line for line in lines if isinstance(line, dict)]
        for target in targets:
            for name in BODY_REFERENCES:
                if name in target:
                    target[name], theirs = _point_at(data, target[name], name, me, other)
                    if theirs:
                        theirs_in_body.add(name)
    return theirs_in_path, theirs_in_body


def _fuzz(
    case: Any, data: st.DataObject, me: TenantWorld, other: TenantWorld, roles: list[Role]
) -> None:
    role = data.draw(st.sampled_from(roles), label="token role")
    headers = {"Authorization": f"Bearer {me.tokens[role]}"}
    theirs_in_path, theirs_in_body = _aim(case, data, me, other)

    response = case.call_and_validate(app=APP, headers=headers, checks=CHECKS)

    leaks = other.leaks_in(response.content.decode(errors="replace"))
    assert not leaks, f"{case.method} {case.formatted_path} as {role} shows {leaks}"
    if theirs_in_path:
        assert response.status_code in (403, 404), (response.status_code, response.text)
        for name in theirs_in_path:
            case.path_parameters[name] = MISSING_ID
        missing = case.call(app=APP, headers=headers)
        assert (response.status_code, response.content) == (missing.status_code, missing.content)
    if theirs_in_body:
        assert response.status_code >= 400, f"{case.method} {case.formatted_path} accepted"


FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.django_db
@schema.parametrize()
@schema.given(data=st.data())
@settings(FUZZ, max_examples=EXAMPLES)
def test_reseller_a_tokens_see_only_their_own(case: Any, data: Any, tenants: Tenants) -> None:
    _fuzz(case, data, me=tenants.a, other=tenants.b, roles=sorted(tenants.a.tokens))


@pytest.mark.django_db
@schema.parametrize()
@schema.given(data=st.data())
@settings(FUZZ, max_examples=EXAMPLES_OTHER)
def test_reseller_b_token_sees_only_its_own(case: Any, data: Any, tenants: Tenants) -> None:
    _fuzz(case, data, me=tenants.b, other=tenants.a, roles=sorted(tenants.b.tokens))


# Sequences of calls along the links schemathesis infers (create a customer, then read, patch
# and add sites to it; list statements, then finalise one; ...), as A's admin token.
WORKFLOWS = max(1, EXAMPLES // 5)
WORKFLOW_STEPS = 6


@pytest.mark.django_db
def test_reseller_a_admin_workflows_see_only_their_own(tenants: Tenants) -> None:
    headers = {"Authorization": f"Bearer {tenants.a.tokens[Role.RESELLER_ADMIN]}"}

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": APP, "headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers)
            leaks = tenants.b.leaks_in(response.content.decode(errors="replace"))
            assert not leaks, f"{case.method} {case.formatted_path} shows {leaks}"

    run_state_machine_as_test(
        Workflow,
        settings=settings(FUZZ, max_examples=WORKFLOWS, stateful_step_count=WORKFLOW_STEPS),
    )
