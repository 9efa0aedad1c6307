"""Lab results as cards show them: every text formatted by the service, none raw FHIR."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ResultView:
    """A lab result as cards show it; every text is formatted by the service, none is raw FHIR."""

    name: str
    code: str
    shown: str  # as the laboratory reported it, then converted: "45 nmol/L (18 ng/mL)"
    short: str  # as the laboratory reported it: "45 nmol/L"
    date: str
    proxy: bool
    status_unknown: bool
    problem: str | None
    old: bool = False
    flag: str | None = None  # the laboratory's flag: "H (high)"
    unit_unreported: bool = False
    note: str = ""  # the data table's Note column, worded by catalogue.yaml's result_notes


def date_text(when: datetime | None) -> str:
    return when.date().isoformat() if when is not None else "undated"


@dataclass(frozen=True)
class FindingView:
    name: str
    abbreviation: str
    shown: str
    short: str
    date: str
    flag: str
    critical: bool
    range: str
    range_from_laboratory: bool
    total: str | None  # the total calcium a Payne correction started from
    albumin: str | None
    superseded_by: ResultView | None  # a newer result that could not be interpreted
    electrolyte: str = ""
    by_laboratory: bool = False  # abnormal by the laboratory's flag alone; the value could not be read
    lab_flag: str | None = None  # "critically high (HH)"
    lab_flag_code: str | None = None
    problem: str | None = None
    estimate: str | None = None  # a corrected calcium too unreliable to decide, shown beside the measured
    medicines: tuple[str, ...] = ()  # active medicines known to move it this way
