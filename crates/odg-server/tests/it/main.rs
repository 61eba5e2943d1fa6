//! Integration tests of the HTTP API: requests through the router (no sockets) over real stores.

mod demo_routes;
mod registry_routes;
mod support;
