//! `odg serve`: wires configuration, registry client, component service and HTTP server.

use std::sync::Arc;

use anyhow::Context;
use odg_cache::TieredCache;
use odg_components::{
    ComponentService, ComponentServiceConfig, OciComponentSource, OciSourceLimits, RepositoryStores,
};
use odg_oci::RegistryClient;
use odg_ocm::{ComponentSelector, RepositoryMapping, RepositoryRule};
use odg_server::{AppState, Authenticator};

use crate::cli::ServeArgs;
use crate::{config, demo_repository};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config::resolve(args)?;
    // First, so that everything below records into it.
    let metrics_handle = odg_server::metrics::install_recorder();
    odg_oci::metrics::describe_metrics();
    tokio::fs::create_dir_all(&config.cache_dir)
        .await
        .with_context(|| format!("creating cache directory {}", config.cache_dir.display()))?;

    let client =
        RegistryClient::new(config.registry.clone()).context("building the registry client")?;
    let mut stores = RepositoryStores::new(client);
    let demo = config.mapping.is_none();
    let mapping = match config.mapping {
        Some(mapping) => mapping,
        None => {
            let repository = demo_repository::demo_repository_url();
            let store = demo_repository::prepare(&config.cache_dir).await?;
            stores = stores.with_local_host(repository.host.clone(), store);
            tracing::info!(repository = %repository, "no OCM repository configured: serving the embedded demo repository");
            RepositoryMapping::new(vec![RepositoryRule {
                repository,
                selector: ComponentSelector::All,
                version_filter: None,
                labels: Vec::new(),
            }])
        }
    };
    for rule in &mapping.rules {
        tracing::info!(repository = %rule.repository, "OCM repository");
    }
    let source = OciComponentSource::new(Arc::new(stores), OciSourceLimits::default());
    let mut components = ComponentService::new(
        ComponentServiceConfig {
            mapping,
            allowed_hosts: config.allowed_hosts,
            walk: config.walk,
        },
        Arc::new(source),
    );
    match config.cache {
        Some(cache_config) => {
            let cache = TieredCache::new(cache_config)
                .await
                .context("opening the cache")?;
            components = components.with_cache(cache);
        }
        None => tracing::warn!("caching is turned off"),
    }
    let auth = Authenticator::new(&config.auth)
        .map_err(|error| anyhow::anyhow!("auth configuration: {error}"))?;
    // An unreachable database does not stop the service: the OCM routes work without it, the
    // metadata routes answer 503 until a background task has reached it.
    let database = odg_delivery_db::DeliveryDb::open(&config.database)
        .await
        .with_context(|| {
            format!(
                "opening the delivery DB {}",
                odg_delivery_db::redact_url(&config.database.url)
            )
        })?;
    tracing::info!(
        backend = database.backend().as_str(),
        status = database.health().status.as_str(),
        "delivery DB"
    );
    let compliance =
        odg_compliance::ComplianceService::new(database, components.clone(), config.findings);
    if demo && config.embedded_database {
        seed_demo_findings(&compliance).await;
    }
    let state = AppState::new(components)
        .with_compliance(compliance)
        .with_auth(auth)
        .with_admission(config.admission)
        .with_metadata_query_limits(config.metadata_query)
        .with_blob_limits(config.blobs)
        .with_cors(config.cors)
        .with_profiling(config.admin_profiling)
        .with_dashboard_dir(config.dashboard_dir.clone())
        .with_service_extensions(config.service_extensions.clone())
        .with_special_components(match config.special_components {
            Some(components) => components,
            None if demo => vec![demo_special_component()],
            None => Vec::new(),
        })
        .with_sprints(match config.sprints {
            Some(calendar) => Some(calendar),
            None if demo => demo_sprints(),
            None => None,
        })
        // The demo's components have no GitHub repositories: the feature is on (the dashboard
        // shows its Component Diff tab, whose diff of two versions odg serves) and every
        // component has no upgrade pull requests, as in the original without a GitHub config.
        .with_upgrade_prs(match config.upgrade_prs.clone() {
            Some(githubs) => Some(odg_server::UpgradePullRequests::new(githubs)),
            None if demo => Some(odg_server::UpgradePullRequests::new(Vec::new())),
            None => None,
        })
        .with_metrics(metrics_handle);
    let readiness = state.readiness.clone();
    if let Some(address) = config.admin_listen {
        let admin_listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the admin listener {address}"))?;
        tracing::info!(address = %admin_listener.local_addr()?, "admin listener (metrics, health)");
        let admin = odg_server::admin_router(state.clone());
        let limits = config.connections.clone();
        tokio::spawn(async move {
            if let Err(error) = odg_server::serve(
                admin_listener,
                admin,
                limits,
                "admin",
                std::future::pending(),
            )
            .await
            {
                tracing::error!(%error, "admin listener failed");
            }
        });
    }
    if !state.cors.allowed_origins().is_empty() {
        tracing::info!(origins = ?state.cors.allowed_origins(), "CORS: origins allowed cross-origin");
    }
    if let Some(directory) = &config.dashboard_dir {
        tracing::info!(directory = %directory.display(), "serving the Delivery Dashboard on this origin");
    }
    let router = odg_server::router(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    let shutdown = async move {
        odg_server::shutdown_signal().await;
        readiness.start_draining();
    };
    odg_server::serve(listener, router, config.connections, "api", shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The demo's findings and scan infos (`odg_demo::demo_findings`), written into the embedded
/// delivery DB at start-up so the dashboard's compliance views have something to show (never
/// into a configured database: made-up findings have no place in a shared one). Idempotent (entry ids
/// come from their identities); a database that cannot take them leaves the demo without them.
async fn seed_demo_findings(compliance: &odg_compliance::ComplianceService) {
    let entries = match odg_delivery_db::prepare_entries(&odg_demo::demo_findings()) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(%error, "the demo findings are invalid; not written");
            return;
        }
    };
    let configs = compliance.configs();
    match compliance
        .db()
        .put(&entries, &|finding_type: &str| configs.reuse(finding_type))
        .await
    {
        Ok(report) => {
            tracing::info!(
                inserted = report.inserted,
                updated = report.updated,
                "demo findings written"
            );
            if let Err(error) = compliance.invalidate_for(&entries).await {
                tracing::warn!(%error, "cached compliance summaries not invalidated after the demo findings");
            }
        }
        Err(error) => tracing::warn!(%error, "the demo findings were not written"),
    }
}

