"""The hosted finX widget (page ``finleap.widget``, finleap.md section 8) and the sync SCA page
(``finleap.sync_sca``), as flows on core/flows.py.

Widget: bank -> login -> SCA method -> OTP -> account selection -> redirect back with ``code`` (first), ``state``,
``success``, ``flow_id``; cancel adds ``cancel=true``; three wrong passwords (or OTPs) and the ``bank_error`` user
end with ``success=false``. SCA page: approve resumes the held sync, deny fails it; back to the sync's
``redirect_uri`` with ``state``. Both pages take plain form posts and work in an iframe.
"""
from __future__ import annotations

from decimal import Decimal

from flask import render_template

from ...core.errors import BadRequest, Conflict, NotFound
from ...core.flows import FlowDefinition, Next
from ...ledger.models import Account
from . import data

PROVIDER = "finleap"
PURPOSE, SCA_PURPOSE = "finleap.widget", "finleap.sca"     # signing purposes: a widget token is no SCA token
# widget flow kinds = the flow's ``type`` (finleap.md s.8; finleap-products.md s.3 for the products)
KINDS = ("income-report", "account-verification", "access", "ongoing-access", "ongoing-sync", "payment",
         "ongoing-payment", "risk-report", "ongoing-risk-report")
PAYMENT_KINDS, ONGOING_KINDS = ("payment", "ongoing-payment"), ("ongoing-access", "ongoing-sync", "ongoing-payment",
                                                                 "ongoing-risk-report")
SCA_KIND = "sync-sca"
ERROR_REASONS = ("bank_error", "wrong_credentials", "wrong_otp", "payment_rejected")
PAYMENT_FAIL_USERNAME = "figo01+paymentfail"


def after_login_step(flow: dict) -> str:
    """The step after a successful login: the Demobank's demo login has no SCA (inferred, s.3), others do."""
    if flow.get("bank_id") == data.DEMOBANK_ID and flow.get("username") == data.DEMO_USERNAME:
        return after_auth_step(flow)
    return "sca"


def after_auth_step(flow: dict) -> str:
    """The step after SCA (finleap-products.md s.3 table): accounts; payments: the debtor choice unless preset,
    then the confirmation; an ongoing sync: the "synchronisation successful" screen."""
    if flow["type"] == "ongoing-sync":
        return "synced"
    if flow["type"] in PAYMENT_KINDS:
        return "confirm" if flow.get("debtor_account") else "debtor"
    return "accounts"

TEXT = {
    "de": {"title": "Konto verbinden", "bank": "Bank auswählen", "login": "Anmeldung bei", "username": "Benutzername",
           "password": "PIN / Passwort", "sca": "Sicherheitsverfahren wählen", "otp": "TAN eingeben",
           "otp_hint": "Wir haben eine TAN an Ihr Telefon gesendet.", "accounts": "Konten auswählen",
           "continue": "Weiter", "cancel": "Abbrechen", "wrong_credentials": "Benutzername oder PIN ist falsch.",
           "wrong_otp": "Die TAN ist falsch.", "attempts_left": "Verbleibende Versuche", "choose_account":
           "Bitte wählen Sie mindestens ein Konto.", "stale": "Dieser Schritt ist nicht mehr aktuell.",
           "search": "Bank suchen", "done": "Fertig", "expired": "Dieser Link ist ungültig oder abgelaufen.",
           "used": "Dieser Link wurde bereits verwendet.", "save_credentials": "Zugangsdaten speichern",
           "saved_login": "Gespeicherte Zugangsdaten werden verwendet.", "debtor": "Auftraggeberkonto wählen",
           "confirm": "Zahlung bestätigen", "creditor": "Empfänger", "amount": "Betrag", "purpose": "Verwendungszweck",
           "pay": "Jetzt bezahlen", "synced": "Synchronisierung erfolgreich", "synced_hint":
           "Ihre Konten wurden aktualisiert.", "payment_rejected": "Die Bank hat die Zahlung abgelehnt."},
    "en": {"title": "Connect your account", "bank": "Select your bank", "login": "Log in to", "username": "Username",
           "password": "PIN / password", "sca": "Choose a security method", "otp": "Enter your one-time password",
           "otp_hint": "We sent a one-time password to your phone.", "accounts": "Select accounts",
           "continue": "Continue", "cancel": "Cancel", "wrong_credentials": "Wrong username or PIN.",
           "wrong_otp": "Wrong one-time password.", "attempts_left": "Attempts left", "choose_account":
           "Please choose at least one account.", "stale": "This step is no longer current.",
           "search": "Search bank", "done": "Done", "expired": "This link is invalid or has expired.",
           "used": "This link has already been used.", "save_credentials": "Save my credentials",
           "saved_login": "Your saved credentials are used.", "debtor": "Choose the account to pay from",
           "confirm": "Confirm the payment", "creditor": "Recipient", "amount": "Amount", "purpose": "Purpose",
           "pay": "Pay now", "synced": "Synchronisation successful", "synced_hint": "Your accounts are up to date.",
           "payment_rejected": "The bank rejected the payment."},
}
_EXTRA_EN = ("save_credentials", "saved_login", "debtor", "confirm", "creditor", "amount", "purpose", "pay",
             "synced", "synced_hint", "payment_rejected")
