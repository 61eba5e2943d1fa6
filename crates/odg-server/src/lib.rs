//! The HTTP API of odg: the original delivery service's routes, JSON errors, serving and shutdown.
//!
//! Only this crate knows axum and hyper. [`router`] builds the routes over an [`AppState`];
//! [`serve`] runs them on a listener within [`ConnectionLimits`] until a shutdown future
//! resolves, draining requests in flight.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod admission;
mod auth;
mod byte_range;
mod connection;
mod cors;
mod error;
mod front_door;
pub mod metrics;
pub mod params;
mod rbac;
mod representation;
mod routes;
mod serving;
mod session;
mod sprints;
mod state;
mod upgrade_prs;

use axum::Router;

pub use admission::{defaults as admission_defaults, Admission, AdmissionConfig, AdmissionMode};
pub use auth::{
    AuthConfig, Authenticator, JwtAlgorithm, JwtConfig, Principal, ROLE_ADMIN, ROLE_BACKLOG_WRITER,
    ROLE_CACHE_ADMIN, ROLE_METADATA_WRITER, ROLE_WRITER,
};
pub use cors::{CorsConfig, DEFAULT_CORS_MAX_AGE};
pub use error::ApiError;
pub use rbac::{OneOrMany, PermissionConfig, RbacConfig, RoleConfig};
pub use routes::{SpecialComponent, SpecialComponentDependency};
pub use serving::{serve, ConnectionLimits};
pub use session::{
    GithubLoginConfig, LoginConfig, RoleBindingConfig, SigningKeyConfig, SubjectConfig,
    SubjectType, DEFAULT_REFRESH_MAX_AGE, DEFAULT_SESSION_MAX_AGE, REFRESH_COOKIE, SESSION_COOKIE,
};
pub use sprints::{
    ListedSprint, Sprint, SprintCalendar, SprintDate, SprintMetadata, SprintOffset, SprintsConfig,
};
pub use state::{AppState, BlobLimits, MetadataQueryLimits, Readiness, SharedState};
pub use upgrade_prs::{GithubRepositoryAccess, UpgradePullRequests};

/// All routes of the service over `state`.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Only `/live`, `/ready` and `/metrics`, for a separate admin listener.
pub fn admin_router(state: AppState) -> Router {
    routes::admin_router(state)
}

/// Resolves on SIGINT or SIGTERM (Kubernetes stops pods with SIGTERM).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested, draining requests in flight");
}
