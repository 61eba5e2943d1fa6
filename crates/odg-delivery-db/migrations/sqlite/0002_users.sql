-- Users who logged in (`/auth`) and their refresh tokens, with the original's tables and columns.
CREATE TABLE IF NOT EXISTS users (
    id TEXT NOT NULL PRIMARY KEY,
    creation_date TEXT DEFAULT CURRENT_TIMESTAMP,
    role_bindings TEXT,
    refresh_tokens TEXT
);

CREATE TABLE IF NOT EXISTS user_identifiers (
    user_id TEXT REFERENCES users(id),
    type TEXT NOT NULL,
    identifier_normalised_digest TEXT NOT NULL,
    identifier TEXT,
    PRIMARY KEY (type, identifier_normalised_digest)
);
