-- Users who logged in (`/auth`) and their refresh tokens, with the original's tables and columns
-- (`IF NOT EXISTS`: a database the original created already has them).
CREATE TABLE IF NOT EXISTS users (
    id character(36) NOT NULL PRIMARY KEY,
    creation_date timestamp with time zone DEFAULT now(),
    role_bindings json,
    refresh_tokens json
);

CREATE TABLE IF NOT EXISTS user_identifiers (
    user_id character(36) REFERENCES users(id),
    type character varying(32) NOT NULL,
    identifier_normalised_digest character(40) NOT NULL,
    identifier json,
    PRIMARY KEY (type, identifier_normalised_digest)
);
