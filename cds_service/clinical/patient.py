"""Who the cards are for: the thresholds and ranges are adult ones (rulebook, "Age")."""

from __future__ import annotations

from datetime import UTC, date, datetime


def age_in_years(birth: date, as_of: datetime) -> int:
    """Whole years at the evaluation instant's UTC date: 18 on the eighteenth birthday."""
    today = as_of.astimezone(UTC).date()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def is_minor(birth: date | None, as_of: datetime, adult_age: int) -> bool:
    """Under the adult age; without a birth date the patient is treated as an adult (and the cards
    say the age is unknown)."""
    return birth is not None and age_in_years(birth, as_of) < adult_age
