//! The embedded default: the demo landscape written once into a CTF directory under the cache
//! directory and served as the repository `demo.odg.invalid/ocm` (the `.invalid` top-level
//! domain never resolves, so this name can never reach a real registry).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use odg_components::{push_descriptor_with_blobs, with_repository_context, LocalBlob};
use odg_oci::{CtfDirectory, OciStore};
use odg_ocm::OcmRepositoryUrl;

pub const DEMO_REPOSITORY: &str = "demo.odg.invalid/ocm";

/// Bumped whenever the demo landscape changes, so an old directory is rewritten.
const DEMO_LAYOUT_VERSION: &str = "demo-landscape-3";

#[allow(
    clippy::expect_used,
    reason = "a constant URL, parsed by the demo tests"
)]
pub fn demo_repository_url() -> OcmRepositoryUrl {
    DEMO_REPOSITORY
        .parse()
        .expect("the demo repository URL is valid")
}

/// Opens (writing it first if needed) the demo CTF directory below `cache_dir`.
pub async fn prepare(cache_dir: &Path) -> anyhow::Result<Arc<dyn OciStore>> {
    let directory: PathBuf = cache_dir.join("demo-ocm-repository");
    let marker = directory.join("odg-demo-version");
    let current = tokio::fs::read_to_string(&marker).await.unwrap_or_default();
    let store = CtfDirectory::create_or_open(&directory)
        .await
        .with_context(|| format!("opening demo repository {}", directory.display()))?;
    if current.trim() != DEMO_LAYOUT_VERSION {
        let repository = demo_repository_url();
        let descriptors = odg_demo::demo_landscape();
        let count = descriptors.len();
        for descriptor in descriptors {
            let descriptor = with_repository_context(descriptor, &repository);
            let blobs = demo_blobs(&descriptor.component.name, &descriptor.component.version);
            push_descriptor_with_blobs(&store, &repository, &descriptor, &blobs)
                .await
                .with_context(|| {
                    format!("writing demo descriptor {}", descriptor.component.name)
                })?;
        }
        tokio::fs::write(&marker, DEMO_LAYOUT_VERSION).await?;
        tracing::info!(count, directory = %directory.display(), "wrote the demo OCM repository");
    }
    Ok(Arc::new(store))
}

/// The demo's local blobs of one component version (the landscape's release notes), as layers.
pub fn demo_blobs(component_name: &str, component_version: &str) -> Vec<LocalBlob> {
    odg_demo::demo_local_blobs_of(component_name, component_version)
        .into_iter()
        .map(|blob| LocalBlob {
            media_type: blob.media_type.to_string(),
            content: blob.content.into(),
        })
        .collect()
}
