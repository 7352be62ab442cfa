"""Alerts: the model, dedup windows and thresholds (``grouping``), the store, the file formats
(``formats/``) and the one delivery path to every sink (``delivery``)."""
