-- Artefact metadata (findings, scan infos, rescorings, ...). Text columns on both backends: the
-- service reads and writes every column through one SQL dialect (sqlx's Any driver), and JSON is
-- never queried inside the database.
CREATE TABLE artefact_metadata (
    id TEXT PRIMARY KEY,
    creation_date TEXT,
    last_update_ms BIGINT,
    type TEXT NOT NULL,
    datasource TEXT NOT NULL,
    component_name TEXT,
    component_version TEXT,
    artefact_kind TEXT,
    artefact_name TEXT,
    artefact_version TEXT,
    artefact_type TEXT,
    artefact_extra_id_normalised TEXT NOT NULL,
    artefact TEXT NOT NULL,
    meta TEXT NOT NULL,
    data TEXT NOT NULL,
    data_key TEXT,
    referenced_type TEXT,
    discovery_date TEXT,
    allowed_processing_time TEXT
);

CREATE INDEX artefact_metadata_component_type
    ON artefact_metadata (component_name, component_version, type, artefact_type);
CREATE INDEX artefact_metadata_siblings
    ON artefact_metadata (component_name, artefact_name, type, datasource);
