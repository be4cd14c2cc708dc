"""Fault drills: tests that break things on purpose (issue 6).

Each drill kills or degrades one part of the running system (the worker, the
Temporal server, Postgres, the model endpoint, the inputs) and asserts that
nothing was lost and nothing was done twice.
"""
