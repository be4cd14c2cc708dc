"""The CS console: server-rendered pages over Postgres and Temporal (`python -m console`)."""
