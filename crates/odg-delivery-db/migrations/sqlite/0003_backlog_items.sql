-- odg's own table (the original keeps backlog items as Kubernetes custom resources); see the
-- PostgreSQL migration.
CREATE TABLE IF NOT EXISTS odg_backlog_items (
    name TEXT NOT NULL PRIMARY KEY,
    uid TEXT NOT NULL,
    service TEXT NOT NULL,
    priority INTEGER NOT NULL,
    item_timestamp TEXT NOT NULL,
    spec TEXT NOT NULL,
    creation_timestamp TEXT NOT NULL,
    claimed TEXT,
    claimed_by TEXT,
    claimed_at TEXT
);

CREATE INDEX IF NOT EXISTS odg_backlog_items_queue
    ON odg_backlog_items (service, priority DESC, item_timestamp, name);
