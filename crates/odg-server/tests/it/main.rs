//! Integration tests of the HTTP API: requests through the router (no sockets) over real stores.

mod cache_routes;
mod demo_routes;
mod hostile_descriptor_routes;
mod load_routes;
mod metadata_query_routes;
mod metadata_routes;
mod registry_redirects;
mod registry_routes;
mod support;
