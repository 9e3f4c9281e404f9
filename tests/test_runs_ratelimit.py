import threading
from datetime import datetime, timedelta, timezone

import pytest

from sandbox.core.clock import Clock, isoformat
from sandbox.core.errors import Accepted, Conflict, NotFound, TooManyRequests
from sandbox.core.ids import IdGen
from sandbox.core.jobs import Jobs
from sandbox.core.ratelimit import RateLimiter, window_bounds
from sandbox.core.runs import Runs

from .conftest import FakeWall

T0 = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)
DELAY = 10  # seconds the dummy run stays RUNNING under the default auto policy
STATUSES = {"RUNNING": "in_progress", "DONE": "ready", "FAILED": "error"}


class World:
    """Store + frozen sandbox clock + jobs + runs, with one dummy run kind whose compute calls are recorded."""

    def __init__(self, store, **kind_options):
        self.store, self.wall = store, FakeWall(T0)
        self.clock = Clock(store, self.wall)
        self.clock.freeze(at=T0)
        self.ids = IdGen(store, 11)
        self.jobs = Jobs(store, self.clock, self.ids, default_seconds=DELAY, default_polls=0)
        self.runs = Runs(store, self.jobs, self.clock, self.ids)
        self.calls = []
        self.runs.register("dummy", ["RUNNING", "DONE"], done_state="DONE", compute=self.compute,
                           statuses=STATUSES, **kind_options)

    def compute(self, tenant, subject, run):
        self.calls.append((tenant, subject, run["id"]))
        return {"tenant": tenant, "subject": subject, "run": run["id"], "params": run["params"],
                "completed_at": run["completed_at"]}

    def finish(self, seconds=DELAY):
        """Move the clock and let the ticker walk due jobs, as the background ticker would."""
        self.clock.advance(seconds)
        return self.jobs.tick()


@pytest.fixture
def world(store):
    return World(store)


def expected(run, tenant="t", subject="u1", params=None, done_after=DELAY):
    return {"tenant": tenant, "subject": subject, "run": run["id"], "params": params or {},
            "completed_at": isoformat(T0 + timedelta(seconds=done_after))}


# --- runs ------------------------------------------------------------------------------------------

def test_while_running_modes_before_any_completed_run(store):
    w = World(store, while_running="accepted")
    run = w.runs.start("t", "dummy", "u1")
    assert run["state"] == "RUNNING" and run["status"] == "in_progress" and not run["done"]
    with pytest.raises(Accepted) as accepted:
        w.runs.results("t", "dummy", "u1")
    assert accepted.value.status == 202 and accepted.value.kind == "accepted"
    assert accepted.value.details["status"] == "in_progress"
    assert accepted.value.details["correlation_id"] == run["id"]
    with pytest.raises(Accepted):
        w.runs.results("t", "dummy", "u1", correlation_id=run["id"])
    for mode in ("not_found", "previous"):  # per-call override; "previous" has nothing to serve yet
        with pytest.raises(NotFound) as missing:
            w.runs.results("t", "dummy", "u1", correlation_id=run["id"], while_running=mode)
        assert missing.value.status == 404
    with pytest.raises(NotFound):
        w.runs.results("t", "dummy", "nobody")  # never started
    assert w.calls == []


def test_results_appear_at_the_done_transition_driven_by_the_ticker(world):
    run = world.runs.start("t", "dummy", "u1", params={"scope": "all"})
    assert world.finish(DELAY - 1) == 0          # 1 s before due: nothing moved
    assert world.calls == []
    with pytest.raises(NotFound):
        world.runs.results("t", "dummy", "u1", correlation_id=run["id"])
    assert world.runs.get("t", "dummy", run["id"])["status"] == "in_progress"
    assert world.finish(1) == 1                   # exactly at due: the ticker moves it and compute runs
    assert world.calls == [("t", "u1", run["id"])]  # before anyone read the results
    want = expected(run, params={"scope": "all"})
    assert world.runs.results("t", "dummy", "u1", correlation_id=run["id"]) == want
    assert world.runs.results("t", "dummy", "u1") == want
    done = world.runs.get("t", "dummy", run["id"])
    assert done["done"] and done["state"] == "DONE" and world.runs.status(done) == "ready"
    assert done["completed_at"] == isoformat(T0 + timedelta(seconds=DELAY))


def test_a_read_also_completes_a_due_run_without_the_ticker(world):
    run = world.runs.start("t", "dummy", "u1")
    world.clock.advance(DELAY)
    assert world.runs.results("t", "dummy", "u1") == expected(run)
    assert len(world.calls) == 1


