"""Running a scan: batches in, compiled conditions, Python only where needed, alerts out."""
