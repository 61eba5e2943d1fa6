-- odg's own table (the original keeps backlog items as Kubernetes custom resources): one row per
-- item, named as the original names the resource (`<service>-<BLAKE2s-16 of the artefact key>`).
-- The spec is the original's JSON as text; priority and timestamp are copied out of it so that
-- the claim order (priority high to low, then oldest) is an index scan.
CREATE TABLE IF NOT EXISTS odg_backlog_items (
    name text NOT NULL PRIMARY KEY,
    uid text NOT NULL,
    service text NOT NULL,
    priority bigint NOT NULL,
    item_timestamp text NOT NULL,
    spec text NOT NULL,
    creation_timestamp text NOT NULL,
    claimed text,
    claimed_by text,
    claimed_at text
);

CREATE INDEX IF NOT EXISTS odg_backlog_items_queue
    ON odg_backlog_items (service, priority DESC, item_timestamp, name);
