"""One module per CDS service: its discovery entry, its prefetch, and its decisions."""
