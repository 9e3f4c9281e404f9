"""Open Finance data rules (open_finance.md sections 10-11): categories, test identifiers, provider ids.

Pure functions and tables: the ledger's neutral categories mapped to the provider's taxonomy, and the published
fake psuIds with their fixed account numbers and outcomes.
"""
from __future__ import annotations

from dataclasses import replace

from ...ledger.iban import il_iban
from ...ledger.models import Ledger

SANDBOX_PROVIDER = "open-finance-sandbox"
OK_STATUSES = ("ACTIVE", "COMPLETED")

# Ledger category -> (main, sub) of docs.open-finance.ai/docs/transaction-categories (section 10).
CATEGORIES = {
    "salary": ("SALARY", "SALARY_OTHER"), "pension": ("PENSION", "PENSION_OTHER"),
    "benefits": ("BENEFITS", "BENEFITS_OTHER"), "freelance": ("OTHER", "OTHER"),
    "interest_income": ("FINANCE", "FINANCE_OTHER"), "refund": ("REIMBURSEMENTS", "REIMBURSEMENTS_OTHER"),
    "transfer_in": ("OTHER", "OTHER"),
    "rent": ("HOUSEHOLD_&_SERVICES", "RENT"), "mortgage": ("HOUSEHOLD_&_SERVICES", "MORTGAGE"),
    "utilities": ("HOUSEHOLD_&_SERVICES", "UTILITIES"), "communications": ("HOUSEHOLD_&_SERVICES", "COMMUNICATIONS"),
    "insurance": ("HOUSEHOLD_&_SERVICES", "INSURANCE_&_FEES"), "subscriptions": ("HOUSEHOLD_&_SERVICES", "SERVICES"),
    "loan_repayment": ("FINANCE", "LOANS"), "education": ("OTHER", "EDUCATION"),
    "groceries": ("FOOD_&_DRINKS", "GROCERIES"), "restaurants": ("FOOD_&_DRINKS", "RESTAURANT"),
    "coffee": ("FOOD_&_DRINKS", "COFFEE_&_SNACKS"), "fuel": ("TRANSPORT", "CAR_&_FUEL"),
    "public_transport": ("TRANSPORT", "PUBLIC_TRANSPORT"), "taxi": ("TRANSPORT", "TAXI"),
    "shopping": ("SHOPPING", "CLOTHES_&_ACCESSORIES"), "electronics": ("SHOPPING", "ELECTRONICS"),
    "leisure": ("LEISURE", "CULTURE_&_EVENTS"), "travel": ("LEISURE", "VACATION"),
    "health": ("HEALTH_&_BEAUTY", "HEALTHCARE"), "pharmacy": ("HEALTH_&_BEAUTY", "PHARMACY"),
    "cash_withdrawal": ("OTHER", "CASH_WITHDRAWALS"), "fees": ("FINANCE", "FEES"), "card_fee": ("FINANCE", "FEES"),
    "interest_charge": ("FINANCE", "INTEREST_RATES"), "card_settlement": ("FINANCE", "CREDIT_CARD_EXPENSES"),
    "savings_transfer": ("FINANCE", "SAVINGS"), "securities_purchase": ("FINANCE", "CAPITAL_MARKET"),
}

# Income categories that count as regular income sources; classificationSource values (report guide: SALARY).
REGULAR_INCOME = {"salary": "SALARY", "pension": "PENSION", "benefits": "BENEFITS"}

# Bank of Israel numbering (open_finance.md section 10) -> provider id.
BANK_IDS = {"04": "yahav", "10": "leumi", "11": "discount", "12": "hapoalim", "13": "union", "14": "otsarHahayal",
            "17": "mercantile", "18": "one-zero", "20": "mizrahi", "26": "ubank", "31": "beinleumi", "46": "masad",
            "52": "pagi", "54": "jerusalem"}

