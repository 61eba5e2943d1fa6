-- The content of `/blob` blobs on SQLite (PostgreSQL keeps it in large objects, as the original
-- does): fixed-size chunks (256 KiB) keyed by `blob_store.ref`, so that an upload and a download
-- move one chunk per statement and a range read touches only the chunks it needs. A row of its
-- own per chunk rather than one BLOB column: SQLite reads a BLOB's overflow pages from its start
-- up to any offset, and sqlx has no incremental BLOB I/O, so one value would be bound whole.
CREATE TABLE IF NOT EXISTS odg_blob_chunk (
    ref TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (ref, seq)
);
