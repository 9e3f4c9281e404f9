"""Open Finance operations, named like the catalogue ids. Raise SandboxError subclasses; never build responses."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import random
from datetime import date, datetime, time, timezone

from ...core.clock import isoformat
from ...core.errors import BadRequest, Conflict, InternalError, NotFound
from ...core.ids import stable_seed, uuid4
from ...core.pdf import render_pdf
from ...core.signing import expires_at
from ...ledger import generate_ledger
from ...ledger.models import ledger_from_json
from . import data
from .accounts import Accounts
from .connections import Connections
from .decisions import Decisions
from .reports import build_financial_report, report_pdf_sections

PROVIDER = "open_finance"
JOB_KIND = "open_finance.financial_report"
# Scopes of the API reference's security schemes (open_finance.md section 3); all granted by default.
SCOPES = ["read:transactions", "read:accounts", "read:connections", "create:connections", "update:connections",
          "delete:connections", "read:providers", "delete:organization_connections", "read:organization_transactions",
          "read:organization_accounts", "read:organization_connections", "create:organization_connections",
          "delete:payments", "update:transactions", "read:categories", "read:extended-securities"]
REPORT_SCOPE = "read:connections"  # report guide: "Requires read:connections scope"
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
NO_ACTIVE_CONNECTIONS = "No active connections found"   # (inferred) text of the decision guide's 400, section 6
PDF_LINK = "open_finance.report_pdf"   # purpose of the PDF's signed links
_CONNECTIONS, _LEDGERS, _REPORTS = f"{PROVIDER}.connections", f"{PROVIDER}.ledgers", f"{PROVIDER}.reports"


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


AREAS = (Connections, Accounts, Decisions)


class OpenFinanceService(*AREAS):
    """Token and financial report here; connections.py, accounts.py and decisions.py add the extended areas."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.ttl = int(sandbox.config["OPEN_FINANCE_TOKEN_TTL"])
        self.strict = bool(sandbox.config["OPEN_FINANCE_STRICT_CONNECTIONS"])
        self.pdf_link_ttl = float(sandbox.config["OPEN_FINANCE_PDF_LINK_TTL"])
        for area in AREAS:
            area.setup(self)

    # --- auth ------------------------------------------------------------------------------------------------
    def create_token(self, ctx) -> dict:
        """Issue a Bearer token for one userId (report guide step 1); the dispatcher's ``client_body`` scheme has
        already answered wrong credentials with 401 access_denied."""
        body, client = ctx.body, ctx.client
        tenant = client["tenant"]
        rng = self.sb.ids.secret_rng(tenant, "open_finance.token")   # a credential: from the secret key
        now = self.sb.clock.now(tenant)
        # Opaque but JWT-looking, like the guide's example (open_finance.md section 3)
        header = _b64({"alg": "RS256", "typ": "JWT", "kid": rng.getrandbits(32).to_bytes(4, "big").hex()})
        payload = _b64({"sub": body["userId"], "iat": int(now.timestamp()), "jti": uuid4(rng)})
        signature = base64.urlsafe_b64encode(rng.getrandbits(256).to_bytes(32, "big")).rstrip(b"=").decode()
        token = f"{header}.{payload}.{signature}"
        scopes = self.sb.auth.allowed_scopes(client, PROVIDER, SCOPES)
        self.sb.auth.issue(PROVIDER, client, token, self.ttl, subject=body["userId"], scopes=scopes)
        return {"tokenType": "Bearer", "expiresIn": self.ttl, "accessToken": token}

    # --- connections and data (the auto-provisioned sandbox connection) --------------------------------------
    def user_connections(self, tenant: str, user_id: str) -> list[dict]:
        """Every connection of a user, due transitions applied when connections.py provides them (s.8)."""
        if hasattr(self, "connections_for_data"):
            return self.connections_for_data(tenant, user_id)
        return self._connections(tenant, user_id).list()

    def data_connections(self, tenant: str, user_id: str) -> list[dict]:
        """The user's ACTIVE or COMPLETED connections that hold data: what every report and job is built from
        (decision guide: jobs need at least one of them), oldest first."""
        return [c for c in self.user_connections(tenant, user_id)
                if c["status"] in data.OK_STATUSES and self.sb.store.exists(tenant, _LEDGERS, c["id"])]

    def ledgers_of(self, tenant: str, connections: list[dict]) -> list:
        """The stored ledger of each connection (one per connection, keyed by its id), cut to the transactions booked
        on or after the connection's ``startDate`` (s.6), so every report and job computes from what it serves."""
        return [data.cut_ledger(ledger_from_json(self.sb.store.get(tenant, _LEDGERS, c["id"])), data.start_date(c))
                for c in connections]

    @staticmethod
    def data_version(connections: list[dict], *extra) -> str:
        """A key that changes whenever the data behind a report changes (a connection added, refreshed, deleted)."""
        return hashlib.sha256(json.dumps([*map(str, extra)] + sorted(
            f"{c['id']}:{c.get('dataVersion', 1)}" for c in connections)).encode()).hexdigest()[:32]

    def _connections(self, tenant: str, user_id: str):
        # scoped by user with escaped keys: user "carol" never sees the connections of user "carol|x"
        return self.sb.collection(tenant, _CONNECTIONS, scope=user_id)

    def ensure_sandbox_connection(self, tenant: str, user_id: str, psu_id: str) -> list[dict]:
        """Give a user without connections one on ``open-finance-sandbox`` for ``psu_id`` (open_finance.md s.5).

        Its outcome follows the published test psuIds (section 11); data is generated per (seed, psuId).
        """
        existing = self._connections(tenant, user_id).list()
        if existing or self.strict:   # OPEN_FINANCE_STRICT_CONNECTIONS: no auto-provisioning at all
            return existing
        now = self.sb.clock.now(tenant)
        seed = self.sb.seed.get()
        conn_id = uuid4(random.Random(stable_seed(seed, tenant, user_id, "auto-connection")))
        status = data.connection_status(psu_id)
        connection = {"id": conn_id, "userId": user_id, "customerId": psu_id, "psuId": psu_id, "psuIdType": "ID",
                      "providerId": data.SANDBOX_PROVIDER, "status": status, "mode": "PSD2", "isFake": True,
                      "includeFakeProviders": True, "createdAt": isoformat(now), "updatedAt": isoformat(now),
                      "dataVersion": 1, "providerIds": [data.SANDBOX_PROVIDER], "iframe": False, "error": None,
                      # the fields connections.py keeps on every connection it creates (a one-time connection)
                      "refreshSettings": {"refreshData": False, "frequencyPerDay": 0,
                                          "lastFetchedDataDate": isoformat(now)},
                      "lastFetchedDataDate": isoformat(now), "organization": {"name": tenant},
                      "_statusSince": isoformat(now), "_seq": self.sb.store.incr(tenant, f"{PROVIDER}.connection_seq", "n")}
        if hasattr(self, "org_id"):
            connection["orgId"] = self.org_id(tenant)
        if status in data.OK_STATUSES:
            ledger = data.apply_test_accounts(generate_ledger(seed, psu_id, now.date(), market="IL"), psu_id)
            self.sb.store.add(tenant, _LEDGERS, conn_id, ledger.to_json())
        try:
            self._connections(tenant, user_id).create(connection)
        except Conflict:
            pass   # another request provisioned it first: first writer wins
        else:
            if status == "PARTIALLY_AUTHORIZED":
                self.await_co_owners(tenant, user_id, conn_id)   # s.8: answerable like a consented one
        return self.user_connections(tenant, user_id)

    # --- financial report ------------------------------------------------------------------------------------
    def create_financial_report(self, ctx, customerId: str) -> dict:
        """Start a report job over the token user's data as it is now; the job is RUNNING, then DONE."""
        customer_id = customerId.strip()
        if not customer_id:
            raise BadRequest("Missing customerId")
        if customer_id == data.SCENARIO_INTERNAL_ERROR:
            raise InternalError("scenario: internal error")
        tenant, user_id = ctx.tenant, ctx.user
        # the user's real connections (connections.py); only a user with none at all gets the auto-provisioned one
        self.ensure_sandbox_connection(tenant, user_id, customer_id)
        connections = self.data_connections(tenant, user_id)
        if not connections:
            # decision guide: jobs need an ACTIVE or COMPLETED connection; message (inferred), section 5
            raise BadRequest(NO_ACTIVE_CONNECTIONS)
        today = self.sb.clock.now(tenant).date()
        report_key = f"{user_id}|{self.data_version(connections, customer_id, today.isoformat())}"
        if not self.sb.store.exists(tenant, _REPORTS, report_key):  # the same data gives the same report
            report = build_financial_report(self.ledgers_of(tenant, connections), customer_id, today)
            # stored as the report object itself: a DONE poll splices the stored JSON text into the body without
            # decoding it (the former {"json": "<escaped text>"} cost a decode of 18 KB of escapes per poll)
            self.sb.store.put(tenant, _REPORTS, report_key, report)
        job = self.sb.jobs.create(tenant, JOB_KIND, ["RUNNING", "DONE"], owner=user_id,
                                  data={"customerId": customer_id, "report": report_key})
        if customer_id == data.SCENARIO_JOB_FAILS:
            self.sb.jobs.fail(tenant, job["id"], "Report generation failed (sandbox scenario)")
        return {"jobId": job["id"]}

    def _job(self, tenant: str, user_id: str, job_id: str, poll: bool) -> dict:
        job = None
        if _ULID.match(job_id):
            job = self.sb.jobs.poll(tenant, job_id) if poll else self.sb.jobs.get(tenant, job_id)
        if not job or job["kind"] != JOB_KIND or job["owner"] != user_id:
            raise BadRequest("Invalid jobId")  # the guide has no 404: unknown and foreign ids are invalid
        return job

    def get_financial_report(self, ctx, jobId: str) -> dict | str:
        """Poll a report job: {status: RUNNING} until {financialReport, status: DONE[, url]} (as JSON text);
        ``withPdf=1`` adds the PDF's url."""
        job = self._job(ctx.tenant, ctx.user, jobId, poll=True)
        if job["state"] == "RUNNING":
            return {"status": "RUNNING"}
        if job["state"] == "FAILED":  # sandbox extension, section 7
            return {"status": "FAILED", "message": job["error"]["message"]}
        report = self._report_text(ctx.tenant, job["data"]["report"])
        pdf_url = self._pdf_url(ctx, jobId) if ctx.query.get("withPdf") == "1" else None
        tail = f',"url":{_dumps(pdf_url)}' if pdf_url else ""  # only with withPdf=1
        return f'{{"financialReport":{report},"status":"DONE"{tail}}}'

    def _report_text(self, tenant: str, report_key: str) -> str:
        """A stored report as compact JSON text, read without decoding it (``Store.get_text``); a report stored by
        an older version as ``{"json": "<text>"}`` still reads."""
        text = self.sb.store.get_text(tenant, _REPORTS, report_key)
        if text.startswith('{"json":"'):   # legacy record: the report text escaped inside a string
            return json.loads(text)["json"]
        return text

    def report(self, tenant: str, report_key: str) -> dict:
        return json.loads(self._report_text(tenant, report_key))

    def _pdf_url(self, ctx, job_id: str) -> str:
        """A pre-signed, expiring link to the report PDF: the real url is an S3 object (catalogue real_url
        ``https://open-finance-assets.s3.amazonaws.com/.../report.pdf``), so it opens without a bearer token but
        only with its signature, and only until ``expires`` (OPEN_FINANCE_PDF_LINK_TTL, default 1 h)."""
        expires = expires_at(self.sb.clock.now(ctx.tenant), self.pdf_link_ttl)
        return self.sb.signer.sign_url(ctx.url_for("financial_report_pdf", jobId=job_id), expires=expires,
                                       tenant=ctx.tenant, purpose=PDF_LINK)

    def financial_report_pdf(self, job_id: str, tenant: str) -> bytes:
        """The DONE report of ``tenant`` (from the verified link) rendered as a PDF; 404 otherwise."""
        job = self.sb.jobs.get(tenant, job_id) if _ULID.match(job_id) else None
        if not job or job["kind"] != JOB_KIND or job["state"] != "DONE":
            raise NotFound("Report not found")
        report = self.report(tenant, job["data"]["report"])
        meta = [("Customer", report["customerId"]), ("Owner", report["ownerName"]),
                ("Provider", report["providerId"]), ("Date", report["currentDate"]), ("Job", job_id)]
        created = datetime.combine(date.fromisoformat(report["currentDate"]), time(), tzinfo=timezone.utc)
        return render_pdf("Financial report", meta, report_pdf_sections(report), created)