TEXT["es"] = {"title": "Conectar cuenta", "bank": "Seleccione su banco", "login": "Iniciar sesión en",
              "username": "Usuario", "password": "PIN / contraseña", "sca": "Elija un método de seguridad",
              "otp": "Introduzca la contraseña de un solo uso", "otp_hint": "Le hemos enviado una contraseña a su teléfono.",
              "accounts": "Seleccione las cuentas", "continue": "Continuar", "cancel": "Cancelar",
              "wrong_credentials": "Usuario o PIN incorrecto.", "wrong_otp": "Contraseña de un solo uso incorrecta.",
              "attempts_left": "Intentos restantes", "choose_account": "Elija al menos una cuenta.",
              "stale": "Este paso ya no está vigente.", "search": "Buscar banco", "done": "Listo",
              "expired": "Este enlace no es válido o ha caducado.", "used": "Este enlace ya se ha utilizado."}
TEXT["fr"] = {"title": "Connecter votre compte", "bank": "Choisissez votre banque", "login": "Connexion à",
              "username": "Identifiant", "password": "PIN / mot de passe", "sca": "Choisissez une méthode de sécurité",
              "otp": "Saisissez le code à usage unique", "otp_hint": "Nous avons envoyé un code à votre téléphone.",
              "accounts": "Choisissez les comptes", "continue": "Continuer", "cancel": "Annuler",
              "wrong_credentials": "Identifiant ou PIN incorrect.", "wrong_otp": "Code à usage unique incorrect.",
              "attempts_left": "Essais restants", "choose_account": "Veuillez choisir au moins un compte.",
              "stale": "Cette étape n'est plus d'actualité.", "search": "Rechercher une banque", "done": "Terminé",
              "expired": "Ce lien est invalide ou a expiré.", "used": "Ce lien a déjà été utilisé."}
TEXT["ar"] = {"title": "ربط الحساب", "bank": "اختر مصرفك", "login": "تسجيل الدخول إلى", "username": "اسم المستخدم",
              "password": "الرقم السري / كلمة المرور", "sca": "اختر طريقة التحقق", "otp": "أدخل كلمة المرور لمرة واحدة",
              "otp_hint": "أرسلنا كلمة مرور لمرة واحدة إلى هاتفك.", "accounts": "اختر الحسابات", "continue": "متابعة",
              "cancel": "إلغاء", "wrong_credentials": "اسم المستخدم أو الرقم السري غير صحيح.",
              "wrong_otp": "كلمة المرور لمرة واحدة غير صحيحة.", "attempts_left": "المحاولات المتبقية",
              "choose_account": "يرجى اختيار حساب واحد على الأقل.", "stale": "هذه الخطوة لم تعد سارية.",
              "search": "ابحث عن مصرف", "done": "تم", "expired": "هذا الرابط غير صالح أو منتهي الصلاحية.",
              "used": "تم استخدام هذا الرابط من قبل."}
