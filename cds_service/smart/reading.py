"""What the SMART app reads, with the cards' reading rules: the 25(OH)D and electrolyte results the
hooks ask for (the same queries) and every vitamin D or calcium product ordered, active or not."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from ..clinical.trend import Trend, build_trend
from ..content.loader import Content
from ..content.schema import Profile
from ..fhir.client import FhirClient, FhirUnavailable
from ..fhir.facts import courses, patient_name
from ..fhir.labs import LabReader
from ..fhir.prefetch import bundle_resources, render
from ..services.queries import ELECTROLYTES_KEY, VITAMIN_D_KEY, prefetch_keys
from ..settings import Settings
from .launch import AppSession

_COURSES = "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication&_count=100"


class TrendReader:
    def __init__(self, content: Content, profile: Profile, settings: Settings) -> None:
        self._content = content
        self._profile = profile
        self._labs = LabReader(content)
        self._years = settings.smart_trend_years
        self._accept_opt_in = settings.vitd_opt_in_codes
        keys = prefetch_keys(content)
        self._queries = (keys[VITAMIN_D_KEY].template, keys[ELECTROLYTES_KEY].template, _COURSES)

    async def fetch(self, fhir: FhirClient, session: AppSession, as_of: datetime) -> tuple[Trend, str | None]:
        """The trend from the EHR's FHIR server, read with the session's token, and the patient's
        name (None when it cannot be read: the page still shows). FhirUnavailable when a search
        fails: a partial trend would hide results."""
        server = fhir.server(session.iss, session.access_token)
        deadline = fhir.deadline()
        context = {"patientId": session.patient}

        async def named() -> str | None:
            try:
                return patient_name(await fhir.get(server, render("Patient/{{context.patientId}}", context), deadline))
            except FhirUnavailable:
                return None

        name_read = asyncio.ensure_future(named())  # beside the searches, not after them
        try:
            found = await asyncio.gather(*(fhir.get(server, render(q, context), deadline) for q in self._queries))
        except BaseException:
            name_read.cancel()
            raise
        name = await name_read
        (labs, empty_labs), (more, empty_more), (medications, _) = (bundle_resources(b) for b in found)
        return self.trend(labs + more, medications, session.patient, as_of, empty_labs + empty_more), name

    def trend(
        self, labs: list[Any], medications: list[Any], patient_id: str, as_of: datetime, empty_entries: int = 0
    ) -> Trend:
        """The trend of resources already had (the demo's patients). `empty_entries`: Bundle
        entries that held no resource, counted with the results that could not be read."""
        thresholds = self._content.thresholds
        read = self._labs.read(labs, patient_id)
        return build_trend(
            read.items,
            courses(medications, patient_id, self._content.context).items,
            as_of=as_of,
            years=self._years,
            profile=self._profile,
            analytes=self._content.analytes,
            payne=thresholds.payne,
            future_allowance=timedelta(hours=thresholds.windows.future_allowance_hours),
            accept_opt_in=self._accept_opt_in,
            malformed=read.malformed + empty_entries,
        )
