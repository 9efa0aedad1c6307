"""The services this deployment offers, built once from the content and settings."""

from __future__ import annotations

from ..content.loader import Content
from ..rendering import CardRenderer
from ..settings import Settings
from .base import CdsService
from .record import RecordReader
from .vitamin_d_cramps import VitaminDCramps
from .vitamin_d_orders import VitaminDOrders


def build_services(
    content: Content,
    settings: Settings,
    trend_url: str | None = None,
    *,
    profile: str | None = None,
    silent: frozenset[str] | None = None,
) -> dict[str, CdsService]:
    """`trend_url`: the SMART app's launch URL, which the chart's cards link to; `profile` and
    `silent`: an issuer's own threshold profile and silent kinds (policies.py), else the settings'."""
    record = RecordReader(content, settings, profile)
    cards = CardRenderer(content, record.profile_name, trend_url)  # one renderer for every service
    if silent is None:
        silent = content.silent_kinds(settings.silent_kinds)  # ContentError at start for an unknown kind
    services: list[CdsService] = [
        VitaminDCramps(record, cards, silent),
        VitaminDOrders(record, cards, silent, "order-select"),
        VitaminDOrders(record, cards, silent, "order-sign"),
    ]
    return {s.id: s for s in services}
