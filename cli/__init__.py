"""Command-line subcommands of starter.py."""
