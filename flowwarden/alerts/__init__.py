"""Alerts: the alert model, dedup windows and thresholds, and where alerts are written."""
