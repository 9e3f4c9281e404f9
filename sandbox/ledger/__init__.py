"""Synthetic customer ledgers shared by every provider: models, IBAN helpers, the deterministic generator and the
provider-neutral analytics (monthly totals, streams, balance histories, categorisation)."""
from .analytics import (
    Booking,
    Month,
    MonthlyTotals,
    RecurringStream,
    Stream,
    account_bookings,
    balance_history,
    booking_from_transaction,
    bookings_from_transactions,
    categorise,
    first_of_month,
    group_streams,
    iter_months,
    month_key,
    month_label,
    monthly_sums,
    monthly_totals,
    months_between,
    recurring_streams,
)
from .generator import (
    add_months,
    available_markets,
    available_personas,
    choose_persona,
    counterparty_iban,
    generate_ledger,
    market_banks,
    stable_seed,
)
from .iban import de_iban, iban_check_digits, il_iban, is_valid_iban, make_iban, parse_il_iban
from .models import ACCOUNT_KINDS, CATEGORY_KINDS, Account, Holding, Ledger, Transaction

__all__ = [
    "Booking", "Month", "MonthlyTotals", "RecurringStream", "Stream", "account_bookings", "balance_history",
    "booking_from_transaction", "bookings_from_transactions", "categorise", "first_of_month", "group_streams",
    "iter_months", "month_key", "month_label", "monthly_sums", "monthly_totals", "months_between",
    "recurring_streams",
    "ACCOUNT_KINDS", "CATEGORY_KINDS", "Account", "Holding", "Ledger", "Transaction",
    "add_months", "available_markets", "available_personas", "choose_persona", "counterparty_iban",
    "generate_ledger", "market_banks", "stable_seed",
    "de_iban", "iban_check_digits", "il_iban", "is_valid_iban", "make_iban", "parse_il_iban",
]
