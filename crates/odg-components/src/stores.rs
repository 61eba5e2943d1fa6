//! Which OCI store serves which OCM repository: registry endpoints, or local directories.

use std::collections::HashMap;
use std::sync::Arc;

use odg_oci::{OciStore, RegistryClient};
use odg_ocm::OcmRepositoryUrl;

/// Hands out the OCI store behind an OCM repository URL.
pub trait StoreProvider: Send + Sync + std::fmt::Debug {
    fn store(&self, repository: &OcmRepositoryUrl) -> Arc<dyn OciStore>;
}

/// Registry endpoints from one shared [`RegistryClient`] (one token cache, one concurrency bound
/// per host), with some hosts served by local stores instead (the embedded demo repository, tests).
#[derive(Debug, Clone)]
pub struct RepositoryStores {
    client: RegistryClient,
    /// Hosts (`host[:port]`) whose repositories live in a local store rather than a registry.
    local_hosts: HashMap<String, Arc<dyn OciStore>>,
}

impl RepositoryStores {
    pub fn new(client: RegistryClient) -> Self {
        RepositoryStores {
            client,
            local_hosts: HashMap::new(),
        }
    }

    /// Serves every repository under `host` from `store` (e.g. a CTF directory).
    pub fn with_local_host(mut self, host: impl Into<String>, store: Arc<dyn OciStore>) -> Self {
        self.local_hosts.insert(host.into(), store);
        self
    }
}

impl StoreProvider for RepositoryStores {
    fn store(&self, repository: &OcmRepositoryUrl) -> Arc<dyn OciStore> {
        match self.local_hosts.get(&repository.host) {
            Some(store) => store.clone(),
            None => Arc::new(
                self.client
                    .endpoint(repository.plain_http, &repository.host),
            ),
        }
    }
}
