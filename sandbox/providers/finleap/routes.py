"""finX route table and thin views. Paths are relative to the provider prefix ``/finleap``.

The table is the only place a path is written (catalogue.yaml, provider finleap): change a guess here.
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...core.errors import NotFound
from ...core.http import basic_credentials, bearer_token, json_body, query_args, set_tenant
from ...core.signing import InvalidToken
from .widget import TEXT, Widget, WidgetError, callback_url

# operation id -> (method, path, aliases); the catalogue id is "finleap.<operation>"
ROUTES = {
    "create_income_report_link": ("POST", "/onetime/income-report", []),
    "create_token": ("POST", "/auth/token", []),
    "get_income_report": ("GET", "/rest/income-reports/{id}", ["/rest/income-report"]),
    "create_account_verification_link": ("POST", "/onetime/account-verification", []),
    "get_account_verification_report": ("GET", "/rest/account-verifications/{id}", []),
    "list_accounts": ("GET", "/rest/accounts", []),
    "get_account": ("GET", "/rest/accounts/{account_id}", []),
    "get_account_balance": ("GET", "/rest/accounts/{account_id}/balance", []),
    "list_transactions": ("GET", "/rest/transactions", ["/rest/accounts/{account_id}/transactions"]),
    "get_transaction": ("GET", "/rest/transactions/{transaction_id}",
                        ["/rest/accounts/{account_id}/transactions/{transaction_id}"]),
    "list_notifications": ("GET", "/rest/notifications", []),
    "create_notification": ("POST", "/rest/notifications", []),
    "get_notification": ("GET", "/rest/notifications/{notification_id}", []),
    "update_notification": ("PUT", "/rest/notifications/{notification_id}", []),
    "delete_notification": ("DELETE", "/rest/notifications/{notification_id}", []),
    "list_accesses": ("GET", "/rest/accesses", []),
    "get_access": ("GET", "/rest/accesses/{access_id}", []),
    "create_sync": ("POST", "/rest/accesses/{access_id}/syncs", []),
    "get_sync": ("GET", "/rest/accesses/{access_id}/syncs/{sync_id}", []),
}
# hosted pages (catalogue "pages"), relative to pages_prefix /finleap; POST aliases take the plain form posts
PAGES = {
    "widget": ("GET", "/widget/", ["POST /widget/"]),
    "sync_sca": ("GET", "/widget/sca/{sync_id}", ["POST /widget/sca/{sync_id}"]),
}


class Views:
    def __init__(self, service):
        self.service = service
        self.widget_flow = Widget(service)

    # --- client (HTTP Basic) -----------------------------------------------------------------------------------
    def _client(self) -> dict:
        client_id, secret = basic_credentials()
        set_tenant(self.service.client_tenant(client_id))
        return self.service.client(client_id, secret)

    def _widget_url(self, token: str) -> str:
        return url_for(f"{request.blueprint}.widget", token=token, _external=True)

    def create_income_report_link(self):
        client = self._client()
        return self.service.create_income_report_link(client, json_body(), self._widget_url), 201

    def create_account_verification_link(self):
        client = self._client()
        return self.service.create_account_verification_link(client, json_body(), self._widget_url), 201

    def create_token(self):
        client = self._client()
        return self.service.create_token(client, json_body(allow_form=True))

    # --- end user (Bearer) ---------------------------------------------------------------------------------------
    def _auth(self, scope: str | None = None) -> dict:
        tok = self.service.authorize(bearer_token(), scope)
        set_tenant(tok["tenant"])
        return tok

    def _href_base(self) -> str:
        """The sandbox's own API base (report hrefs point at its /rest/transactions)."""
        return url_for(f"{request.blueprint}.list_accounts", _external=True).rsplit("/rest/", 1)[0]

    def get_income_report(self, id: str | None = None):
        tok = self._auth()
        if id is None:
            return self.service.get_income_report_legacy(tok, query_args(), self._href_base())
        return self.service.get_income_report(tok, id, self._href_base())

    def get_account_verification_report(self, id: str):
        return self.service.get_account_verification_report(self._auth(), id)

    def list_accounts(self):
        return self.service.list_accounts(self._auth("accounts=ro"))

    def get_account(self, account_id: str):
        return self.service.get_account(self._auth("accounts=ro"), account_id)

    def get_account_balance(self, account_id: str):
        return self.service.get_account_balance(self._auth("balance=ro"), account_id)

    def list_transactions(self, account_id: str | None = None):
        tok = self._auth("transactions=ro")
        return self.service.list_transactions(tok, query_args(), account_id)

    def get_transaction(self, transaction_id: str, account_id: str | None = None):
        return self.service.get_transaction(self._auth("transactions=ro"), transaction_id, account_id)

    def list_notifications(self):
        return self.service.list_notifications(self._auth())

    def create_notification(self):
        tok = self._auth()
        return self.service.create_notification(tok, json_body()), 201

    def get_notification(self, notification_id: str):
        return self.service.get_notification(self._auth(), notification_id)

    def update_notification(self, notification_id: str):
        tok = self._auth()
        return self.service.update_notification(tok, notification_id, json_body())

    def delete_notification(self, notification_id: str):
        self.service.delete_notification(self._auth(), notification_id)
        return "", 204

    def list_accesses(self):
        return self.service.list_accesses(self._auth("accounts=ro"))

    def get_access(self, access_id: str):
        return self.service.get_access(self._auth("accounts=ro"), access_id)

    def create_sync(self, access_id: str):
        tok = self._auth("accounts=ro")
        body = json_body() or {}
        sca_url = lambda sync_id, token: url_for(f"{request.blueprint}.sync_sca", sync_id=sync_id, token=token,
                                                 _external=True)
        return self.service.create_sync(tok, access_id, body, sca_url), 201

    def get_sync(self, access_id: str, sync_id: str):
        return self.service.get_sync(self._auth("accounts=ro"), access_id, sync_id)

    # --- hosted pages --------------------------------------------------------------------------------------------
    def widget(self):
        token = request.args.get("token")
        try:
            tenant, flow = self.widget_flow.open(token)
        except WidgetError as exc:
            # the flow (and its language) is unknown here: German first, as the widget's default language
            return render_template("finleap_error.html", t=TEXT["de"], lang="de", rtl=False,
                                   message=f"{TEXT['de'][str(exc)]} / {TEXT['en'][str(exc)]}"), 400
        set_tenant(tenant)
        error = None
        if request.method == "POST":
            form = request.form.to_dict()
            form["accounts"] = request.form.getlist("accounts")
            target, error = self.widget_flow.submit(tenant, flow, form)
            if target:
                return redirect(target, code=303)
        return render_template("finleap_widget.html", **self.widget_flow.context(tenant, flow, error))

    def sync_sca(self, sync_id: str):
        page = {"t": TEXT["en"], "lang": "en", "rtl": False, "sync_id": sync_id, "done": None}
        try:
            tenant = self.service.sca_tenant(request.args.get("token"), sync_id)
            set_tenant(tenant)
            job = self.service.sync_for_page(tenant, sync_id)
            if request.method == "POST":
                job = self.service.confirm_sync_sca(tenant, sync_id, approve="approve" in request.form)
                target = job["data"].get("redirect_uri")
                if target:
                    return redirect(callback_url(target, [("state", job["data"].get("state") or "")]), code=303)
                page["done"] = f"Synchronization {job['state'].lower()}."
            elif job["state"] != "AWAIT_AUTH":
                page["done"] = "This synchronization is not waiting for authentication."
        except (InvalidToken, NotFound):
            return render_template("finleap_error.html", **page, message="This link is invalid or has expired."), 400
        return render_template("finleap_sca.html", **page)
