"""The services this deployment offers, built once from the content and settings."""

from __future__ import annotations

from ..cards import CardRenderer
from ..content import Content
from ..settings import Settings
from .base import CdsService
from .record import RecordReader
from .vitamin_d_cramps import VitaminDCramps
from .vitamin_d_orders import VitaminDOrders


def build_services(content: Content, settings: Settings) -> dict[str, CdsService]:
    record = RecordReader(content, settings)
    cards = CardRenderer(content, record.profile)  # one renderer for every service
    services: list[CdsService] = [
        VitaminDCramps(record, cards),
        VitaminDOrders(record, cards, "order-select"),
        VitaminDOrders(record, cards, "order-sign"),
    ]
    return {s.id: s for s in services}
