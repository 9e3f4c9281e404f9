"""Open Finance hosted pages: the report PDF download (catalogue page open_finance.financial_report_pdf), the consent
journey (open_finance.connect_journey, the ``connectUrl``) and the simulated bank SCA page (open_finance.bank_sca,
the ``scaOAuth`` of open_banking_init). Journey and bank page are flows on core/flows.py (connections.py): plain
form posts, iframe-friendly, signed expiring tokens, completable through ``POST /_sandbox/flows/<id>/complete``."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, render_template

from ...core.dispatch import asset_url, open_presigned
from ...core.operations import page_methods
from . import data
from .connections import BANK_PURPOSE, JOURNEY_PURPOSE, _lang
from .service import PDF_LINK


@page_methods("GET")
def financial_report_pdf(ctx, jobId: str):
    """A pre-signed link, like the provider's S3 asset URL (catalogue ``real_url`` on open-finance-assets.s3):
    no bearer token, but a missing, tampered or expired signature gets S3's 403 XML (AccessDenied /
    SignatureDoesNotMatch / "Request has expired"), checked on the link tenant's sandbox clock."""
    signed, denied = open_presigned(ctx, PDF_LINK)
    if denied:
        return denied
    return Response(ctx.service.financial_report_pdf(jobId, signed["tenant"]), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="report-{jobId}.pdf"',
                             "Cache-Control": "private, max-age=0"})


def error_page(reason: str, lang: str = "he") -> str:
    """Forged, expired or spent links (status 400, never a redirect): both languages, the flow is unknown."""
    return render_template("open_finance_error.html", t=data.TEXT[lang], lang=lang, rtl=lang == "he",
                           message=f"{data.TEXT['he'][reason]} / {data.TEXT['en'][reason]}")


def page_context(ctx, flow: dict, **values) -> dict:
    """What the journey templates need: texts in the flow's language (Hebrew right-to-left), the offered providers,
    the locked psuId, the language links (only when the connection left the language to the user)."""
    requested = ctx.request.args.get("lang") or ctx.request.form.get("language")
    lang = _lang(flow, requested)
    token = ctx.request.args.get("token") or ""
    offered = []
    for pid in flow.get("providers") or [flow.get("provider_id")]:
        p = data.provider(pid) or {"providerFriendlyId": pid, "name": pid, "nameNativeLanguage": pid, "image": ""}
        offered.append({"id": pid, "name": p["nameNativeLanguage"] if lang == "he" else p["name"],
                        "image": asset_url(ctx, p["image"]) if p["image"] else ""})
    chosen = next((p for p in offered if p["id"] == flow.get("provider_id")), None)
    service = ctx.service
    doc = service._doc(flow["tenant_id"], flow["user_id"], flow.get("connection_id") or flow["id"])
    expiry = (doc or {}).get("expiryDate") or ""
    t = data.TEXT[lang]
    return {"flow": flow, "t": t, "lang": lang, "rtl": lang == "he", "step": flow.get("step"),
            "providers": offered, "chosen": chosen, "connection": doc,
            "org": (doc or {}).get("organization", {}).get("name", ""), "until": expiry[:10] or "—",
            "choose_language": not flow.get("language") and flow.get("kind") == "journey",
            "lang_links": {code: "?" + urlencode({"token": token, "lang": code}) for code in data.LANGUAGES},
            "psu_locked": flow.get("psu_locked"), "iframe": bool(flow.get("iframe")),
            "status": (doc or {}).get("status"), **values}


def connect_journey(ctx, connectionId: str):
    """GET/POST /journey/<connectionId>?token=...: the consent journey of one connection."""
    return ctx.sandbox.flows.serve(ctx, JOURNEY_PURPOSE, token=ctx.request.args.get("token"), error_page=error_page,
                                   flow_id=connectionId)


def bank_sca(ctx, connectionId: str):
    """GET/POST /journey/<connectionId>/bank?token=...: the simulated bank consent (headless open-banking path)."""
    return ctx.sandbox.flows.serve(ctx, BANK_PURPOSE, token=ctx.request.args.get("token"), error_page=error_page,
                                   flow_id=f"{connectionId}.bank")
