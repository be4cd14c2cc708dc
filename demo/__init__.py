"""The synthetic demo portfolio: a deterministic generator (``demo.portfolio``),
a COPY-based bulk loader (``demo.load``) and a CLI (``python -m demo``)."""