# docs.open-finance.ai/docs/testing-with-fake-bank-data (section 11): psuId -> (account BBANs, status).
TEST_PSU_IDS: dict[str, tuple[tuple[str, ...], str]] = {
    "043510023": (("31-019-29114", "31-021-731722", "31-050-5703"), "ACTIVE"),
    "321547416": (("31-114-435694", "31-124-272604", "31-064-406821"), "ACTIVE"),
    "1772268": (("11-002-11440386", "11-002-152384687", "11-002-166426662"), "ACTIVE"),
    "8332884": (("11-004-78969958", "11-005-145532722", "11-014-190035856"), "ACTIVE"),
    "058766718": (("12-615-32449", "12-615-343779", "12-627-230522"), "ACTIVE"),
    "038506499": (("12-628-667746", "12-630-119945", "12-630-435510"), "ACTIVE"),
    "520023185": (("10-882-43487887", "10-940-8924227", "10-985-3816794"), "ACTIVE"),
    "321547796": (("10-988-3750659", "10-922-2084286", "10-985-3816794"), "ACTIVE"),
    "321547804": (("20-574-308223", "20-461-336809", "20-723-648357"), "ACTIVE"),
    "321547812": (("20-443-113222", "20-433-299099", "20-477-433289"), "ACTIVE"),
    "321547820": (("04-130-158895", "04-141-43814", "04-118-90291"), "ACTIVE"),
    "321547853": (("04-124-317146", "04-125-193440", "04-124-318436"), "ACTIVE"),
    "050299338": ((), "REJECTED"),
    "064837123": ((), "PARTIALLY_AUTHORIZED"),
    "316159011": ((), "ERROR"),
    "316159029": ((), "FETCHING_ERROR"),
    "316159052": ((), "SUSPENDED_BY_PROVIDER"),
}

# Sandbox-only customerIds for the financial report (open_finance.md section 7: FAILED only via a scenario switch).
SCENARIO_JOB_FAILS = "sandbox-job-fails"
SCENARIO_INTERNAL_ERROR = "sandbox-internal-error"

SCENARIOS = [
    *({"kind": "psuId", "value": psu, "effect": f"connection {status}" + (f", accounts {', '.join(bbans)}" if bbans else ""),
       "source": "docs.open-finance.ai/docs/testing-with-fake-bank-data"} for psu, (bbans, status) in TEST_PSU_IDS.items()),
    {"kind": "customerId", "value": "<any test psuId above>", "effect": "the auto-provisioned connection of a "
     "financial report uses it as psuId: ACTIVE ids give those accounts, error ids give 400 No active connections found"},
    {"kind": "customerId", "value": SCENARIO_JOB_FAILS, "effect": "report job ends FAILED {status, message}"},
    {"kind": "customerId", "value": SCENARIO_INTERNAL_ERROR,
     "effect": "create_financial_report answers 500 {message: Something went wrong, code: INTERNAL_ERROR}"},
]


def connection_status(psu_id: str, refresh_data: bool = False) -> str:
    """Outcome of a consent for ``psu_id`` on the sandbox provider; ACTIVE rows are COMPLETED when one-time."""
    status = TEST_PSU_IDS.get(psu_id, ((), "ACTIVE"))[1]
    if status == "ACTIVE" and not refresh_data:
        return "COMPLETED"  # (inferred) section 11: one-time connections end COMPLETED
    return status


def apply_test_accounts(ledger: Ledger, psu_id: str) -> Ledger:
    """Give the ledger's first non-card accounts the documented BBANs of a published test psuId."""
    bbans = TEST_PSU_IDS.get(psu_id, ((), ""))[0]
    slots = [a for a in ledger.accounts if a.kind != "credit_card"]
    for account, bban in zip(slots, dict.fromkeys(bbans)):
        bank, branch, number = bban.split("-")
        index = ledger.accounts.index(account)
        ledger.accounts[index] = replace(account, number=bban, bank_code=bank, branch=branch,
                                         bank_id=BANK_IDS.get(bank, account.bank_id),
                                         iban=il_iban(int(bank), int(branch), int(number)))
    return ledger


def provider_id(account) -> str:
    """Provider id of an account: the bank's id, or the card issuer's for cards (section 10 provider list)."""
    return BANK_IDS.get(account.bank_code.zfill(2), account.bank_id) if account.kind != "credit_card" else account.bank_id


def split_bban(number: str) -> tuple[str, str, str]:
    parts = number.split("-")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else ("", "", number)
