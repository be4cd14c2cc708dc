-- 012: action items of an account (domain/actions.py), read from the notes of meaningful
-- interactions by the account workflow and written by its record_actions activity. The
-- workflow holds the truth (open/done, chases); this table is what `starter.py action list`
-- and the console read across accounts. Ids are per account ("A-1" of one account is not
-- another's): the key is (account_id, action_id) and every write names both.
CREATE TABLE IF NOT EXISTS account_actions (
    account_id       text NOT NULL,
    action_id        text NOT NULL,
    text             text NOT NULL,
    owner            text,
    owner_email      text,
    due_on           date NOT NULL,
    due_from_notes   boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    interaction_id   text NOT NULL,
    agreed_on        date NOT NULL,
    chases           integer NOT NULL DEFAULT 0,
    last_chased_on   date,
    done_on          date,
    done_by          text,
    done_note        text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, action_id)
);
CREATE INDEX IF NOT EXISTS account_actions_open_due
    ON account_actions (due_on) WHERE status = 'open';
