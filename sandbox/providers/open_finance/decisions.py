"""Open Finance monthly report and the decision, decision-extended and private-scoring jobs (open_finance.md sections
6 and 7).

Jobs run on the same engine as the financial report (sandbox.jobs: RUNNING -> DONE on the sandbox clock, or at once /
only by the control API per policy; FAILED only through the ``sandbox-job-fails`` scenario or the control API). Each
job is computed when it is created, from the ledgers of the user's ACTIVE/COMPLETED connections at that moment
("uses the data that existed when the job was created"), and is visible only to tokens of the same organisation and
userId: any other jobId is ``400 Invalid jobId`` (s.7). The figures come from reports.credit_metrics (one place).
"""
from __future__ import annotations

import random
import re

from ...core.errors import BadRequest, InternalError, NotFound
from ...core.ids import stable_seed, uuid4
from . import data
from .reports import build_monthly_report, credit_metrics, decision_items, private_score

PROVIDER = "open_finance"
DECISION_KIND = f"{PROVIDER}.decision"
DECISION_EXTENDED_KIND = f"{PROVIDER}.decision_extended"
SCORING_KIND = f"{PROVIDER}.private_scoring"
_MONTHLY = f"{PROVIDER}.monthly_reports"          # userId -> {version, report}
_LEDGERS = f"{PROVIDER}.ledgers"                  # as service.py names it
INVALID_JOB = "Invalid jobId"                     # s.7: unknown (or foreign) jobId
NO_ACTIVE = "No active connections found"         # (inferred) text of the decision guide's 400, s.6
NO_CONNECTIONS = "The user has no connections"    # s.4 / s.6 monthly report 400
NO_REPORT = "The user has no report, refreshing it's data and creating the report"   # s.4 / s.6, sic
# Connections that may still bring data (s.8): a scoring asked for meanwhile is NOT_READY or LOADING_MORE.
PENDING = ("INACTIVE", "FETCHING", "CONNECTED", "PARTIALLY_AUTHORIZED")
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")   # jobIds are ULIDs (s.10)


