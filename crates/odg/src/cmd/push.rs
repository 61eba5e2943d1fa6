//! `odg push`: uploads descriptor files to an OCM repository in the standard layout.

use std::collections::HashMap;

use anyhow::Context;
use odg_components::{push_descriptor, with_repository_context};
use odg_oci::{Credentials, RegistryClient, RegistryClientConfig};
use odg_ocm::{parse_descriptor_document, DecodeLimits, OcmRepositoryUrl};

use crate::cli::PushArgs;

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let repository: OcmRepositoryUrl = args
        .ocm_repo
        .parse()
        .with_context(|| format!("--ocm-repo {:?}", args.ocm_repo))?;
    let mut credentials = HashMap::new();
    if let Some(username) = args.username {
        let password = args.password.unwrap_or_default();
        credentials.insert(repository.host.clone(), Credentials { username, password });
    }
    let client = RegistryClient::new(RegistryClientConfig {
        credentials,
        ca_files: args.registry_ca_files,
        ..RegistryClientConfig::default()
    })?;
    let store = client.endpoint(repository.plain_http, &repository.host);
    let limits = DecodeLimits::default();
    for file in &args.files {
        let text = tokio::fs::read_to_string(file)
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        let descriptor = parse_descriptor_document(&text, &limits)
            .with_context(|| format!("parsing {}", file.display()))?;
        let descriptor = with_repository_context(descriptor, &repository);
        let pushed = push_descriptor(&store, &repository, &descriptor)
            .await
            .with_context(|| format!("pushing {}", file.display()))?;
        println!(
            "{} {} ({})",
            repository.host, pushed.reference, pushed.manifest_digest
        );
    }
    Ok(())
}
