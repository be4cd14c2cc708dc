"""Bulk usage ingestion that bypasses workflow history (issue 16).

`store.py` writes validated rows (domain/ingest.py) straight to Postgres,
deduplicated by message id, unknown accounts quarantined; `notify.py` sends
each affected account workflow one coalesced `usage_arrived` signal per
interval; `http.py` is the Segment-compatible endpoint (`python -m ingest`);
the file path is `starter.py ingest usage` (cli/ingest.py).
"""
