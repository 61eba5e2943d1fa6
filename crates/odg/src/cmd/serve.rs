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
    tokio::fs::create_dir_all(&config.cache_dir)
        .await
        .with_context(|| format!("creating cache directory {}", config.cache_dir.display()))?;

    let client =
        RegistryClient::new(config.registry.clone()).context("building the registry client")?;
    let mut stores = RepositoryStores::new(client);
    let mapping = match config.mapping {
        Some(mapping) => mapping,
        None => {
            let repository = demo_repository::demo_repository_url();
            let store = demo_repository::prepare(&config.cache_dir).await?;
            stores = stores.with_local_host(repository.host.clone(), store);
            tracing::info!(repository = %repository, "no OCM repository configured: serving the embedded demo repository");
            RepositoryMapping {
                rules: vec![RepositoryRule {
                    repository,
                    selector: ComponentSelector::All,
                    version_filter: None,
                }],
            }
        }
    };
    for rule in &mapping.rules {
        tracing::info!(repository = %rule.repository, "OCM repository");
    }
    let source = OciComponentSource::new(Arc::new(stores), OciSourceLimits::default());
    let cache = TieredCache::new(config.cache)
        .await
        .context("opening the cache")?;
    let components = ComponentService::new(
        ComponentServiceConfig {
            mapping,
            allowed_hosts: config.allowed_hosts,
            walk: config.walk,
        },
        Arc::new(source),
    )
    .with_cache(cache);
    let auth = Authenticator::new(&config.auth)
        .map_err(|error| anyhow::anyhow!("auth configuration: {error}"))?;
    let router = odg_server::router(AppState::new(components).with_auth(auth));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    odg_server::serve(listener, router, odg_server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
