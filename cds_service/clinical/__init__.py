"""The clinical core: pure decisions over lab results. No IO, no HTTP, no FHIR parsing."""