for _lang in ("es", "fr", "ar"):   # product screens: English until translated (the widget's default is German)
    TEXT[_lang].update({k: TEXT["en"][k] for k in _EXTRA_EN})
assert all(TEXT[lang].keys() == TEXT["en"].keys() for lang in data.LANGUAGES)


def money(amount, currency: str, lang: str) -> str:
    """A balance as the widget's language writes it (de: 1.234,56 EUR)."""
    text = f"{amount:,.2f}"
    if lang in ("de", "es", "fr"):
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", "." if lang != "fr" else " ")
    return f"{text} {currency}"


SCA_TEXT = {"not_waiting": "This synchronization is not waiting for authentication.",
            "stale": TEXT["en"]["stale"]}


def error_page(reason: str) -> str:
    """The widget's error page (expired/forged token, finished flow): the flow and its language are unknown here,
    so German first, the widget's default language."""
    return render_template("finleap_error.html", t=TEXT["de"], lang="de", rtl=False,
                           message=f"{TEXT['de'][reason]} / {TEXT['en'][reason]}")


def sca_error_page(reason: str) -> str:
    return render_template("finleap_error.html", t=TEXT["en"], lang="en", rtl=False, message=TEXT["en"][reason])


class WidgetFlow(FlowDefinition):
    """Steps of the finX widget. Form fields: flow_id, step, and per step bank_id | username, password |
    sca_method | otp | accounts (one or more); the ``cancel`` button ends the flow."""

    list_fields = ("accounts",)
    max_attempts = data.MAX_LOGIN_ATTEMPTS     # shared by login and OTP: one "login" counter

    def __init__(self, flows, service):
        super().__init__(flows)
        self.service = service

    # --- page ---------------------------------------------------------------------------------------------------
    def render(self, ctx, tenant, flow, error):
        return render_template("finleap_widget.html", **self.context(tenant, flow, error))

    def context(self, tenant: str, flow: dict, error: str | None = None) -> dict:
        """Everything the template needs for the flow's current step."""
        lang = flow["language"] if flow["language"] in TEXT else "de"
        banks = data.selectable_banks()
        out = {"flow": flow, "t": TEXT[lang], "lang": lang, "rtl": lang == "ar", "error": error, "step": flow["step"],
               "banks": banks, "bank": next((b for b in banks if b["id"] == flow.get("bank_id")), None),
               "sca_methods": data.SCA_METHODS, "attempts_left": self.attempts_left(flow, "login"), "accounts": [],
               "multi": flow["allow_multi_selection"] and flow["step"] == "accounts",
               "ongoing": flow["type"] in ONGOING_KINDS, "payment": None, "debtor": None}
        if flow["step"] in ("accounts", "debtor"):
            out["accounts"] = [self._account_choice(a, lang) for a in self._candidates(tenant, flow)]
        if flow.get("payment"):
            p = flow["payment"]
            out["payment"] = {"creditor": p["creditor"]["name"], "iban": p["creditor"]["iban"],
                              "amount": money(Decimal(str(p["amount"]["value"])), p["amount"].get("currency", "EUR"),
                                              lang), "purpose": p["purpose"], "type": p.get("type") or "SEPA transfer"}
            if flow["step"] == "confirm":
                out["debtor"] = self._debtor_label(tenant, flow)
        return out

    def _debtor_label(self, tenant: str, flow: dict) -> str:
        if flow.get("debtor_account"):
            account = self.service.sb.store.get(tenant, "finleap.accounts", flow["debtor_account"])
            return f"{account['name']} · {account['iban']}"
        chosen = [a for a in self._candidates(tenant, flow) if a.id in (flow.get("debtor_choice") or [])]
        return f"{chosen[0].name} · {chosen[0].iban}" if chosen else ""

    def _candidates(self, tenant: str, flow: dict) -> list[Account]:
        """Accounts the widget offers: filtered by ``account_types``; Depots only at the Demobank; payments:
        Giro accounts only (finleap-products.md s.3)."""
        ledger = self.service._ledger(self.service.sb.seed.get(), flow, self.flows.clock.now(tenant).date())
        offered = data.widget_accounts(ledger, depot=flow.get("bank_id") == data.DEMOBANK_ID)
        accounts = data.apply_preset_ibans(offered, flow["preset_accounts"])
        if flow["type"] in PAYMENT_KINDS:
            giros = [a for a in accounts if a.kind == "checking"]
            preset = [a for a in giros if a.iban in flow["preset_accounts"]]
            return preset or giros
        if flow["account_types"]:
            accounts = [a for a in accounts if data.ACCOUNT_TYPES[a.kind] in flow["account_types"]] or accounts[:1]
        return accounts

    @staticmethod
    def _account_choice(a: Account, lang: str) -> dict:
        return {"id": a.id, "name": a.name, "type": data.ACCOUNT_TYPES[a.kind], "iban": a.iban or a.number,
                "balance": money(a.balance, a.currency, lang)}

    # --- steps --------------------------------------------------------------------------------------------------
    def step_bank(self, tenant, flow, form):
        if form.get("bank_id") not in {b["id"] for b in data.selectable_banks()}:
            return Next.stay("stale")
        flow["bank_id"] = form["bank_id"]
        saved = self._saved_login(tenant, flow)
        if saved:   # ongoing: credentials saved for this user and bank skip the login (D-pay, [PFM-branch])
            flow.update(username=saved, login_skipped=True)
            return Next.goto(after_login_step(flow))
        return Next.goto("login")

    def _saved_login(self, tenant: str, flow: dict) -> str | None:
        if flow["type"] not in ONGOING_KINDS or not flow.get("user_id"):
            return None
        user = self.service.sb.store.get(tenant, "finleap.users", flow["user_id"]) or {}
        return (user.get("saved_credentials") or {}).get(flow["bank_id"])

    def step_login(self, tenant, flow, form):
        username, password = form.get("username", ""), form.get("password", "")
        if username == "bank_error":
            return Next.finish("error", reason="bank_error")
        demo = flow.get("bank_id") == data.DEMOBANK_ID and (username, password) == (data.DEMO_USERNAME,
                                                                                     data.DEMO_PASSWORD)
        if demo or (username in data.USERNAME_SCENARIOS and password == data.MOCK_PASSWORD):
            flow["username"] = username
            # ongoing flows: "save credentials" checkbox, hidden and on with save_secrets (finleap-products.md s.3)
            flow["save_credentials"] = flow["type"] in ONGOING_KINDS and (
                flow.get("save_secrets") or bool(form.get("save_credentials")))
            return Next.goto(after_login_step(flow))
        if self.attempt(flow, "login"):
            return Next.finish("error", reason="wrong_credentials")
        flow["last_username"] = username  # shown again: only the password is re-typed
        return Next.stay("wrong_credentials")

    def step_sca(self, tenant, flow, form):
        if form.get("sca_method") not in data.SCA_METHODS:
            return Next.stay("stale")
        flow["sca_method"] = form["sca_method"]
        return Next.goto("otp")

    def step_otp(self, tenant, flow, form):
        if form.get("otp", "").strip() != data.MOCK_OTP:
            if self.attempt(flow, "login"):
                return Next.finish("error", reason="wrong_otp")
            return Next.stay("wrong_otp")
        return Next.goto(after_auth_step(flow))

    def step_accounts(self, tenant, flow, form):
        offered = {a.id for a in self._candidates(tenant, flow)}
        chosen = [a for a in form.get("accounts", []) if a in offered]
        if not chosen:
            return Next.stay("choose_account")
        if not flow["allow_multi_selection"]:
            chosen = chosen[:1]
        return Next.finish("success", code=self.service.complete_flow(tenant, flow, chosen))

    def step_debtor(self, tenant, flow, form):
        """Payments: the debtor account (one Giro account of the bank)."""
        offered = {a.id for a in self._candidates(tenant, flow)}
        chosen = [a for a in form.get("accounts", []) if a in offered][:1]
        if not chosen:
            return Next.stay("choose_account")
        flow["debtor_choice"] = chosen
        return Next.goto("confirm")

    def step_confirm(self, tenant, flow, form):
        """Payments: the confirmation screen (creditor, amount, purpose); the bank may still reject it."""
        if flow.get("username") == PAYMENT_FAIL_USERNAME:
            return Next.finish("error", reason="payment_rejected")
        return Next.finish("success", code=self.service.complete_flow(tenant, flow, flow.get("debtor_choice") or []))

    def step_synced(self, tenant, flow, form):
        """Ongoing sync: "synchronisation successful", then the redirect (with a code, s.13 decision 3)."""
        return Next.finish("success", code=self.service.complete_flow(tenant, flow, []))

    # --- outcomes -----------------------------------------------------------------------------------------------
    def redirect_params(self, flow, outcome, result):
        # finleap.md s.5/s.8: code first (clients split on '&' and take [0]); cancel=true only on a real cancel
        state = flow["state"] or ""
        if outcome == "success":
            return [("code", result["code"]), ("state", state), ("success", "true"), ("flow_id", flow["id"])]
        params = [("state", state), ("success", "false")]
        if outcome == "cancel":
            params.append(("cancel", "true"))
        return params + [("flow_id", flow["id"])]

    def succeed(self, tenant, flow, options):
        """Control API: log in as ``username`` (a scenario, default figo01) at ``bank_id`` and pick ``accounts``
        (ids as the accounts step offers them; default the first)."""
        username = options.get("username") or flow.get("username") or data.MOCK_USERNAME
        allowed = [u for u in data.USERNAME_SCENARIOS if u not in ("bank_error", PAYMENT_FAIL_USERNAME)]
        banks = [b["id"] for b in data.selectable_banks()]
        bank_id = options.get("bank_id") or flow.get("bank_id") or banks[0]
        if bank_id not in banks:
            raise BadRequest(f"bank_id must be one of {banks}")
        if username not in allowed and not (bank_id == data.DEMOBANK_ID and username == data.DEMO_USERNAME):
            raise BadRequest(f"username must be one of {allowed} (or demo at the demobank; use outcome error for "
                             "bank_error and figo01+paymentfail)")
        flow.update(username=username, bank_id=bank_id, sca_method=flow.get("sca_method") or data.SCA_METHODS[0])
        if flow["type"] in ONGOING_KINDS:
            save = options.get("save_credentials", False)
            if not isinstance(save, bool):
                raise BadRequest("save_credentials must be a boolean")
            flow["save_credentials"] = bool(flow.get("save_secrets") or save)
        if flow["type"] == "ongoing-sync":
            return {"code": self.service.complete_flow(tenant, flow, [])}
        if flow["type"] in PAYMENT_KINDS and flow.get("debtor_account"):
            return {"code": self.service.complete_flow(tenant, flow, [])}
        offered = [a.id for a in self._candidates(tenant, flow)]
        wanted = options.get("accounts")
        if wanted is None:
            wanted = offered[:1]
        if isinstance(wanted, str):
            wanted = [wanted]
        if not isinstance(wanted, list) or not wanted or any(a not in offered for a in wanted):
            raise BadRequest(f"accounts must be a non-empty list of the offered account ids {offered}")
        if not flow["allow_multi_selection"] or flow["type"] in PAYMENT_KINDS:
            wanted = wanted[:1]
        if flow["type"] in PAYMENT_KINDS:
            flow["debtor_choice"] = wanted
        return {"code": self.service.complete_flow(tenant, flow, wanted)}

    def fail_reason(self, tenant, flow, options):
        reason = options.get("reason") or ("payment_rejected" if flow["type"] in PAYMENT_KINDS else "bank_error")
        allowed = ERROR_REASONS if flow["type"] in PAYMENT_KINDS else ERROR_REASONS[:3]
        if reason not in allowed:
            raise BadRequest(f"reason must be one of {list(allowed)}")
        return reason


