"""Delivery channels: Notion, Gmail (drafts only), Slack, the local outbox and the event bus.

Each module does one channel's I/O and maps its failures to Temporal's
terms with ``errors.retryable`` (429, 5xx, timeouts, connection errors) or
``errors.rejected`` (400/401/403/404: a message naming the channel and the
fix, never retried). ``activities/deliveries.py`` picks the channel.
"""
