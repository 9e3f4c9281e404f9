"""Runs: results recomputed per subject by job-backed runs, where a new run replaces the previous one.

A run is a job (core/jobs.py) plus a record: correlation id, subject, params. When its job enters the kind's done
state, a transition hook calls ``compute`` exactly once (also from the ticker or after a clock move) and stores the
results beside the run, never in the job document. Reads serve the requested or current run; while it runs a kind
answers "not found" (finoOS correlation endpoints), the previous results (finoOS result endpoints) or "accepted"
(Finpass 202). Each provider maps job states to its own status words. Only the last ``keep`` runs per subject stay.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

from . import fastjson
from .derived import Derived
from .errors import Accepted, Conflict, NotFound

log = logging.getLogger(__name__)

_RUNS, _SUBJECTS, _RESULTS, _SEQ = "runs", "run_subjects", "run_results", "run_seq"
WHILE_RUNNING = ("not_found", "previous", "accepted")
# A completed run's results split into one JSON text per part, per process while the stored results are the same
# (core/derived.py): a finoOS cockpit read decoded every part of its run (5,000 categorized bookings) per request
_PARTS = Derived(size=16)


class StoredResults(Mapping):
    """A completed run's results as stored: a read-only mapping whose parts are decoded when read, each read a
    fresh object (callers may keep or change what they get; the shared texts stay as stored)."""

    def __init__(self, parts: dict[str, str]):
        self._parts = parts

    def __getitem__(self, part: str):
        return fastjson.loads(self._parts[part])

    def text(self, part: str) -> str:
        """The part's JSON text as stored, undecoded (a result served as is: no decode and re-encode)."""
        return self._parts[part]

    def __contains__(self, part) -> bool:   # without decoding the part (Mapping's would)
        return part in self._parts

    def __iter__(self):
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


@dataclass(frozen=True)
class RunKind:
    """One registered kind of run: its job states, status vocabulary and how results are computed."""

    name: str
    states: tuple[str, ...]
    done_state: str
    failed_state: str
    compute: Callable[[str, str, dict], dict]
    statuses: dict = field(default_factory=dict)
    while_running: str = "not_found"
    keep: int = 5
    holds: tuple[int, ...] = ()
    on_done: Callable[[str, dict, dict], None] | None = None


def _key(kind: str, name: str) -> str:
    return f"{kind}|{name}"


