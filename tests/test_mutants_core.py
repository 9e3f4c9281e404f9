"""Tests that kill mutants `make mutate` found surviving in core (auth.consume, jobs): each states a behaviour the
suite relied on without checking it, on both sides of its boundary."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sandbox import create_app
from sandbox.core.errors import NotFound
from sandbox.core.store import MemoryStore

T0 = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)
KIND = "test.mutants"


@pytest.fixture
def sb():
    app = create_app({"SEED": 3}, store=MemoryStore(), system_clock=lambda: T0)
    return app.extensions["sandbox"]


def _code(sb, value: str, ttl: float = 60.0, tenant: str = "sandbox-client") -> None:
    client = {**sb.auth.default_client(), "tenant": tenant}
    sb.auth.issue("finleap", client, value, ttl, kind="code", subject="u")


# --- auth.consume: single-use codes die at their expiry instant, on their tenant's clock ------------------------

def test_a_code_is_consumable_until_just_before_its_expiry_instant(sb):
    sb.clock.freeze(None, T0)
    _code(sb, "code-a")
    sb.clock.freeze(None, T0 + timedelta(seconds=59.999))
    assert sb.auth.consume("finleap", "code-a", "code")["subject"] == "u"
    assert sb.auth.consume("finleap", "code-a", "code") is None           # single use


def test_a_code_is_dead_at_its_expiry_instant(sb):
    sb.clock.freeze(None, T0)
    _code(sb, "code-b")
    sb.clock.freeze(None, T0 + timedelta(seconds=60))
    assert sb.auth.consume("finleap", "code-b", "code") is None


def test_code_expiry_is_judged_on_the_tenants_own_clock(sb):
    sb.clock.freeze(None, T0)
    sb.clock.freeze("tenant-x", T0)
    _code(sb, "code-c", tenant="tenant-x")
    sb.clock.freeze("tenant-x", T0 + timedelta(seconds=61))   # the global clock still says T0
    assert sb.auth.consume("finleap", "code-c", "code") is None
    _code(sb, "code-d", tenant="tenant-x")                     # issued at the tenant's T0 + 61 s
    sb.clock.freeze("tenant-x", T0 + timedelta(seconds=61 + 59))
    assert sb.auth.consume("finleap", "code-d", "code") is not None


# --- jobs --------------------------------------------------------------------------------------------------------

def test_a_tenant_reset_forgets_its_job_policies_and_keeps_the_others(sb):
    default = sb.jobs.policy("tenant-a", KIND)
    sb.jobs.set_policy({"mode": "manual"}, KIND, "tenant-a")
    sb.jobs.set_policy({"mode": "instant"}, KIND, "tenant-b")
    assert sb.jobs.policy("tenant-a", KIND) == {"mode": "manual"}
    sb.reset("tenant-a")
    assert sb.jobs.policy("tenant-a", KIND) == default
    assert sb.jobs.policy("tenant-b", KIND) == {"mode": "instant"}


def test_a_tenant_reset_drops_its_open_jobs_from_the_tickers_index(sb):
    sb.jobs.on_transition(KIND, lambda *args: None)   # the ticker indexes open jobs of kinds with hooks
    sb.jobs.set_policy({"mode": "auto", "seconds": 1000}, KIND)
    kept = sb.jobs.create("tenant-b", KIND, ["RUNNING", "DONE"])
    sb.jobs.create("tenant-a", KIND, ["RUNNING", "DONE"])
    sb.reset("tenant-a")
    open_jobs = [k for k, _ in sb.store.list("_sandbox", "jobs_open")]
    assert open_jobs == [f"tenant-b|{kept['id']}"]


def test_reading_a_job_is_not_a_poll(sb):
    """``get`` (the control API's read) never counts toward the poll rule; ``poll`` (a client's read) does."""
    sb.jobs.set_policy({"mode": "auto", "seconds": 1000, "polls": 2}, KIND)
    job = sb.jobs.create("t", KIND, ["RUNNING", "DONE"])
    for _ in range(3):
        assert sb.jobs.get("t", job["id"])["state"] == "RUNNING"
    assert sb.jobs.poll("t", job["id"])["state"] == "RUNNING"
    assert sb.jobs.poll("t", job["id"])["state"] == "DONE"


def test_completing_a_job_fires_the_hook_of_every_state_it_enters(sb):
    entered = []
    sb.jobs.on_transition(KIND, lambda tenant, job, state: entered.append(state))
    sb.jobs.set_policy({"mode": "manual"}, KIND)
    job = sb.jobs.create("t", KIND, ["QUEUED", "RUNNING", "COMPLETED"])
    assert sb.jobs.complete("t", job["id"])["state"] == "COMPLETED"
    assert entered == ["RUNNING", "COMPLETED"]


def test_resuming_an_unknown_job_names_it(sb):
    with pytest.raises(NotFound, match="nope-123"):
        sb.jobs.resume("t", "nope-123")


def test_resume_continues_by_the_job_kinds_own_policy(sb):
    """After a hold, the job follows its kind's policy (here instant: straight to the end), not the tenant's."""
    sb.jobs.set_policy({"mode": "manual"}, "*", "t")
    sb.jobs.set_policy({"mode": "instant"}, KIND, "t")
    job = sb.jobs.create("t", KIND, ["QUEUED", "RUNNING", "AWAIT", "RUNNING2", "DONE"], holds=[2])
    assert sb.jobs.peek("t", job["id"])["state"] == "AWAIT"
    assert sb.jobs.resume("t", job["id"])["state"] == "DONE"


@pytest.mark.parametrize("policy", [{"mode": "sometimes"}, {"mode": "auto"}, {"mode": "auto", "polls": 0},
                                    {"mode": "auto", "seconds": None, "polls": None}])
def test_policies_that_cannot_run_are_refused(sb, policy):
    with pytest.raises(ValueError):
        sb.jobs.set_policy(policy, KIND)
    assert sb.jobs.policy("t", KIND) == sb.jobs.policy("t", "other.kind")   # nothing was stored


def test_an_auto_policy_keeps_what_it_is_given_as_numbers(sb):
    assert sb.jobs.set_policy({"mode": "auto", "seconds": "2.5"}, KIND, "t") == {"mode": "auto", "seconds": 2.5,
                                                                                 "polls": None}
    assert sb.jobs.set_policy({"mode": "auto", "polls": "3"}, KIND) == {"mode": "auto", "seconds": None, "polls": 3}
    assert sb.jobs.policy("t", KIND)["seconds"] == 2.5          # the tenant's own entry wins
    assert sb.jobs.policy("u", KIND)["polls"] == 3               # others get the global one
    sb.jobs.clear_policy(KIND, "t")
    assert sb.jobs.policy("t", KIND)["polls"] == 3
