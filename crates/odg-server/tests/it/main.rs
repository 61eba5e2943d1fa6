//! Integration tests of the HTTP API: requests through the router (no sockets) over real stores,
//! and the HTTP layer's limits over real sockets (`http_limits`).

mod answer_routes;
mod artefact_blob_routes;
mod backlog_item_routes;
mod blob_routes;
mod cache_routes;
mod compressed_bodies;
mod cors_routes;
mod dashboard_routes;
mod demo_routes;
mod feature_routes;
mod hostile_descriptor_routes;
mod http_limits;
mod inactive_feature_routes;
mod load_routes;
mod login_routes;
mod metadata_query_routes;
mod metadata_routes;
mod metadata_search_routes;
mod miss_ratio_curve_routes;
mod profile_routes;
mod registry_redirects;
mod registry_routes;
mod rescore_routes;
mod responsibles_diff_routes;
mod special_component_routes;
mod sprint_routes;
mod support;
mod upgrade_pr_routes;
