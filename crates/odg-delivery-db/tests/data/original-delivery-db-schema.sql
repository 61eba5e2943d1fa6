-- Copied from the shared reference (original-delivery-db-schema.sql): the delivery DB schema as the
-- original delivery service (open-component-model/delivery-service, commit fb3882f5) creates it with
-- its SQLAlchemy models, dumped with pg_dump --schema-only. Kept here so that tests on a clean clone
-- can create an original database. Not odg's code: do not edit.
-- The delivery DB schema that the original delivery service (open-component-model/delivery-service at commit fb3882f5)
-- creates with its SQLAlchemy models (src/deliverydb/model.py), dumped from PostgreSQL 15 with pg_dump --schema-only.
-- An existing installation's database looks like this; odg must be able to run on it (see the issue on existing deployments).


CREATE TABLE public.artefact_metadata (
    id character(32) NOT NULL,
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

CREATE TABLE public.blob_store (
    digest character varying(256) NOT NULL,
    creation_date timestamp with time zone,
    size integer,
    mime_type character varying(512),
    ref character varying(1024)
);

CREATE TABLE public.cache (
    id character(32) NOT NULL,
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

CREATE TABLE public.user_identifiers (
    user_id character(36),
    type character varying(32) NOT NULL,
    identifier_normalised_digest character(40) NOT NULL,
    identifier json
);

CREATE TABLE public.users (
    id character(36) NOT NULL,
    creation_date timestamp with time zone DEFAULT now(),
    role_bindings json,
    refresh_tokens json
);

ALTER TABLE ONLY public.artefact_metadata
    ADD CONSTRAINT artefact_metadata_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.blob_store
    ADD CONSTRAINT blob_store_pkey PRIMARY KEY (digest);

ALTER TABLE ONLY public.cache
    ADD CONSTRAINT cache_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.user_identifiers
    ADD CONSTRAINT user_identifiers_pkey PRIMARY KEY (type, identifier_normalised_digest);

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX ix_artefact_metadata_component_name ON public.artefact_metadata USING btree (component_name, component_version, type, artefact_type);

ALTER TABLE ONLY public.user_identifiers
    ADD CONSTRAINT user_identifiers_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


