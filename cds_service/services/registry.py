"""The services this deployment offers, built once from the content and settings."""

from __future__ import annotations

from ..content import Content
from ..settings import Settings
from .base import CdsService
from .record import RecordReader
from .vitamin_d_cramps import VitaminDCramps


def build_services(content: Content, settings: Settings) -> dict[str, CdsService]:
    record = RecordReader(content, settings)
    services: list[CdsService] = [VitaminDCramps(record)]
    return {s.id: s for s in services}