class Decisions:
    """get_monthly_report, create/get decision, decision-extended and private-scoring jobs."""

    def setup(self) -> None:
        """Register this area's job kinds, flows or webhooks (called once by OpenFinanceService.__init__)."""

    # --- shared --------------------------------------------------------------------------------------------------
    def _customer(self, customer_id: str) -> str:
        customer = customer_id.strip()
        if not customer:
            raise BadRequest("Missing customerId")   # (inferred) as the financial report's 400, s.5
        if customer == data.SCENARIO_INTERNAL_ERROR:
            raise InternalError("scenario: internal error")
        return customer

    def _metrics_now(self, tenant: str, connections: list[dict]) -> dict:
        today = self.sb.clock.now(tenant).date()
        return credit_metrics(self.ledgers_of(tenant, connections), today)

    def _start(self, ctx, kind: str, customer: str, result: dict) -> dict:
        """A RUNNING job of ``kind`` holding its already computed result (data as of creation)."""
        job = self.sb.jobs.create(ctx.tenant, kind, ["RUNNING", "DONE"], owner=ctx.user,
                                  data={"customerId": customer, **result})
        if customer == data.SCENARIO_JOB_FAILS:   # s.7: FAILED only via a sandbox scenario
            job = self.sb.jobs.fail(ctx.tenant, job["id"], f"{kind.rsplit('.', 1)[-1]} failed (sandbox scenario)")
        return job

    def _poll(self, ctx, kind: str, job_id: str) -> dict:
        """The caller's job of ``kind`` as a client poll; anything else is 400 Invalid jobId (s.7: no 404)."""
        job = self.sb.jobs.poll(ctx.tenant, job_id) if _ULID.match(job_id) else None
        if not job or job["kind"] != kind or job["owner"] != ctx.user:
            raise BadRequest(INVALID_JOB)
        return job

    # --- decision and decision-extended ----------------------------------------------------------------------------
    def _create_decision(self, ctx, customer_id: str, kind: str, extended: bool) -> dict:
        customer = self._customer(customer_id)
        connections = self.data_connections(ctx.tenant, ctx.user)
        if not connections:   # decision guide: at least one ACTIVE or COMPLETED connection (s.6)
            raise BadRequest(NO_ACTIVE)
        items = decision_items(self._metrics_now(ctx.tenant, connections), extended=extended)
        return {"jobId": self._start(ctx, kind, customer, {"decision": items})["id"]}

    def _get_decision(self, ctx, job_id: str, kind: str) -> dict:
        job = self._poll(ctx, kind, job_id)
        if job["state"] == "RUNNING":
            return {"status": "RUNNING"}
        if job["state"] == "FAILED":   # sandbox extension, s.7
            return {"status": "FAILED", "message": job["error"]["message"]}
        return {"decision": job["data"]["decision"], "status": "DONE"}

    def create_decision(self, ctx, customerId: str) -> dict:
        """Start a decision job over the user's data as it is now: 200 {jobId} (s.6)."""
        return self._create_decision(ctx, customerId, DECISION_KIND, extended=False)

    def get_decision(self, ctx, jobId: str) -> dict:
        """{status: RUNNING} until {decision: [{parameter, value, passed}], status: DONE} (s.6, item shape inferred)."""
        return self._get_decision(ctx, jobId, DECISION_KIND)

    def create_decision_extended(self, ctx, customerId: str) -> dict:
        """As create_decision, with the extended rule set (reports.DECISION_RULES)."""
        return self._create_decision(ctx, customerId, DECISION_EXTENDED_KIND, extended=True)

    def get_decision_extended(self, ctx, jobId: str) -> dict:
        """As get_decision, for decision-extended jobs."""
        return self._get_decision(ctx, jobId, DECISION_EXTENDED_KIND)

    # --- private scoring -------------------------------------------------------------------------------------------
    def create_private_scoring(self, ctx, customerId: str) -> dict:
        """200 {jobId, status}: READY (data of ACTIVE/COMPLETED connections), LOADING_MORE (and another connection
        still fetching), NOT_READY (only connections still fetching), NO_CONNECTIONS_FOUND (none usable) (s.6).

        (inferred) Only READY and LOADING_MORE jobs compute a score; the others end at once with that status."""
        customer = self._customer(customerId)
        tenant = ctx.tenant
        everything = self.user_connections(tenant, ctx.user)
        usable = self.data_connections(tenant, ctx.user)
        pending = [c for c in everything if c["status"] in PENDING]
        if usable:
            status = "LOADING_MORE" if pending else "READY"
            metrics = self._metrics_now(tenant, usable)
            result = {"status": status, "finalScore": private_score(metrics)}
            job = self._start(ctx, SCORING_KIND, customer, result)
        else:
            status = "NOT_READY" if pending else "NO_CONNECTIONS_FOUND"
            job = self.sb.jobs.create(tenant, SCORING_KIND, [status], owner=ctx.user,
                                      data={"customerId": customer, "status": status})
        return {"jobId": job["id"], "status": status}

    def get_private_scoring(self, ctx, jobId: str) -> dict:
        """{status: RUNNING} until {status: DONE, scoring{finalScore, customerId, orgId, createdAt}} (s.6); a job
        created without usable data answers its creation status (NOT_READY / NO_CONNECTIONS_FOUND) alone."""
        job = self._poll(ctx, SCORING_KIND, jobId)
        if job["state"] in ("RUNNING", "NOT_READY", "NO_CONNECTIONS_FOUND"):
            return {"status": job["state"]}
        if job["state"] == "FAILED":
            return {"status": "FAILED", "message": job["error"]["message"]}
        org = self.org_id(ctx.tenant) if hasattr(self, "org_id") else ctx.tenant
        return {"status": "DONE", "scoring": {"finalScore": job["data"]["finalScore"],
                                              "customerId": job["data"]["customerId"], "orgId": org,
                                              "createdAt": job["created_at"]}}

    # --- monthly report --------------------------------------------------------------------------------------------
    def get_monthly_report(self, ctx, userId: str) -> dict:
        """The user's monthly report (s.6): 400 without connections; the first call for the current data answers
        404 (the provider's "refreshing ... creating the report") and builds it; later calls get it (200).

        (inferred) The report is rebuilt, answering 404 once more, when its data changes (a connection added,
        refreshed or deleted) or a new month begins. A userId other than the token's is treated as a user without
        connections: reports are visible to tokens of the same organisation and userId only."""
        tenant, user_id = ctx.tenant, ctx.user
        if userId != user_id:
            raise BadRequest(NO_CONNECTIONS)
        connections = self.data_connections(tenant, user_id)
        if not connections:
            raise BadRequest(NO_CONNECTIONS)
        today = self.sb.clock.now(tenant).date()
        version = self.data_version(connections, "monthly", today.strftime("%Y-%m"))
        stored = self.sb.store.get(tenant, _MONTHLY, user_id)
        if stored and stored["version"] == version:
            return stored["report"]
        by_type: dict = {}
        for connection in connections:
            for account in self.account_objects(tenant, connection):
                by_type.setdefault(account.get("accountType"), []).append(account)
        report_id = uuid4(random.Random(stable_seed(self.sb.seed.get(), tenant, user_id, "monthly", version)))
        report = build_monthly_report(self.ledgers_of(tenant, connections), today, report_id, by_type)
        self.sb.store.put(tenant, _MONTHLY, user_id, {"version": version, "report": report})
        raise NotFound(NO_REPORT)
