"""Synthetic customer ledgers shared by every provider: models, IBAN helpers and the deterministic generator."""
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
    "ACCOUNT_KINDS", "CATEGORY_KINDS", "Account", "Holding", "Ledger", "Transaction",
    "add_months", "available_markets", "available_personas", "choose_persona", "counterparty_iban",
    "generate_ledger", "market_banks", "stable_seed",
    "de_iban", "iban_check_digits", "il_iban", "is_valid_iban", "make_iban", "parse_il_iban",
]
