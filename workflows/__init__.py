"""Orchestration only: deterministic under replay. No I/O, no clock, no
asyncpg/anthropic/HTTP imports; domain logic comes through the sandbox
passthrough."""
