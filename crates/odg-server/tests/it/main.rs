//! Integration tests of the HTTP API: requests through the router (no sockets) over real stores.

mod answer_routes;
mod cache_routes;
mod demo_routes;
mod load_routes;
mod metadata_routes;
mod registry_routes;
mod support;
