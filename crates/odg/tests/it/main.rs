//! End-to-end tests of the `odg` binary as a black box: `odg serve` and `odg push` run as
//! subprocesses against a real registry (Debian's docker-registry), and their results are checked
//! against the independent Python OCM library (gardener-ocm, via `tests/python/ocm_interop.py`).
//!
//! - `interop_python_seeded`: the library uploads, odg serves; answers must equal the library's reads.
//! - `interop_odg_pushed`: odg pushes (idempotently), the library reads what odg serves.
//! - `cli`: configuration errors, the demo default, `ODG_*` variables.
//! - `cache_advise`: `odg cache advise` over two pods' miss-ratio curves; the `/metrics` points; curves off.
//! - `dashboard`: the original's Delivery Dashboard in headless Chromium against `odg serve` on the
//!   demo: token login, landing page, a component's tabs; no failed request, no console error.
//! - `cache_crash`: kill -9 during heavy disk-cache writes, restart, every answer still correct.
//! - `cache_fills`: fills that end badly (started before an invalidation, or failing) and who waits for them.
//! - `cache_fleet`: two pods on one Redis: one origin fetch per fleet, invalidation across pods.
//! - `cache_memory`: resident memory under a working set 10x the memory bound.
//! - `cache_redis_faults`: a pod cut off from Redis during an invalidation; Redis killed under load.
//! - `delivery_db_down`: PostgreSQL down at start-up: OCM routes serve, metadata routes 503, recovery.
//! - `extensions`: `odg enumerate` and `odg cache-manager` against running pods; the cache effect.
//! - `metadata_fleet`: two pods on one Redis and one PostgreSQL: a write through one pod shows in
//!   the other's next compliance summary.
//! - `private_ca`: a registry behind a CA made in the test: a 502 after one attempt, or trusted
//!   through `--registry-ca-file`, `SSL_CERT_FILE` or a host's `ca_file`.
//! - `side_by_side`: the original's PostgreSQL database (its schema and rows) served by odg, and
//!   what odg writes read back in the original's shapes; `odg db check` on it.
//! - `db_commands`: `odg db check` and `odg db migrate` on PostgreSQL and SQLite.
//! - `known_discrepancies`: ignored reproductions of where odg and the library disagree today.

mod cache_advise;
mod cache_crash;
mod cache_fills;
mod cache_fleet;
mod cache_memory;
mod cache_redis_faults;
mod cache_support;
mod cli;
mod dashboard;
mod db_commands;
mod delivery_db_down;
mod extensions;
mod fixtures;
mod harness;
mod interop_checks;
mod interop_odg_pushed;
mod interop_python_seeded;
mod login;
mod metadata_fleet;
mod metadata_support;
mod private_ca;
mod python;
mod python_parity;
mod side_by_side;
