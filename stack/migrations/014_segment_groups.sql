-- Segment `group` calls (issue 16): which account (group) a user belongs to, so a `track`
-- call without `context.groupId` (Segment's default for most sources) still names its
-- account. The latest call by its timestamp wins; a user maps to one account at a time.
CREATE TABLE IF NOT EXISTS segment_user_groups (
    user_id    text PRIMARY KEY,
    account_id text NOT NULL,
    linked_at  timestamptz NOT NULL
);
