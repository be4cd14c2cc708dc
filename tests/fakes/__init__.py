"""Local fake HTTP servers for the adapter tests: each checks the public API contract."""
