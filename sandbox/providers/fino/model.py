"""finoOS storage shared by every area: users, accounts, transactions, bank logins and analysis runs.

All collections live in the request's tenant (``ctx.tenant``: the client's tenant, or its ``TenantID`` sub-tenant,
fino.md section 4), so users are invisible across tenants by construction. Accounts are scoped by user, transactions
by (user, account), one document per key (core Collection, escaped keys).
"""
from __future__ import annotations


from ...core.errors import NotFound

PROVIDER = "fino"
USERS, ACCOUNTS, TRANSACTIONS, BANK_LOGINS = (f"{PROVIDER}.{c}" for c in
                                              ("users", "accounts", "transactions", "bank_logins"))
ANALYSIS = "fino.analysis"   # core runs kind: one analysis run per user (section 6); part 2 adds results


def users(ctx):
    return ctx.sandbox.collection(ctx.tenant, USERS, id_field="userID")


def load_user(ctx, user_id: str) -> dict:
    """The live user of this tenant, or 404 {type: notFound}: another tenant's user and a user past its
    ``expiresIn`` are not found either (the platform area owns the expiry rule)."""
    return ctx.service.live_user(ctx, user_id)


def accounts(ctx, user_id: str):
    return ctx.sandbox.collection(ctx.tenant, ACCOUNTS, scope=user_id, id_field="accountId")


def transactions(ctx, user_id: str, account_id: str):
    return ctx.sandbox.collection(ctx.tenant, TRANSACTIONS, scope=(user_id, account_id), id_field="transactionId")


def bank_logins(ctx, user_id: str):
    return ctx.sandbox.collection(ctx.tenant, BANK_LOGINS, scope=user_id, id_field="bankLoginId")


def load_account(ctx, user_id: str, account_id: str) -> dict:
    return accounts(ctx, user_id).load(account_id, NotFound("Account not found"))
