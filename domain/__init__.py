"""Pure, deterministic Customer Success logic: no I/O, no clock reads.

Every function that depends on time takes ``as_of`` and never looks past it.
Workflows import this package through the sandbox passthrough; activities and
the CLI import it directly.
"""
