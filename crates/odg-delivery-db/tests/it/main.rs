//! The delivery DB against the real PostgreSQL (a database of its own per test) and the SQLite
//! default (a file per test): every test runs on both backends.
//!
//! - `blobs`: the blob store's content in chunks or large objects, ranges, all-or-nothing uploads.
//! - `writes`: the reference examples' ids, update vs. insert, discovery-date reuse, all-or-nothing.
//! - `queries`: the matching rules with null fields and `none_ok`.
//! - `schema`: the original's schema migrated as it is, column types and limits, the pre-release schema refused.
//! - `pool`: a busy pool answers "unavailable" within the acquire timeout; a database down at
//!   start-up or lost later answers "unreachable" and is reached again in the background.

mod blobs;
mod pool;
mod queries;
mod schema;
mod support;
mod users;
mod writes;
