"""Error mapping shared by the channels, and secret redaction.

A secret (API key, token, webhook URL) must never reach a log line, an
exception message (which Temporal stores in history), the deliveries table or
an outbox file: every message built from a library error goes through
``redact`` first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from email.utils import parsedate_to_datetime

from temporalio.exceptions import ApplicationError

# Token shapes redacted even when we were not told the value.
_PATTERNS = [
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{6,}"),
    re.compile(r"(?i)hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    re.compile(r"\b(?:secret|ntn)_[A-Za-z0-9]{10,}"),
    re.compile(r"\bsk-ant-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bya29\.[A-Za-z0-9._-]{8,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
]


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    for s in secrets:
        if s and len(s) >= 6:
            text = text.replace(s, "***")
    for p in _PATTERNS:
        text = p.sub("***", text)
    return text


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped at 10 minutes."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            from datetime import UTC, datetime

            secs = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(secs, 600.0))


def retryable(channel: str, message: str, retry_after: float | None = None) -> ApplicationError:
    """Temporal retries this with its backoff (or after Retry-After when the server gave one)."""
    return ApplicationError(
        f"{channel}: {message}",
        type=f"{channel}Retryable",
        non_retryable=False,
        next_retry_delay=timedelta(seconds=retry_after) if retry_after else None,
    )


def rejected(channel: str, message: str) -> ApplicationError:
    """Retrying cannot help: the message names the channel and the fix."""
    return ApplicationError(f"{channel}: {message}", type=f"{channel}Rejected", non_retryable=True)


def by_status(
    channel: str,
    status: int,
    detail: str,
    fixes: Mapping[int, str],
    retry_after: float | None = None,
) -> ApplicationError:
    """The common mapping: 408/409/425/429/5xx retry; other 4xx are rejected with their fix."""
    if status in (408, 409, 425, 429) or status >= 500:
        return retryable(channel, f"{status} {detail}".strip(), retry_after)
    fix = fixes.get(status, "the request was rejected; fix it and start the delivery again")
    return rejected(channel, f"{status} {detail}: {fix}".strip())


class RedactingFilter(logging.Filter):
    """Rewrites log records of HTTP client libraries so no secret reaches a log line.

    httpx logs every request URL at INFO; a Slack webhook URL *is* a secret.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "httpx2",
    "notion_client",
    "googleapiclient",
    "google_auth_httplib2",
    "anthropic",
    "slack_sdk",  # the Slack clients are handed this logger (SLACK_LOGGER)
)


def install_log_redaction(secrets: Iterable[str | None]) -> None:
    """Attach (once per logger) a filter that redacts these secrets and known token shapes."""
    secrets = list(secrets)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, RedactingFilter)), None)
        if existing is None:
            logger.addFilter(RedactingFilter(secrets))
        else:
            existing.secrets = list({*existing.secrets, *(s for s in secrets if s)})