class SyncScaFlow(FlowDefinition):
    """The simulated bank SCA of a held sync (flow id = sync id). Form fields: sync_id, and the button pressed:
    ``approve`` (resume the sync) or ``deny`` (fail it)."""

    id_field = "sync_id"
    step_field = None          # one step; the page predates step names and clients post only sync_id + button
    cancel_field = "deny"

    def __init__(self, flows, service):
        super().__init__(flows)
        self.service = service

    def _job(self, tenant: str, flow: dict) -> dict:
        return self.service.sync_for_page(tenant, flow["id"])

    def _page(self, flow: dict, done: str | None = None, error: str | None = None) -> dict:
        return {"t": TEXT["en"], "lang": "en", "rtl": False, "sync_id": flow["id"], "done": done,
                "error": SCA_TEXT.get(error) if error else None}

    def render(self, ctx, tenant, flow, error):
        try:
            job = self._job(tenant, flow)
        except NotFound:
            return sca_error_page("expired"), 400
        done = SCA_TEXT["not_waiting"] if job["state"] != "AWAIT_AUTH" else None
        return render_template("finleap_sca.html", **self._page(flow, done, None if done else error))

    def render_done(self, ctx, tenant, flow):
        job = self._job(tenant, flow)
        return render_template("finleap_sca.html", **self._page(flow, f"Synchronization {job['state'].lower()}."))

    def step_confirm(self, tenant, flow, form):
        if self._job(tenant, flow)["state"] != "AWAIT_AUTH":
            return Next.stay("not_waiting")
        if "approve" not in form:
            return Next.stay()
        self.service.confirm_sync_sca(tenant, flow["id"], approve=True)
        return Next.finish("success")

    def cancel(self, tenant, flow, form):
        if self._job(tenant, flow)["state"] != "AWAIT_AUTH":
            return Next.stay("not_waiting")
        self.service.confirm_sync_sca(tenant, flow["id"], approve=False)
        return Next.finish("cancel")

    def redirect_params(self, flow, outcome, result):
        return [("state", flow["state"] or "")]   # every outcome: the sync's own status tells what happened

    def complete(self, tenant, flow, outcome, options):
        """Control API: success approves, cancel denies (as the buttons), error fails the sync as a bank error."""
        job = self._job(tenant, flow)
        if job["state"] != "AWAIT_AUTH":
            raise Conflict(f"synchronization {flow['id']} is not waiting for authentication ({job['state']})")
        if outcome == "error":
            self.service.sb.jobs.fail(tenant, flow["id"], "The bank rejected the authentication.",
                                      {"code": 1000, "description": "SCA failed"})
            return self.end(tenant, flow, "error", reason=str(options.get("reason") or "bank_error"))
        self.service.confirm_sync_sca(tenant, flow["id"], approve=outcome == "success")
        return self.end(tenant, flow, outcome)


def register(flows, service) -> None:
    """Register finleap's flow definitions with core (called once per sandbox by the provider)."""
    widget = WidgetFlow(flows, service)
    for kind in KINDS:
        flows.register(PROVIDER, kind, widget)
    flows.register(PROVIDER, SCA_KIND, SyncScaFlow(flows, service))


# --- page handlers (catalogue pages finleap.widget and finleap.sync_sca) ----------------------------------------
def widget_page(ctx):
    return ctx.sandbox.flows.serve(ctx, PURPOSE, token=ctx.request.args.get("token"), error_page=error_page)


def sync_sca_page(ctx, sync_id: str):
    return ctx.sandbox.flows.serve(ctx, SCA_PURPOSE, token=ctx.request.args.get("token"), error_page=sca_error_page,
                                   flow_id=sync_id)
