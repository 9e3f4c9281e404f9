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
