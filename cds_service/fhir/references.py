"""Which patient a FHIR reference names."""

from __future__ import annotations


def names_patient(reference: str | None, patient_id: str) -> bool:
    """`Patient/123`, `https://server/fhir/Patient/123` and versioned forms all name 123."""
    if reference is None:
        return False
    if reference.startswith("Patient/") and "/" not in reference[8:]:  # the usual form, quickly
        return reference[8:] == patient_id
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] == patient_id