def test_a_new_run_supersedes_but_previous_results_are_served_until_it_completes(store):
    w = World(store, while_running="previous")
    first = w.runs.start("t", "dummy", "u1")
    w.finish()
    first_results = expected(first)
    w.clock.advance(5)
    second = w.runs.start("t", "dummy", "u1")
    assert w.runs.current("t", "dummy", "u1")["id"] == second["id"]
    assert w.runs.last_completed("t", "dummy", "u1")["id"] == first["id"]
    assert w.runs.results("t", "dummy", "u1") == first_results
    assert w.runs.results("t", "dummy", "u1", correlation_id=second["id"]) == first_results
    assert w.runs.results("t", "dummy", "u1", correlation_id=first["id"]) == first_results
    with pytest.raises(NotFound):  # finoOS correlation endpoint: 404 while the new run runs
        w.runs.results("t", "dummy", "u1", correlation_id=second["id"], while_running="not_found")
    assert w.finish(DELAY - 1) == 0
    assert w.runs.results("t", "dummy", "u1") == first_results
    assert w.finish(1) == 1
    second_results = expected(second, done_after=DELAY + 5 + DELAY)
    assert w.runs.results("t", "dummy", "u1") == second_results
    assert w.runs.results("t", "dummy", "u1", correlation_id=first["id"]) == first_results  # still readable
    assert w.runs.last_completed("t", "dummy", "u1")["id"] == second["id"]


def test_an_older_run_finishing_late_does_not_replace_newer_results(store):
    w = World(store, while_running="previous")
    w.jobs.set_policy({"mode": "manual"}, kind="dummy")
    first = w.runs.start("t", "dummy", "u1")
    second = w.runs.start("t", "dummy", "u1")
    w.jobs.complete("t", second["job_id"])
    w.jobs.complete("t", first["job_id"])
    assert w.runs.results("t", "dummy", "u1")["run"] == second["id"]
    assert w.runs.results("t", "dummy", "u1", correlation_id=first["id"])["run"] == first["id"]
    assert w.runs.last_completed("t", "dummy", "u1")["id"] == second["id"]
    w.runs.start("t", "dummy", "u1")  # while a third runs, the newest completed results are served
    assert w.runs.results("t", "dummy", "u1")["run"] == second["id"]


def test_compute_runs_exactly_once_however_often_the_run_is_polled(world):
    world.jobs.set_policy({"mode": "auto", "polls": 3}, kind="dummy")
    run = world.runs.start("t", "dummy", "u1")
    with pytest.raises(NotFound):
        world.runs.results("t", "dummy", "u1", poll=True)
    assert world.runs.get("t", "dummy", run["id"], poll=True)["status"] == "in_progress"
    assert world.runs.get("t", "dummy", run["id"], poll=True)["status"] == "ready"  # third poll
    for _ in range(10):
        assert world.runs.results("t", "dummy", "u1", poll=True)["run"] == run["id"]
        world.runs.get("t", "dummy", run["id"], poll=True)
        world.jobs.tick()
    job = world.jobs.peek("t", run["job_id"])
    world.runs._on_transition("t", job, "DONE")  # a duplicate hook delivery (e.g. a store retry) is absorbed
    assert world.calls == [("t", "u1", run["id"])]


def test_concurrent_readers_of_a_due_run_compute_once(world):
    run = world.runs.start("t", "dummy", "u1")
    world.clock.advance(DELAY)
    seen = []

    def reader():
        for _ in range(5):
            try:
                seen.append(world.runs.results("t", "dummy", "u1")["run"])
            except NotFound:  # another thread is storing the results right now
                seen.append(None)
            world.jobs.tick()

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.calls == [("t", "u1", run["id"])]
    assert set(seen) <= {run["id"], None}
    assert world.runs.results("t", "dummy", "u1") == expected(run)


def test_instant_policy_completes_inside_start(world):
    world.jobs.set_policy({"mode": "instant"}, kind="dummy")
    run = world.runs.start("t", "dummy", "u1", correlation_id="cc451d48-dbc2-4ea4-894a-fb4b299f9e56")
    assert run["id"] == "cc451d48-dbc2-4ea4-894a-fb4b299f9e56" and run["done"] and run["status"] == "ready"
    assert world.runs.results("t", "dummy", "u1")["run"] == run["id"]
    with pytest.raises(Conflict):
        world.runs.start("t", "dummy", "u1", correlation_id=run["id"])
    assert len(world.calls) == 1


