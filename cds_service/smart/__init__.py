"""The SMART on FHIR app the cards link to: the trend behind them (docs/smart-app.md)."""
