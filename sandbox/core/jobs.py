"""Asynchronous jobs as small state machines on the sandbox clock (moto's state manager, on our own clock).

A job walks through ``states`` (e.g. RUNNING -> DONE, or QUEUED -> RUNNING -> COMPLETED). Each step is taken when
its policy says so: after ``seconds`` on the clock or on the ``polls``-th read, whichever comes first (``auto``);
at once (``instant``); or only through the control API (``manual``). Steps listed in ``holds`` wait for
``resume`` (e.g. a sync waiting for SCA). Any job can be failed. Providers register hooks to act on transitions.
"""
from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from typing import Callable

from . import memo
from .clock import isoformat, parse_instant
from .errors import Conflict, NotFound

_JOBS, _OPEN, _POLICY = "jobs", "jobs_open", "job_policy"
# A transition is stored before its hooks run (they write other documents), so another worker's ticker may be
# running them while a request reads the job: the job carries "_firing" until they are done, and readers in other
# threads wait for it (bounded, in case the firing process died) so they never see a state without its effects.
FIRING_WAIT = 5.0
_local = threading.local()
GLOBAL = "_sandbox"
MODES = ("auto", "instant", "manual")


class Jobs:
    def __init__(self, store, clock, ids, default_seconds: float = 3.0, default_polls: int = 2):
        self.store, self.clock, self.ids = store, clock, ids
        self.default = ({"mode": "instant"} if default_seconds <= 0 else
                        {"mode": "auto", "seconds": default_seconds, "polls": default_polls or None})
        self._hooks: dict[str, list[Callable]] = {}
        self._kind_defaults: dict[str, dict] = {}

    # --- policies --------------------------------------------------------------------------------
    def _policies(self) -> dict:
        """Every policy set through the control API (one query, once per request): "owner|kind" -> policy."""
        return memo.cached("job_policies", lambda: dict(self.store.list(GLOBAL, _POLICY)))

    def policy(self, tenant: str, kind: str) -> dict:
        """Effective policy: tenant+kind, tenant, global+kind, global, then the configured default."""
        policies = self._policies()
        base = tenant.split("/", 1)[0]   # a nested sub-tenant follows its client's policies
        for owner, key in ((tenant, kind), (tenant, "*"), (base, kind), (base, "*"), (GLOBAL, kind), (GLOBAL, "*")):
            found = policies.get(f"{owner}|{key}")
            if found:
                return found
        if self.default["mode"] == "instant":
            return dict(self.default)  # --job-delay 0 makes every kind instant
        return dict(self._kind_defaults.get(kind, self.default))

    def register_default(self, kind: str, policy: dict) -> None:
        """A provider's default policy for one job kind (used when no control-API policy is set)."""
        self._kind_defaults[kind] = policy

    def set_policy(self, policy: dict, kind: str = "*", tenant: str | None = None) -> dict:
        """Set the completion policy for a job kind ('*' = all kinds), globally or for one tenant."""
        mode = policy.get("mode", "auto")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        clean = {"mode": mode}
        if mode == "auto":
            clean["seconds"] = float(policy["seconds"]) if policy.get("seconds") is not None else None
            clean["polls"] = int(policy["polls"]) if policy.get("polls") else None
            if clean["seconds"] is None and clean["polls"] is None:
                raise ValueError("an auto policy needs seconds and/or polls")
        self.store.put(GLOBAL, _POLICY, f"{tenant or GLOBAL}|{kind}", clean)
        memo.forget("job_policies")
        return clean

    def clear_policy(self, kind: str = "*", tenant: str | None = None) -> None:
        self.store.delete(GLOBAL, _POLICY, f"{tenant or GLOBAL}|{kind}")
        memo.forget("job_policies")

    def forget_tenant(self, tenant: str) -> None:
        """Drop a tenant's policies and open-job index entries (tenant reset)."""
        for coll in (_POLICY, _OPEN):
            for key, _ in self.store.list(GLOBAL, coll, prefix=f"{tenant}|"):
                self.store.delete(GLOBAL, coll, key)
        memo.forget("job_policies")

    # --- hooks -----------------------------------------------------------------------------------
    def on_transition(self, kind: str, fn: Callable[[str, dict, str], None]) -> None:
        """Call ``fn(tenant, job, entered_state)`` after a job of ``kind`` enters a state."""
        self._hooks.setdefault(kind, []).append(fn)

    # --- lifecycle -------------------------------------------------------------------------------
    def create(self, tenant: str, kind: str, states: list[str], *, owner: str | None = None,
               data: dict | None = None, job_id: str | None = None, holds: list[int] | None = None,
               failed_state: str = "FAILED") -> dict:
        """Create a job in its first state (instant policy: as far as it can go at once)."""
        now = self.clock.now(tenant)
        job = {"id": job_id or self.ids.ulid(tenant, "job", now), "kind": kind, "owner": owner,
               "states": states, "step": 0, "state": states[0], "holds": holds or [],
               "failed_state": failed_state, "created_at": isoformat(now), "step_since": isoformat(now),
               "polls": 0, "step_polls": 0, "error": None, "data": data or {}}
        entered = self._advance(job, self.policy(tenant, kind), now, poll=False)
        self.store.put(tenant, _JOBS, job["id"], job)
        if not self.is_final(job) and kind in self._hooks:
            # tick() walks only jobs whose transitions have side effects; the rest are evaluated when read
            self.store.put(GLOBAL, _OPEN, f"{tenant}|{job['id']}", {"kind": kind})
        self._fire(tenant, job, entered)
        return job

    def get(self, tenant: str, job_id: str) -> dict | None:
        """Read a job without counting a poll, applying any time-driven transitions first."""
        return self._evaluate(tenant, job_id, poll=False)

    def poll(self, tenant: str, job_id: str) -> dict | None:
        """Read a job as a client poll: counts toward the poll rule."""
        return self._evaluate(tenant, job_id, poll=True)

    def peek(self, tenant: str, job_id: str) -> dict | None:
        return self.store.get(tenant, _JOBS, job_id)

    def update_data(self, tenant: str, job_id: str, **changes) -> dict:
        """Merge ``changes`` into the job's provider data (atomically; no transition)."""
        def merge(job, now):
            job["data"].update(changes)
            return []
        return self._mutate(tenant, job_id, merge)

    def advance(self, tenant: str, job_id: str) -> dict:
        """Force one step (control API; also leaves a hold)."""
        return self._mutate(tenant, job_id, lambda job, now: self._step(job, now))

    def complete(self, tenant: str, job_id: str) -> dict:
        """Force the job to its final state."""
        def run(job, now):
            entered = []
            while not self.is_final(job):
                entered += self._step(job, now)
            return entered
        return self._mutate(tenant, job_id, run)

    def resume(self, tenant: str, job_id: str) -> dict:
        """Leave a hold (e.g. the user passed SCA) and continue by policy."""
        job = self.peek(tenant, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        policy = self.policy(tenant, job["kind"])
        return self._mutate(tenant, job_id, lambda j, now: self._step(j, now) + self._advance(j, policy, now, False))

    def fail(self, tenant: str, job_id: str, message: str = "Job failed", details: dict | None = None) -> dict:
        """Move a job to its failed state with an error message."""
        def run(job, now):
            if self.is_final(job):
                raise Conflict(f"job {job_id} is already {job['state']}")
            job.update(state=job["failed_state"], step=-1, step_since=isoformat(now),
                       error={"message": message, **(details or {})})
            return [job["state"]]
        return self._mutate(tenant, job_id, run)

    def list(self, tenant: str, kind: str | None = None) -> list[dict]:
        jobs = [self._evaluate(tenant, key, poll=False) for key, _ in self.store.list(tenant, _JOBS)]
        return [j for j in jobs if j and (kind is None or j["kind"] == kind)]

    def tick(self) -> int:
        """Apply due time-driven transitions to open jobs that have hooks, in every tenant; returns how many moved."""
        moved = 0
        for key, _ in self.store.list(GLOBAL, _OPEN):
            tenant, job_id = key.rsplit("|", 1)
            before = self.peek(tenant, job_id)
            if before is None:  # the tenant was reset
                self.store.delete(GLOBAL, _OPEN, key)
                continue
            after = self._evaluate(tenant, job_id, poll=False)
            moved += bool(after and before["state"] != after["state"])
        return moved

    def delete(self, tenant: str, job_id: str) -> bool:
        """Forget a job (e.g. a pruned run) and its entry in the ticker's index of open jobs."""
        self.store.delete(GLOBAL, _OPEN, f"{tenant}|{job_id}")
        return self.store.delete(tenant, _JOBS, job_id)

    @staticmethod
    def is_final(job: dict) -> bool:
        return job["step"] == -1 or job["step"] >= len(job["states"]) - 1

    # --- internals -------------------------------------------------------------------------------
    def _step(self, job: dict, now) -> list[str]:
        if self.is_final(job):
            return []
        job["step"] += 1
        job["state"] = job["states"][job["step"]]
        job["step_since"], job["step_polls"] = isoformat(now), 0
        return [job["state"]]

    def _advance(self, job: dict, policy: dict, now, poll: bool) -> list[str]:
        if poll:
            job["polls"] += 1
            job["step_polls"] += 1
        entered: list[str] = []
        while not self.is_final(job) and job["step"] not in job["holds"]:
            mode = policy["mode"]
            if mode == "manual":
                break
            if mode == "auto":
                since = parse_instant(job["step_since"])
                due_time = policy.get("seconds") is not None and now >= since + timedelta(seconds=policy["seconds"])
                due_polls = bool(policy.get("polls")) and job["step_polls"] >= policy["polls"]
                if not (due_time or due_polls):
                    break
                if due_time and not due_polls:
                    # time-driven: the step happened when it fell due, later steps count from then
                    now_step = since + timedelta(seconds=policy["seconds"])
                    entered += self._step(job, min(now_step, now))
                    continue
            entered += self._step(job, now)
        return entered

    def _evaluate(self, tenant: str, job_id: str, poll: bool) -> dict | None:
        job = self._settled(tenant, self.peek(tenant, job_id))
        if job is None:
            return None
        if self.is_final(job):
            return job  # final states are absorbing: reading them writes nothing
        policy = self.policy(tenant, job["kind"])
        return self._mutate(tenant, job_id, lambda j, now: self._advance(j, policy, now, poll))

    def _settled(self, tenant: str, job: dict | None) -> dict | None:
        """``job`` once no other thread or worker is still running hooks of its last transition (see FIRING_WAIT)."""
        if job is None or not job.get("_firing") or job["_firing"] in getattr(_local, "firing", ()):
            return _shown(job)
        # the mark carries its wall-clock time: a mark left by a process that died mid-hook is stale, never waited for
        deadline = float(job["_firing"].rsplit(":", 1)[-1]) + FIRING_WAIT
        while job is not None and job.get("_firing") and time.time() < deadline:
            time.sleep(0.005)
            job = self.peek(tenant, job["id"])
        return _shown(job)

    def _mutate(self, tenant: str, job_id: str, fn) -> dict:
        now = self.clock.now(tenant)
        entered: list[str] = []
        mark = f"{secrets.token_hex(8)}:{time.time():.3f}"

        def apply(job):
            if job is None:
                raise NotFound(f"job {job_id} not found")
            entered.clear()   # Redis retries this function after a WatchError: count each transition once
            entered.extend(fn(job, now))
            if entered and job["kind"] in self._hooks:
                job["_firing"] = mark
            return job

        job = self.store.update(tenant, _JOBS, job_id, apply)
        if self.is_final(job) and entered and job["kind"] in self._hooks:
            self.store.delete(GLOBAL, _OPEN, f"{tenant}|{job_id}")
        if job.get("_firing") != mark:
            self._fire(tenant, job, entered)
            return _shown(job)   # another worker's transition may be firing: its mark is not shown
        firing = getattr(_local, "firing", None)
        if firing is None:
            firing = _local.firing = set()
        firing.add(mark)
        after = None
        try:
            self._fire(tenant, job, entered)
        finally:
            firing.discard(mark)
            after = self.store.update(tenant, _JOBS, job_id, lambda j: _unmark(j, mark))   # with the hooks' changes
        return _shown(after) or _shown(job)

    def _fire(self, tenant: str, job: dict, entered: list[str]) -> None:
        job = {k: v for k, v in job.items() if k != "_firing"}
        for state in entered:
            for hook in self._hooks.get(job["kind"], []):
                hook(tenant, job, state)


def _unmark(job: dict | None, mark: str) -> dict | None:
    """The job without this transition's ``_firing`` mark (a later transition's mark stays)."""
    if job is not None and job.get("_firing") == mark:
        job = {k: v for k, v in job.items() if k != "_firing"}
    return job


def _shown(job: dict | None) -> dict | None:
    """The job as callers see it: never with a firing mark (the store's copy keeps it for other readers)."""
    return {k: v for k, v in job.items() if k != "_firing"} if job is not None and "_firing" in job else job
