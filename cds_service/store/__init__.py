"""The feedback store: which cards were issued, what clinicians did with them, and the report.
SQLAlchemy 2 (async) over SQLite by default or PostgreSQL; the schema is Alembic's."""
