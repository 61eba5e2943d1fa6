-- The original delivery service's tables, the same logical schema as on PostgreSQL with text
-- columns (SQLite would give `json` and `date` columns numeric affinity): JSON as its text,
-- timestamps and dates in ISO 8601. Created only when absent.
CREATE TABLE IF NOT EXISTS artefact_metadata (
    id TEXT NOT NULL PRIMARY KEY,
    creation_date TEXT DEFAULT CURRENT_TIMESTAMP,
    type TEXT,
    component_name TEXT,
    component_version TEXT,
    artefact_kind TEXT,
    artefact_name TEXT,
    artefact_version TEXT,
    artefact_type TEXT,
    artefact_extra_id_normalised TEXT,
    artefact_extra_id TEXT,
    meta TEXT,
    data TEXT,
    data_key TEXT,
    datasource TEXT,
    referenced_type TEXT,
    discovery_date TEXT,
    allowed_processing_time TEXT
);

CREATE INDEX IF NOT EXISTS ix_artefact_metadata_component_name
    ON artefact_metadata (component_name, component_version, type, artefact_type);
CREATE INDEX IF NOT EXISTS odg_artefact_metadata_siblings
    ON artefact_metadata (component_name, artefact_name, type, datasource);

CREATE TABLE IF NOT EXISTS cache (
    id TEXT NOT NULL PRIMARY KEY,
    descriptor TEXT,
    creation_date TEXT DEFAULT CURRENT_TIMESTAMP,
    last_update TEXT DEFAULT CURRENT_TIMESTAMP,
    delete_after TEXT,
    keep_until TEXT,
    last_read TEXT,
    read_count INTEGER,
    revision INTEGER,
    costs INTEGER,
    size INTEGER,
    value BLOB
);

CREATE TABLE IF NOT EXISTS blob_store (
    digest TEXT NOT NULL PRIMARY KEY,
    creation_date TEXT,
    size INTEGER,
    mime_type TEXT,
    ref TEXT
);
