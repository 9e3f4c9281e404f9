"""IBAN helpers: known vectors, tampering, and round-trips for the IL / DE layouts."""
from hypothesis import given, settings, strategies as st

from sandbox.ledger.iban import de_iban, iban_check_digits, il_iban, is_valid_iban, make_iban, parse_il_iban


def test_known_vectors_are_valid():
    assert is_valid_iban("IL060311140000000436003")
    assert is_valid_iban("DE89370400440532013000")
    assert is_valid_iban("DE89 3704 0044 0532 0130 00")
    assert is_valid_iban("GB82WEST12345698765432")


def test_builders_reproduce_known_vectors():
    assert il_iban(31, 114, 436003) == "IL060311140000000436003"
    assert il_iban("31", "114", "436003") == "IL060311140000000436003"
    assert de_iban("37040044", "532013000") == "DE89370400440532013000"
    assert make_iban("DE", "370400440532013000") == "DE89370400440532013000"
    assert iban_check_digits("IL", "0311140000000436003") == "06"


def test_tampered_ibans_are_invalid():
    assert not is_valid_iban("IL070311140000000436003")   # check digits
    assert not is_valid_iban("IL060311140000000436004")   # account digit
    assert not is_valid_iban("DE89370400440532013001")
    assert not is_valid_iban("DE8937040044053201300")     # too short for DE
    assert not is_valid_iban("")
    assert not is_valid_iban("not an iban")
    assert not is_valid_iban(None)


def test_parse_il_iban():
    assert parse_il_iban("IL060311140000000436003") == (31, 114, 436003)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 99), st.integers(0, 999), st.integers(0, 10 ** 13 - 1))
def test_il_iban_round_trip(bank, branch, account):
    iban = il_iban(bank, branch, account)
    assert len(iban) == 23 and is_valid_iban(iban)
    assert parse_il_iban(iban) == (bank, branch, account)


@settings(max_examples=200, deadline=None)
@given(st.integers(10 ** 7, 10 ** 8 - 1), st.integers(0, 10 ** 10 - 1), st.integers(4, 21), st.integers(0, 9))
def test_de_iban_valid_and_single_digit_errors_detected(blz, account, pos, delta):
    iban = de_iban(blz, account)
    assert len(iban) == 22 and is_valid_iban(iban)
    assert iban[4:12] == f"{blz:08d}" and iban[12:] == f"{account:010d}"
    if delta:
        digit = (int(iban[pos]) + delta) % 10
        assert not is_valid_iban(iban[:pos] + str(digit) + iban[pos + 1:])
