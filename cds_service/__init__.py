"""A CDS Hooks service for vitamin D status and the electrolytes tied to leg cramps."""

__version__ = "0.1.0"
