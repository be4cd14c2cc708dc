"""The runtime around the workflows: settings, the embedded Postgres and
Temporal dev server, and schema migrations. Nothing here is imported by
workflow code."""
