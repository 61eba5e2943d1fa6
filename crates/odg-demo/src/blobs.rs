//! The demo's local blobs: release notes of each landscape version, stored beside its descriptor
//! in the component's OCI repository (OCM `localBlob` access), so that `/ocm/artefacts/blob`
//! has something to serve with no registry configured.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::landscape::DEMO_ROOT_COMPONENT;

/// One local blob: its content, media type and digest (`sha256:<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoBlob {
    pub component_name: String,
    pub component_version: String,
    pub media_type: &'static str,
    pub content: Vec<u8>,
    pub digest: String,
}

/// The release notes of `acme.org/landscape` at `version` (a few KiB of markdown, so that range
/// requests have something to cut).
pub(crate) fn release_notes(version: &str) -> DemoBlob {
    let mut content = format!("# {DEMO_ROOT_COMPONENT} {version}\n\n");
    for line in 1..=100 {
        content.push_str(&format!(
            "- change {line}: the landscape's services move to their {version} releases\n"
        ));
    }
    let content = content.into_bytes();
    DemoBlob {
        component_name: DEMO_ROOT_COMPONENT.to_string(),
        component_version: version.to_string(),
        media_type: "text/markdown",
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&content))),
        content,
    }
}

/// The resource entry naming `blob` in its descriptor.
pub(crate) fn release_notes_resource(blob: &DemoBlob) -> Value {
    json!({
        "name": "release-notes",
        "version": blob.component_version,
        "type": "text",
        "relation": "local",
        "extraIdentity": {},
        "labels": [],
        "access": {
            "type": "localBlob",
            "localReference": blob.digest,
            "mediaType": blob.media_type,
        },
    })
}

/// The local blobs of one demo component version (none for most).
pub fn demo_local_blobs_of(component_name: &str, component_version: &str) -> Vec<DemoBlob> {
    if component_name == DEMO_ROOT_COMPONENT {
        vec![release_notes(component_version)]
    } else {
        Vec::new()
    }
}

/// Every local blob of the demo landscape, with the component version it belongs to.
pub fn demo_local_blobs() -> Vec<DemoBlob> {
    crate::demo_landscape()
        .iter()
        .filter(|descriptor| descriptor.component.name == DEMO_ROOT_COMPONENT)
        .map(|descriptor| release_notes(&descriptor.component.version))
        .collect()
}