def test_tenants_and_subjects_are_isolated(world):
    a1 = world.runs.start("a", "dummy", "s1")
    world.finish(DELAY // 2)
    a2 = world.runs.start("a", "dummy", "s2")
    b1 = world.runs.start("b", "dummy", "s1")
    world.finish(DELAY // 2)  # only a/s1 is due
    assert world.calls == [("a", "s1", a1["id"])]
    assert world.runs.results("a", "dummy", "s1") == expected(a1, tenant="a", subject="s1")
    for tenant, subject in (("a", "s2"), ("b", "s1")):
        with pytest.raises(NotFound):
            world.runs.results(tenant, "dummy", subject)
    with pytest.raises(NotFound):  # another tenant's correlation id is unknown here
        world.runs.get("b", "dummy", a1["id"])
    with pytest.raises(NotFound):  # another subject's run is not this subject's
        world.runs.results("a", "dummy", "s2", correlation_id=a1["id"])
    world.finish(DELAY // 2)
    assert world.runs.results("a", "dummy", "s2")["run"] == a2["id"]
    assert world.runs.results("b", "dummy", "s1") == expected(b1, tenant="b", subject="s1", done_after=15)


def test_failed_runs_map_status_and_fall_back_per_mode(store):
    w = World(store, while_running="accepted")
    first = w.runs.start("t", "dummy", "u1")
    w.finish()
    second = w.runs.start("t", "dummy", "u1")
    w.jobs.fail("t", second["job_id"], "bank unreachable")
    failed = w.runs.get("t", "dummy", second["id"])
    assert failed["failed"] and failed["status"] == "error" and failed["error"]["message"] == "bank unreachable"
    with pytest.raises(NotFound) as missing:  # a failed run is never "202, try again later"
        w.runs.results("t", "dummy", "u1")
    assert missing.value.details["reason"] == "failed"
    assert w.runs.results("t", "dummy", "u1", while_running="previous")["run"] == first["id"]
    assert w.calls == [("t", "u1", first["id"])]


def test_a_failing_compute_fails_its_run_and_not_the_ticker(world):
    def explode(tenant, subject, run):
        raise RuntimeError("boom")
    world.runs.register("fragile", ["RUNNING", "DONE"], done_state="DONE", compute=explode)
    bad = world.runs.start("t", "fragile", "u1")
    good = world.runs.start("t", "dummy", "u1")
    assert world.finish() == 2
    run = world.runs.get("t", "fragile", bad["id"])
    assert run["failed"] and run["state"] == "FAILED" and run["error"] == {"message": "boom"}
    with pytest.raises(NotFound):
        world.runs.results("t", "fragile", "u1")
    assert world.runs.results("t", "dummy", "u1")["run"] == good["id"]


def test_only_the_last_runs_are_kept_but_never_the_served_results(store):
    w = World(store, while_running="previous", keep=2)
    w.jobs.set_policy({"mode": "manual"}, kind="dummy")
    first = w.runs.start("t", "dummy", "u1")
    w.jobs.complete("t", first["job_id"])
    later = [w.runs.start("t", "dummy", "u1") for _ in range(3)]  # all still running
    assert w.runs.results("t", "dummy", "u1")["run"] == first["id"]  # beyond keep, but the served one
    with pytest.raises(NotFound):
        w.runs.get("t", "dummy", later[0]["id"])  # pruned
    for run in later[1:]:
        assert w.runs.get("t", "dummy", run["id"])["status"] == "in_progress"
    assert w.jobs.peek("t", later[0]["job_id"]) is None   # a pruned run leaves no job to finish or list
    with pytest.raises(NotFound):
        w.jobs.complete("t", later[0]["job_id"])
    for run in later[1:]:
        w.jobs.complete("t", run["job_id"])
    assert [c[2] for c in w.calls] == [first["id"], later[1]["id"], later[2]["id"]]
    w.runs.start("t", "dummy", "u1")
    with pytest.raises(NotFound):  # no longer served and beyond the last 2: gone with its results
        w.runs.get("t", "dummy", first["id"])
    assert w.store.get("t", "run_results", f"dummy|{first['id']}") is None
    assert len(w.store.list("t", "runs")) == 2
    assert "results" not in w.jobs.peek("t", later[2]["job_id"])["data"]  # results never live in the job


def test_on_done_sees_the_readable_results_once(world):
    seen = []

    def on_done(tenant, run, results):
        seen.append((tenant, run["id"], run["status"], results["run"],
                     world.runs.results(tenant, "notify", run["subject"])["run"]))
    world.runs.register("notify", ["RUNNING", "DONE"], done_state="DONE", compute=world.compute, on_done=on_done)
    run = world.runs.start("t", "notify", "u1")
    world.finish(DELAY - 1)
    assert seen == []
    world.finish(1)
    world.finish(1)
    assert seen == [("t", run["id"], "DONE", run["id"], run["id"])]


def test_register_rejects_inconsistent_kinds(world):
    assert world.runs.kind("dummy").keep == 5  # default: the last 5 runs per subject
    compute = world.compute
    with pytest.raises(ValueError):
        world.runs.register("x", ["RUNNING", "DONE"], done_state="READY", compute=compute)
    with pytest.raises(ValueError):
        world.runs.register("x", ["RUNNING", "DONE"], done_state="DONE", compute=compute,
                            statuses={"RUNNING": "r", "DONE": "d"})  # FAILED unmapped
    with pytest.raises(ValueError):
        world.runs.register("x", ["RUNNING", "DONE"], done_state="DONE", compute=compute, while_running="later")
    with pytest.raises(ValueError):
        world.runs.register("dummy", ["RUNNING", "DONE"], done_state="DONE", compute=compute)


# --- rate limits -----------------------------------------------------------------------------------

@pytest.fixture
def limiter(store):
    clock = Clock(store, FakeWall(T0))
    clock.freeze(at=T0)
    return RateLimiter(store, clock), clock


def sync(limiter, tenant="a", key="fino.sync|login1"):
    # fino.md §14: the fifth manual trigger_sync of a bank login within one day -> 429
    return limiter.hit(tenant, key, limit=4, window="day")


def test_fifth_hit_of_a_day_is_refused_until_utc_midnight(limiter):
    rl, clock = limiter
    assert [sync(rl) for _ in range(4)] == [3, 2, 1, 0]
    with pytest.raises(TooManyRequests) as refused:
        sync(rl)
    assert refused.value.status == 429
    midnight = datetime(2025, 4, 24, tzinfo=timezone.utc)
    assert refused.value.details["reset_at"] == isoformat(midnight)
    assert refused.value.details["retry_after"] == (midnight - T0).total_seconds()
    clock.freeze(at=midnight - timedelta(seconds=1))
    with pytest.raises(TooManyRequests) as still:
        sync(rl)
    assert still.value.details["retry_after"] == 1
    assert rl.remaining("a", "fino.sync|login1", limit=4, window="day") == 0
    clock.freeze(at=midnight)
    assert rl.remaining("a", "fino.sync|login1", limit=4, window="day") == 4  # a new day starts from zero
    assert [sync(rl) for _ in range(4)] == [3, 2, 1, 0]
    with pytest.raises(TooManyRequests):
        sync(rl)


def test_a_refused_hit_is_not_counted(limiter):
    rl, _ = limiter
    assert rl.hit("a", "k", limit=4, window="day", cost=3) == 1
    with pytest.raises(TooManyRequests) as refused:
        rl.hit("a", "k", limit=4, window="day", cost=2)
    assert refused.value.details["used"] == 3
    assert rl.remaining("a", "k", limit=4, window="day") == 1
    assert rl.hit("a", "k", limit=4, window="day") == 0


def test_tenants_and_keys_never_share_counters(limiter):
    rl, _ = limiter
    for _ in range(4):
        sync(rl, tenant="a")
    with pytest.raises(TooManyRequests):
        sync(rl, tenant="a")
    assert sync(rl, tenant="b") == 3
    assert sync(rl, tenant="a", key="fino.sync|login2") == 3
    assert rl.remaining("b", "fino.sync|login1", limit=4, window="day") == 3


def test_second_windows_are_fixed_slots_on_the_sandbox_clock(limiter):
    rl, clock = limiter
    start = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)  # a whole minute: a 60 s slot starts here
    assert window_bounds(start + timedelta(seconds=59.5), 60) == (start, start + timedelta(seconds=60))
    assert rl.hit("a", "k", limit=2, window=60) == 1
    clock.freeze(at=start + timedelta(seconds=30))
    assert rl.hit("a", "k", limit=2, window=60) == 0
    clock.freeze(at=start + timedelta(seconds=59))
    with pytest.raises(TooManyRequests) as refused:
        rl.hit("a", "k", limit=2, window=60)
    assert refused.value.details["retry_after"] == 1
    clock.freeze(at=start + timedelta(seconds=60))
    assert rl.hit("a", "k", limit=2, window=60) == 1
    with pytest.raises(ValueError):
        rl.hit("a", "k", limit=2, window=0)


def test_old_windows_are_not_accumulated_and_are_pruned(limiter, store):
    rl, clock = limiter
    for day in range(3):
        clock.freeze(at=T0 + timedelta(days=day))
        sync(rl, key="daily")
    rl.hit("a", "minute", limit=5, window=60)
    assert len(store.list("a", "ratelimit")) == 2  # one document per key, whatever the number of windows
    clock.freeze(at=T0 + timedelta(days=2, seconds=60))
    assert rl.prune("a") == 1                       # the minute counter ended; today's daily counter stays
    assert [k for k, _ in store.list("a", "ratelimit")] == ["daily"]
    assert rl.remaining("a", "daily", limit=4, window="day") == 3


def test_concurrent_hits_never_exceed_the_limit(limiter):
    rl, _ = limiter
    granted, refused = [], []

    def worker():
        for _ in range(5):
            try:
                rl.hit("a", "busy", limit=10, window="day")
                granted.append(1)
            except TooManyRequests:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(granted), len(refused)) == (10, 20)
