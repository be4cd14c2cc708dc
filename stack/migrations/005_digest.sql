-- 005: digests. One row per line of a person's digest: an account workflow
-- records it (add_digest_item) instead of drafting an email at once, with a
-- link to the account page that holds the detail; the digest workflow sends
-- one draft per recipient and marks the lines it sent (digest_key).
-- Urgent lines (sent_immediately) were drafted at once within the
-- recipient's daily cap; they are counted here so the cap holds across accounts.

CREATE TABLE IF NOT EXISTS digest_items (
    item_key          text PRIMARY KEY,
    recipient         text NOT NULL,
    recipient_name    text,
    account_id        text NOT NULL,
    account_name      text NOT NULL,
    category          text NOT NULL,
    headline          text NOT NULL,
    link              text,
    as_of             timestamptz NOT NULL,
    urgent            boolean NOT NULL DEFAULT false,
    sent_immediately  boolean NOT NULL DEFAULT false,
    digest_key        text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS digest_items_pending
    ON digest_items (recipient, as_of) WHERE digest_key IS NULL AND NOT sent_immediately;
CREATE INDEX IF NOT EXISTS digest_items_immediate
    ON digest_items (recipient, as_of) WHERE sent_immediately;
