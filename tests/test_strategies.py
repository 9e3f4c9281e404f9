"""Issue 12, item 2: Hypothesis strategies for client authors, drawn from the response schemas. Valid values pass
the sandbox's own validator, invalid ones never do, for a sample of every provider's responses (cross-file defs,
oneOf, patterns with offsets, maps keyed by an enum)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from sandbox.testing import strategies

CASES = [("open_finance", "get_financial_report"), ("open_finance", "list_connections"),
         ("finleap", "list_transactions"), ("finleap", "get_income_report"), ("finpass", "aa_init"),
         ("finpass", "multi_bureau_fetch"), ("fino", "list_contracts"), ("fino", "get_person_cockpit")]
FAST = settings(max_examples=10, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


@pytest.mark.parametrize("provider,operation", CASES, ids=[f"{p}.{o}" for p, o in CASES])
@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
def test_drawn_responses_have_the_verdict_asked_for(provider, operation, valid):
    sid = strategies.schema_for(provider, operation)
    validator = strategies.registry().validator(sid)

    @FAST
    @given(strategies.responses(provider, operation, valid=valid))
    def check(body):
        assert (not any(validator.iter_errors(body))) is valid

    check()


def test_error_envelopes_and_request_bodies_too():
    validator = strategies.registry().validator(strategies.schema_for("open_finance", "create_token", "request"))

    @FAST
    @given(strategies.request_bodies("open_finance", "create_token"), strategies.errors("finleap"))
    def check(body, error):
        assert not any(validator.iter_errors(body))
        assert "error" in error

    check()


def test_an_operation_without_such_a_schema_is_named():
    with pytest.raises(LookupError, match="open_finance.create_token has no query schema"):
        strategies.schema_for("open_finance", "create_token", "query")


# --- webhook payloads (the schemas each provider declares per event: Provider.webhooks) ------------------------------
def _declared_webhooks():
    from sandbox.providers import PROVIDERS
    return sorted((decl.name, event) for decl in PROVIDERS for event in decl.webhooks)


WEBHOOKS = _declared_webhooks()


@pytest.mark.parametrize("provider,event", WEBHOOKS, ids=[f"{p}:{e}" for p, e in WEBHOOKS])
@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
def test_drawn_webhook_payloads_have_the_verdict_asked_for(provider, event, valid):
    validator = strategies.registry().validator(strategies.webhook_schema(provider, event))

    @FAST
    @given(strategies.webhook_payloads(provider, event, valid=valid))
    def check(payload):
        assert (not any(validator.iter_errors(payload))) is valid

    check()


def test_webhook_payloads_of_any_event_of_a_provider():
    """event=None draws from every declared event: each payload validates against its own event's schema."""
    events = strategies.webhook_events("finpass")
    validators = [strategies.registry().validator(strategies.webhook_schema("finpass", e)) for e in events]

    @FAST
    @given(strategies.webhook_payloads("finpass"), strategies.webhook_payloads("finpass", valid=False))
    def check(good, bad):
        assert any(not any(v.iter_errors(good)) for v in validators)
        assert all(any(v.iter_errors(bad)) for v in validators)

    check()


def test_finleap_payload_data_follows_the_observe_key():
    """finleap.md s.7: a balance observe key carries the balance, a transactions key a list (never crossed)."""
    validator = strategies.registry().validator(strategies.webhook_schema("finleap", "notification"))

    @FAST
    @given(strategies.webhook_payloads("finleap", "notification"))
    def check(payload):
        assert isinstance(payload["data"], dict) == ("/balance" in payload["observe_key"])
        crossed = {**payload, "data": [] if isinstance(payload["data"], dict) else {"balance": 1.0}}
        assert any(validator.iter_errors(crossed))

    check()


def test_an_undeclared_webhook_event_is_named():
    with pytest.raises(LookupError, match="fino sends no webhook event 'payments'"):
        strategies.webhook_payloads("fino", "payments")
