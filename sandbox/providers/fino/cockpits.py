"""finoOS person and company cockpits, the cockpit link and page, recommendations and the analytics projections
(fino.md sections 10 "Cockpits", "Person and company analytics", "Advisors", 11 and 12).

Every analysis run computes, after categorization and detection, the user's cockpit (``personcockpit`` or
``companycockpit``, the webhook event names of section 11), its recommendations and the provisional risk and
adult-check components, from the user's own stored bookings (cockpit_blocks.py holds the pure computations).
Reads go through the platform area's ``read_result``: 404 before the first completed run, the previous run's results
while a new one runs, 403 outside the user's scopes. The analytics endpoints project cockpit blocks (section 10:
provisional bodies) wrapped as ``{"correlationID": <run>, "<component>": {...}}``.
"""
from __future__ import annotations

from datetime import timedelta

from flask import render_template, request

from ...core.clock import isoformat, parse_instant
from ...core.errors import NotFound
from ...core.paging import FINO_METADATA_COCKPITS, fino_page, int_param
from ...core.signing import ExpiredToken, InvalidToken, expires_at
from . import cockpit_blocks as blocks
from . import german, model

PERSON, COMPANY = "personcockpit", "companycockpit"
RECOMMENDATIONS = {"person": "personcockpit-recommendations", "company": "companycockpit-recommendations"}
NOTIFICATION = "cockpitrecommendations.notification"
ANALYTICS = {"person": "person-analytics", "company": "company-analytics"}   # risk / adult check (not events)
LINK_PURPOSE = "fino-cockpit"
LINK_DEFAULT = 24 * 3600            # section 10: expires-in defaults to 24 h
LINK_MAX = 365 * 24 * 3600          # sandbox bound (inferred): at most a year
INCOME_SCOPES = ("person-income-salary", "person-income-pension", "person-income-child-benefit",
                 "person-income-parental-allowance", "person-income-rental", "person-income-investment",
                 "person-income-loan", "person-income-alimony", "person-income-self-employment",
                 "person-income-other")
TENANT_COLOR = "#00875a"
HOUSEHOLD_LABELS = [("groceries", "Lebensmittel"), ("mobility", "Mobilität"), ("clothing", "Kleidung"),
                    ("recreational", "Freizeit"), ("vacation", "Urlaub"), ("cashWithdrawal", "Bargeld"),
                    ("other", "Sonstiges")]


def _kind(user_type: str) -> str:
    return COMPANY if user_type == "company" else PERSON