class Runs:
    def __init__(self, store, jobs, clock, ids, keep: int = 5):
        self.store, self.jobs, self.clock, self.ids = store, jobs, clock, ids
        self.keep = keep
        self._kinds: dict[str, RunKind] = {}

    # --- registration ----------------------------------------------------------------------------
    def register(self, kind: str, states: list[str], *, done_state: str, failed_state: str = "FAILED",
                 compute: Callable[[str, str, dict], dict], statuses: dict | None = None,
                 while_running: str = "not_found", keep: int | None = None,
                 holds: list[int] | None = None,
                 on_done: Callable[[str, dict, dict], None] | None = None) -> RunKind:
        """Declare a run kind. ``statuses`` maps every job state (and ``failed_state``) to the provider's word.

        The job kind is ``kind`` itself, so control-API job policies (instant, manual, seconds) apply to it.
        ``on_done(tenant, run, results)`` is called once after the results are readable (e.g. to send webhooks).
        """
        if done_state not in states:
            raise ValueError(f"done_state {done_state!r} is not one of the states {states}")
        if while_running not in WHILE_RUNNING:
            raise ValueError(f"while_running must be one of {', '.join(WHILE_RUNNING)}")
        if statuses is not None:
            missing = [s for s in (*states, failed_state) if s not in statuses]
            if missing:
                raise ValueError(f"statuses of run kind {kind!r} lack {', '.join(missing)}")
        if kind in self._kinds:
            raise ValueError(f"run kind {kind!r} is already registered")
        spec = RunKind(kind, tuple(states), done_state, failed_state, compute,
                       dict(statuses) if statuses is not None else {s: s for s in (*states, failed_state)},
                       while_running, self.keep if keep is None else keep, tuple(holds or ()), on_done)
        if spec.keep < 1:
            raise ValueError("keep must be at least 1")
        self._kinds[kind] = spec
        self.jobs.on_transition(kind, self._on_transition)  # also puts the kind's jobs in tick()'s open index
        return spec

    def kind(self, kind: str) -> RunKind:
        try:
            return self._kinds[kind]
        except KeyError:
            raise KeyError(f"run kind {kind!r} is not registered") from None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, tenant: str, kind: str, subject: str, *, params: dict | None = None,
              correlation_id: str | None = None) -> dict:
        """Start a new run for ``subject``; it becomes the current run (the last completed results stay readable)."""
        spec = self.kind(kind)
        now = self.clock.now(tenant)
        cid = correlation_id or self.ids.uuid4(tenant, "correlation")
        job_id = self.ids.ulid(tenant, "job", now)
        seq = self.store.incr(tenant, _SEQ, _key(kind, subject))
        record = {"id": cid, "kind": kind, "subject": subject, "seq": seq, "job_id": job_id,
                  "params": params or {}, "completed_at": None, "claimed": False, "error": None}
        if not self.store.add(tenant, _RUNS, _key(kind, cid), record):
            raise Conflict(f"a {kind} run with correlation id {cid} already exists")
        dropped: list[str] = []

        def supersede(doc):
            doc = doc or {"current": None, "current_seq": 0, "completed": None, "completed_seq": 0, "history": []}
            if seq > doc["current_seq"]:  # two concurrent starts: the later sequence number wins
                doc["current"], doc["current_seq"] = cid, seq
            doc["history"].append([seq, cid])
            doc["history"].sort()
            keep = {doc["current"], doc["completed"]}
            old = doc["history"][:-spec.keep]
            dropped[:] = [c for _, c in old if c not in keep]
            doc["history"] = [h for h in doc["history"] if h[1] not in dropped]
            return doc

        self.store.update(tenant, _SUBJECTS, _key(kind, subject), supersede)
        # the record exists before the job does: an instant policy reaches the done hook inside create()
        job = self.jobs.create(tenant, kind, list(spec.states), data={"run": cid, "subject": subject},
                               job_id=job_id, holds=list(spec.holds), failed_state=spec.failed_state)
        for old in dropped:
            record = self.store.get(tenant, _RUNS, _key(kind, old))
            self.store.delete(tenant, _RESULTS, _key(kind, old))
            self.store.delete(tenant, _RUNS, _key(kind, old))
            if record and record.get("job_id"):
                self.jobs.delete(tenant, record["job_id"])   # pruned runs leave no job behind
        return self._view(spec, self.store.get(tenant, _RUNS, _key(kind, cid)), job)

    def get(self, tenant: str, kind: str, correlation_id: str, *, poll: bool = False) -> dict:
        """The run with ``correlation_id`` (time-driven transitions applied first), or NotFound."""
        spec = self.kind(kind)
        record = self.store.get(tenant, _RUNS, _key(kind, correlation_id))
        if record is None:
            raise NotFound(f"{kind} run {correlation_id} not found", details={"correlation_id": correlation_id})
        job = (self.jobs.poll if poll else self.jobs.get)(tenant, record["job_id"])
        if job is None:
            raise NotFound(f"{kind} run {correlation_id} not found", details={"correlation_id": correlation_id})
        # reading may have completed the run (the hook ran during the read): read the record again
        return self._view(spec, self.store.get(tenant, _RUNS, _key(kind, correlation_id)) or record, job)

    def current(self, tenant: str, kind: str, subject: str, *, poll: bool = False) -> dict | None:
        """The subject's newest run (running, done or failed), or None before any run."""
        doc = self.store.get(tenant, _SUBJECTS, _key(kind, subject))
        return self.get(tenant, kind, doc["current"], poll=poll) if doc and doc["current"] else None

    def last_completed(self, tenant: str, kind: str, subject: str) -> dict | None:
        """The subject's newest run that reached its done state, or None."""
        doc = self.store.get(tenant, _SUBJECTS, _key(kind, subject))
        return self.get(tenant, kind, doc["completed"]) if doc and doc["completed"] else None

    def results(self, tenant: str, kind: str, subject: str, *, correlation_id: str | None = None,
                while_running: str | None = None, poll: bool = False) -> Mapping:
        """Results of the requested run (default: the current one) once done; while it runs (or after it failed)
        the kind's ``while_running`` rule applies, overridable per call. Nothing completed yet: NotFound."""
        spec = self.kind(kind)
        mode = while_running or spec.while_running
        if mode not in WHILE_RUNNING:
            raise ValueError(f"while_running must be one of {', '.join(WHILE_RUNNING)}")
        if correlation_id is not None:
            run = self.get(tenant, kind, correlation_id, poll=poll)
            if run["subject"] != subject:
                raise NotFound(f"{kind} run {correlation_id} not found", details={"correlation_id": correlation_id})
        else:
            run = self.current(tenant, kind, subject, poll=poll)
            if run is None:
                raise NotFound(f"no {kind} results for {subject} yet")
        if run["done"]:
            return self._results(tenant, kind, run["id"])
        details = {"correlation_id": run["id"], "state": run["state"], "status": run["status"],
                   "reason": "failed" if run["failed"] else "running", "error": run["error"]}
        if mode == "previous":
            doc = self.store.get(tenant, _SUBJECTS, _key(kind, subject))  # after the read above, which may move it
            if doc and doc["completed"]:
                return self._results(tenant, kind, doc["completed"])
            raise NotFound(f"no {kind} results for {subject} yet", details=details)
        if mode == "accepted" and not run["failed"]:
            raise Accepted(f"{kind} run {run['id']} is not ready yet", details=details)
        raise NotFound(f"{kind} run {run['id']} is {details['reason']}", details=details)

    def status(self, run: dict) -> str:
        """The run's state in its provider's vocabulary (the ``statuses`` given at register())."""
        return self.kind(run["kind"]).statuses[run["state"]]

    # --- internals -------------------------------------------------------------------------------
    def _results(self, tenant: str, kind: str, cid: str) -> dict:
        text = self.store.get_text(tenant, _RESULTS, _key(kind, cid))
        if text is None:  # pruned meanwhile
            raise NotFound(f"{kind} run {cid} not found", details={"correlation_id": cid})
        return StoredResults(_PARTS.get((tenant, kind, cid), text, _split_results))

    def _view(self, spec: RunKind, record: dict, job: dict) -> dict:
        """The public run: the record plus the job's state, as far as results are concerned."""
        state = job["state"]
        if record.get("error"):
            state = spec.failed_state  # compute raised: the run failed although its job reached done
        elif state == spec.done_state and not record.get("completed_at"):
            # the done transition happened but results are still being stored (another worker): not done yet
            index = spec.states.index(state)
            state = spec.states[index - 1] if index else state
        view = {key: value for key, value in record.items() if key != "claimed"}
        view.update(state=state, status=spec.statuses[state], created_at=job["created_at"],
                    done=bool(record.get("completed_at")) and not record.get("error"),
                    failed=state == spec.failed_state,
                    error=record.get("error") or (job.get("error") if state == spec.failed_state else None))
        return view

    def _on_transition(self, tenant: str, job: dict, state: str) -> None:
        spec = self._kinds.get(job["kind"])
        cid = job.get("data", {}).get("run")
        if spec is None or cid is None or state != spec.done_state:
            return
        key = _key(spec.name, cid)
        claimed: list[dict] = []

        def claim(record):
            # the store may retry this function (Redis WATCH): the claim is decided from the stored value only
            claimed.clear()
            if record is not None and not record["claimed"]:
                record["claimed"] = True
                claimed.append(record)
            return record

        self.store.update(tenant, _RUNS, key, claim)
        if not claimed:
            return  # pruned, or already computed (a hook fired twice): compute runs exactly once
        record = claimed[0]
        completed_at = job["step_since"]  # when the done step fell due (core/jobs.py backdates time-driven steps)
        try:
            results = spec.compute(tenant, record["subject"], self._view(
                spec, {**record, "completed_at": completed_at}, job))
        except Exception as exc:  # noqa: BLE001 - a failing computation fails its run, not the ticker
            log.exception("computing %s run %s failed", spec.name, cid)
            error = {"message": str(exc)}
            self.store.update(tenant, _RUNS, key, lambda r: r and {**r, "error": error})
            return
        self.store.put(tenant, _RESULTS, key, {"results": results})
        self.store.update(tenant, _RUNS, key, lambda r: r and {**r, "completed_at": completed_at})

        def promote(doc):
            if doc is not None and record["seq"] > doc["completed_seq"]:  # an older run finishing late never wins
                doc["completed"], doc["completed_seq"] = cid, record["seq"]
            return doc

        self.store.update(tenant, _SUBJECTS, _key(spec.name, record["subject"]), promote)
        if spec.on_done:
            spec.on_done(tenant, self._view(spec, {**record, "completed_at": completed_at}, job), results)


def _split_results(text: str) -> dict[str, str]:
    return {part: fastjson.dumps(value) for part, value in fastjson.loads(text)["results"].items()}
