"""The FHIR edge: reading prefetched (and later fetched) resources into the core's terms."""
