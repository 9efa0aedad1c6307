"""The governance page at /admin: what the cards do, for the people who decide which rules run
(on with CDS_ADMIN_TOKEN). It reads the same report as `cds-service report`."""