/// The demo's landing-page component: the landscape root, at its greatest version.
fn demo_special_component() -> odg_server::SpecialComponent {
    odg_server::SpecialComponent {
        id: "demo-landscape".into(),
        name: odg_demo::DEMO_ROOT_COMPONENT.into(),
        display_name: "ACME landscape".into(),
        kind: "Landscape".into(),
        version: "greatest".into(),
        icon: None,
        release_pipeline_url: None,
        ocm_repo: None,
        dependencies: vec![odg_server::SpecialComponentDependency {
            name: "acme.org/products/storefront".into(),
            display_name: "Storefront".into(),
        }],
    }
}

/// The demo's sprint calendar: two-week sprints named by the original's default rules (from
/// 2025-01-08, two cycles per number), with the dates the dashboard's sprint box shows.
fn demo_sprints() -> Option<odg_server::SprintCalendar> {
    let offset = |name: &str, display_name: &str, offset_days: i64| odg_server::SprintOffset {
        name: name.into(),
        display_name: Some(display_name.into()),
        offset_days,
    };
    let config = odg_server::SprintsConfig {
        sprint_name_pattern: Some("%y%S%C".into()),
        meta: odg_server::SprintMetadata {
            offsets: vec![
                offset("canary_freeze", "Canary Freeze", -9),
                offset("release_decision", "Release Decision", -2),
                offset("rtc", "Release to Customer", 1),
            ],
            finding_due_date_offset_name: None,
        },
        ..Default::default()
    };
    match odg_server::SprintCalendar::new(config) {
        Ok(calendar) => Some(calendar),
        Err(error) => {
            tracing::warn!(%error, "the demo's sprint calendar is invalid; none shown");
            None
        }
    }
}
