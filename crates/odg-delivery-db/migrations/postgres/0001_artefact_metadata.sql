-- The original delivery service's tables with its exact column types, created only when absent:
-- on a database the original created, they exist already and stay as they are (odg never alters,
-- drops or rewrites them). Artefact metadata: findings, scan infos, rescorings, ...
CREATE TABLE IF NOT EXISTS artefact_metadata (
    id character(32) NOT NULL PRIMARY KEY,
    creation_date timestamp with time zone DEFAULT now(),
    type character varying(64),
    component_name character varying(256),
    component_version character varying(64),
    artefact_kind character varying(32),
    artefact_name character varying(128),
    artefact_version character varying(64),
    artefact_type character varying(64),
    artefact_extra_id_normalised character varying(1024),
    artefact_extra_id json,
    meta json,
    data json,
    data_key character(40),
    datasource character varying(64),
    referenced_type character varying(64),
    discovery_date date,
    allowed_processing_time character varying(16)
);

-- The original's own index (same name: an original database has it already).
CREATE INDEX IF NOT EXISTS ix_artefact_metadata_component_name
    ON artefact_metadata (component_name, component_version, type, artefact_type);
-- odg's addition: the siblings a write reads (discovery-date reuse, upserts).
CREATE INDEX IF NOT EXISTS odg_artefact_metadata_siblings
    ON artefact_metadata (component_name, artefact_name, type, datasource);

-- The original's cache and blob tables (odg's later routes use them).
CREATE TABLE IF NOT EXISTS cache (
    id character(32) NOT NULL PRIMARY KEY,
    descriptor json,
    creation_date timestamp with time zone DEFAULT now(),
    last_update timestamp with time zone DEFAULT now(),
    delete_after timestamp with time zone,
    keep_until timestamp with time zone,
    last_read timestamp with time zone,
    read_count integer,
    revision integer,
    costs integer,
    size integer,
    value bytea
);

CREATE TABLE IF NOT EXISTS blob_store (
    digest character varying(256) NOT NULL PRIMARY KEY,
    creation_date timestamp with time zone,
    size integer,
    mime_type character varying(512),
    ref character varying(1024)
);
