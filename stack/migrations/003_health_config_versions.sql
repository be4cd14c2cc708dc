-- Health configs a person adopted (`starter.py config adopt|rollback`), and who did it when.
-- The config in force is the one named by the latest adoption; version NULL means "the
-- environment's config" (VIM_HEALTH_CONFIG over the shipped defaults). Rows are never
-- updated or deleted: the history of adoptions is the audit trail.
CREATE TABLE health_config_versions (
    version    text PRIMARY KEY CHECK (length(version) BETWEEN 1 AND 200),
    config     jsonb NOT NULL,
    source     text CHECK (length(source) <= 1000),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE health_config_adoptions (
    id         bigserial PRIMARY KEY,
    version    text REFERENCES health_config_versions (version),
    action     text NOT NULL CHECK (action IN ('adopt', 'rollback')),
    adopted_by text NOT NULL CHECK (length(adopted_by) BETWEEN 1 AND 200),
    adopted_at timestamptz NOT NULL DEFAULT now(),
    note       text CHECK (length(note) <= 2000)
);
