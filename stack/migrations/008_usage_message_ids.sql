-- Bulk usage ingestion (issue 16): every usage row can carry the sender's message id
-- (Segment's messageId, a file row's message_id, or `<batch_id>:<n>` for the `usage`
-- signal), unique per account, so a re-sent message is written once. Existing rows keep
-- a NULL message id (NULLs never collide), so nothing is rewritten.
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS message_id text;
CREATE UNIQUE INDEX IF NOT EXISTS usage_events_message ON usage_events (account_id, message_id);

-- Events for an account the system does not know: held here and reported, never dropped
-- and never written to another account. Re-sent messages are held once.
CREATE TABLE IF NOT EXISTS usage_quarantine (
    account_id  text NOT NULL,
    message_id  text NOT NULL,
    user_id     text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_type  text NOT NULL,
    quantity    numeric NOT NULL,
    source      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, message_id)
);