class Cockpits:
    def setup(self) -> None:
        """Register the cockpit kinds last (they read categorization, contracts and account history computed before
        them in the same run): cockpits, recommendations, the notification and the risk/adult-check components."""
        self._cockpit_cache = {}
        self.register_result(PERSON, lambda s, u, r, res: self._compute_cockpit(s, u, r, res, "person"))
        self.register_result(COMPANY, lambda s, u, r, res: self._compute_cockpit(s, u, r, res, "company"))
        for user_type, kind in RECOMMENDATIONS.items():
            self.register_result(kind, lambda s, u, r, res, t=user_type: self._compute_recommendations(r, res, t))
        self.register_result(NOTIFICATION, self._compute_notification)
        for user_type, kind in ANALYTICS.items():
            self.register_result(kind, lambda s, u, r, res, t=user_type: self._compute_analytics(s, u, r, res, t))

    # ================================================================================================================
    # computation (at run completion)
    # ================================================================================================================
    def _bookings(self, scope, user_id: str, results: dict | None = None) -> tuple[list[dict], list[blocks.Tx]]:
        """(accounts, normalised bookings) of the user, with the categorization's tags: those of this run's
        categorization state when computed (``[transactionId, accountId, tags, run]`` items), else recomputed."""
        accounts = sorted(model.accounts(scope, user_id).list(), key=lambda a: a["accountId"])
        transactions = {a["accountId"]: model.transactions(scope, user_id, a["accountId"]).list() for a in accounts}
        tags = None
        state = (results or {}).get("categorization-state")
        tagger = getattr(self, "transaction_tags", None)
        if isinstance(state, dict) and isinstance(state.get("items"), list):
            tags = {item[0]: item[2] for item in state["items"]}
        elif tagger is not None:
            try:
                found = tagger(scope, user_id)
                tags = found if isinstance(found, dict) else None
            except Exception:   # noqa: BLE001 - the cockpit falls back to its own rules (cockpit_blocks.classify)
                tags = None
        return accounts, blocks.normalise(accounts, transactions, tags)

    def _compute_cockpit(self, scope, user_id: str, run: dict, results: dict, user_type: str) -> dict | None:
        """The user's cockpit of its own type (None for the other type: section 10, a person has no company cockpit)."""
        if (run.get("params") or {}).get("type", "person") != user_type:
            return None
        accounts, txs = self._bookings(scope, user_id, results)
        completed = parse_instant(run["completed_at"]) if run.get("completed_at") else self.sb.clock.now(scope.tenant)
        today = self._today(scope, run)
        from .platform import tenant_name
        tenant = {"color": TENANT_COLOR, "logoUrl": "", "name": tenant_name(scope.tenant)}
        histories = blocks.balances_for(accounts, txs, today)
        build = blocks.company_cockpit if user_type == "company" else blocks.person_cockpit
        cockpit = build(user_id, accounts, txs, today, isoformat(completed), tenant, histories,
                        results.get("contracts"), blocks.histories_from_detection(results.get("account-history")))
        self._cockpit_cache = {run["id"]: txs}   # for the analytics kind of the same run (same process)
        return cockpit

    def _compute_recommendations(self, run: dict, results: dict, user_type: str) -> dict | None:
        cockpit = results.get(_kind(user_type))
        if cockpit is None:
            return None

        def ident(rule: str) -> str:
            return german.uuid_from("fino-recommendation", run["subject"], rule)
        rules = blocks.company_recommendations if user_type == "company" else blocks.person_recommendations
        return {"recommendations": rules(cockpit, ident)}

    def _compute_notification(self, scope, user_id: str, run: dict, results: dict) -> dict | None:
        """Section 11 ``cockpitrecommendations.notification`` (inferred payload): what the customer is shown."""
        for user_type, kind in RECOMMENDATIONS.items():
            found = results.get(kind)
            if found is not None:
                return {"type": user_type, "recommendations": [
                    {"id": r["id"], "priority": r["priority"], "title": r["title"]}
                    for r in found["recommendations"] if r["showCustomer"]]}
        return None

    def _compute_analytics(self, scope, user_id: str, run: dict, results: dict, user_type: str) -> dict | None:
        cockpit = results.get(_kind(user_type))
        if cockpit is None:
            return None
        txs = self._cockpit_cache.get(run["id"])
        if txs is None:
            txs = self._bookings(scope, user_id, results)[1]
        self._cockpit_cache = {}
        today = self._today(scope, run)
        if user_type == "company":
            return {"risk": blocks.company_risk(cockpit, txs, today)}
        return {"risk": blocks.person_risk(cockpit, txs, today), "adultCheck": blocks.adult_check(cockpit)}

    def _today(self, scope, run: dict):
        """The Berlin day the run completed (sandbox clock): the end of the cockpit's window."""
        completed = parse_instant(run["completed_at"]) if run.get("completed_at") else self.sb.clock.now(scope.tenant)
        return completed.astimezone(blocks.BERLIN).date()

    # ================================================================================================================
    # reads
    # ================================================================================================================
    def _typed_result(self, ctx, user_id: str, user_type: str, kind: str, *user_scopes: str,
                      raw: bool = False) -> dict | str:
        """A result of a ``user_type`` user: 404 for a user of the other type (section 10, inferred), before the
        first run, for unknown/foreign/expired users; 403 outside the user's scopes. ``raw``: as stored JSON text."""
        result = self.read_result(ctx, user_id, kind, *user_scopes, raw=raw)
        user = self.live_user(ctx, user_id)
        if user.get("type", "person") != user_type or result is None or result == "null":
            raise NotFound(f"The user is of type {user.get('type')}: no {user_type} result")
        return result

    def _run_id(self, ctx, user_id: str) -> str:
        """The correlation id of the run whose results are served (the last completed one)."""
        run = self.sb.runs.last_completed(ctx.tenant, model.ANALYSIS, user_id)
        return run["id"] if run else ""

    def get_person_cockpit(self, ctx, user_id: str) -> str:
        return self._typed_result(ctx, user_id, "person", PERSON, "cockpits", raw=True)

    def get_company_cockpit(self, ctx, user_id: str) -> str:
        return self._typed_result(ctx, user_id, "company", COMPANY, "cockpits", raw=True)

    def get_cockpit_recommendations(self, ctx, user_id: str) -> str:
        user_type = self.live_user(ctx, user_id).get("type", "person")
        return self._typed_result(ctx, user_id, user_type, RECOMMENDATIONS[user_type], "cockpits", raw=True)

    def get_cockpit_correlation(self, ctx, user_id: str) -> dict:
        """Section 6: the cockpit's correlation; query ``correlation-id`` asks about one specific run of this user
        (404 while it runs, after it failed, or when it is not this user's)."""
        from .platform import berlin_timestamp
        self.live_user(ctx, user_id)
        self.require_user_scopes(ctx, "cockpits")
        wanted = ctx.query.get("correlation-id")
        if not wanted:
            return self.correlation(ctx, user_id)
        try:
            run = self.sb.runs.get(ctx.tenant, model.ANALYSIS, wanted, poll=True)
        except NotFound:
            raise NotFound("No such analysis run for this user") from None
        if run["subject"] != user_id:
            raise NotFound("No such analysis run for this user")
        if not run["done"]:
            raise NotFound("The analysis failed" if run["failed"] else "The analysis is still running")
        return {"correlationID": run["id"], "correlationTimestamp": berlin_timestamp(run["completed_at"])}

    def list_cockpits(self, ctx) -> dict:
        """Users of this tenant whose cockpit exists (an analysis with the cockpits scope completed), in creation
        order; filters ``advisor-id`` and ``custom-user-id``; ``page``/``page-size`` (min 2) as section 10 says.
        ``customerApproval`` is true: the sandbox assumes the client collected the approval (inferred)."""
        self.purge_expired_users(ctx.tenant)
        advisor, custom = ctx.query.get("advisor-id"), ctx.query.get("custom-user-id")

        def keep(u: dict) -> bool:
            return (bool(u.get("cockpitAt")) and not self._expired(ctx.tenant, u)
                    and (advisor is None or advisor in (u.get("advisorIDs") or []))
                    and (custom is None or u.get("customUserID") == custom))
        users = sorted(model.users(ctx).iter(keep), key=lambda u: (u["cockpitAt"], u.get("seq", 0), u["userID"]))
        items = [{"createdAt": u["cockpitAt"], "customUserID": u.get("customUserID") or "", "customerApproval": True,
                  "id": u["userID"], "name": u.get("name") or "", "type": u.get("type") or "person"} for u in users]
        return fino_page(items, ctx.query, FINO_METADATA_COCKPITS, items_key="cockpits")

    def get_cockpit_link(self, ctx, user_id: str) -> dict:
        """Section 10: a signed URL of the cockpit web page, valid ``expires-in`` seconds (default 24 h) on the
        sandbox clock; ``expireTimestamp`` as section 13 writes it (``YYYY-MM-DDTHH:MM:SS``, UTC, inferred zone)."""
        seconds = int_param(ctx.query, "expires-in", LINK_DEFAULT, minimum=1, maximum=LINK_MAX)
        user_type = self.live_user(ctx, user_id).get("type", "person")
        self._typed_result(ctx, user_id, user_type, _kind(user_type), "cockpits")
        expires = expires_at(ctx.now(), seconds)
        url = self.sb.signer.sign_url(ctx.url_for("cockpit_web", user_id=user_id), expires=expires,
                                      tenant=ctx.tenant, purpose=LINK_PURPOSE)
        stamp = (ctx.now() + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
        return {"url": url, "expireTimestamp": stamp}

    # --- person analytics (section 10 "Person and company analytics", provisional) ------------------------------------
    def _component(self, ctx, user_id: str, user_type: str, key: str, project, kind: str | None = None) -> dict:
        result = self._typed_result(ctx, user_id, user_type, kind or _kind(user_type))
        return {"correlationID": self._run_id(ctx, user_id), key: project(result)}

    def get_person_income(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "person", "income", lambda c: c["income"])

    def get_person_spending(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "person", "spending", lambda c: c["spending"])

    def get_person_household_budget(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "person", "householdBudget", lambda c: c["householdExpenditure"])

    def get_person_living_situation(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "person", "livingSituation",
                               lambda c: {"overview": c["overview"], "wealth": c["wealth"]})

    def get_person_risk(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "person", "risk", lambda a: a["risk"], ANALYTICS["person"])

    def get_person_adult_check(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "person", "adultCheck", lambda a: a["adultCheck"], ANALYTICS["person"])

    # --- company analytics ----------------------------------------------------------------------------------------
    def get_company_cash(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "cash",
                               lambda c: {**c["cashflow"], "collectivePayments": c["collectivePayments"]})

    def get_company_liquidity(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "liquidity",
                               lambda c: {"accounts": c["caa"]["liquidity"], **c["liquidity"]})

    def get_company_foreign_payments(self, ctx, user_id: str | None = None) -> dict:
        """Also served at ``/foreign-payments`` (the guide's path, no user in it): the user then comes from query
        ``user-id`` (inferred); without it no user is named: 404 like an unknown user (the catalogue lists no 400)."""
        if user_id is None:
            user_id = ctx.query.get("user-id") or ""
            if not user_id:
                raise NotFound("No user named: pass query user-id on /foreign-payments")
        return self._component(ctx, user_id, "company", "foreignPayments", lambda c: c["caa"]["foreignSales"])

    def get_company_risk(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "risk", lambda a: a["risk"], ANALYTICS["company"])

    def get_company_credit(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "credit",
                               lambda c: {"credits": c["credits"], "creditsAmount": c["liquidity"]["creditsAmount"]})

    def get_company_insurance(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "insurance", lambda c: {"insurances": c["insurances"]})

    def get_company_investment(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "investment",
                               lambda c: {"savingSecurities": c["savingSecurities"], "securities": c["securities"]})

    def get_company_internal_bookings(self, ctx, user_id: str) -> dict:
        return self._component(ctx, user_id, "company", "internalBookings",
                               lambda c: {"internalContracts": c["internalContracts"]})

    # ================================================================================================================
    # section 12: the cockpit web page
    # ================================================================================================================
    def cockpit_web(self, ctx, user_id: str):
        """``GET /cockpit/{user-id}?tenant&expires&signature``: the cockpit as HTML while the link is valid (sandbox
        clock), a 401 page after ``expireTimestamp`` or for a tampered link, 404 when the user or cockpit is gone."""
        try:
            params = self.sb.signer.verify_url(request.path, request.args.to_dict(), purpose=LINK_PURPOSE,
                                               now=lambda t: self.sb.clock.now(t or "_anonymous"))
        except ExpiredToken:
            return render_template("cockpit_error.html", title="Link abgelaufen",
                                   message="Dieser Cockpit-Link ist abgelaufen. Bitte fordern Sie einen neuen an."), 401
        except InvalidToken:
            return render_template("cockpit_error.html", title="Ungültiger Link",
                                   message="Dieser Cockpit-Link ist ungültig."), 401
        tenant = params.get("tenant") or ""
        user = self._live(tenant, user_id)
        results = None
        if user is not None:
            try:
                results = self.sb.runs.results(tenant, model.ANALYSIS, user_id)
            except NotFound:
                results = None
        user_type = (user or {}).get("type", "person")
        cockpit = (results or {}).get(_kind(user_type))
        if cockpit is None:
            return render_template("cockpit_error.html", title="Kein Cockpit",
                                   message="Für diesen Nutzer liegt kein Cockpit vor."), 404
        recommendations = ((results or {}).get(RECOMMENDATIONS[user_type]) or {}).get("recommendations", [])
        expires = _expiry_text(params["expires"])
        return render_template("cockpit.html", cockpit=cockpit, user=user, recommendations=recommendations,
                               expires=expires, kind=user_type, household_labels=HOUSEHOLD_LABELS)


def _expiry_text(value: str) -> str:
    """The link's ``expires`` (Unix seconds) as the page shows it."""
    from datetime import datetime, timezone
    return datetime.fromtimestamp(int(value), timezone.utc).strftime("%d.%m.%Y %H:%M UTC")


def cockpit_web_page(ctx, user_id: str):
    """fino.cockpit_web: the signed, expiring cockpit page (section 12)."""
    return ctx.service.cockpit_web(ctx, user_id)
