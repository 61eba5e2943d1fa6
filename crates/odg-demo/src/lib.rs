//! Deterministic component graphs: the demo landscape the service serves when no repository is
//! configured, and wide, deep trees for benchmarks. Pure data: no I/O.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod benchmark_tree;
mod blobs;
mod findings;
mod landscape;

pub use benchmark_tree::{benchmark_tree, BenchmarkTree};
pub use blobs::{demo_local_blobs, demo_local_blobs_of, DemoBlob};
pub use findings::demo_findings;
pub use landscape::{demo_landscape, DEMO_ROOT_COMPONENT, RESPONSIBLES_LABEL};

use odg_ocm::ComponentDescriptor;
use serde_json::{json, Value};

/// A descriptor in the shape the Python library writes (every known field present).
pub(crate) fn descriptor(
    name: &str,
    version: &str,
    creation_time: &str,
    resources: Vec<Value>,
    references: Vec<(String, String)>,
    labels: Vec<Value>,
) -> ComponentDescriptor {
    let component_references: Vec<Value> = references
        .iter()
        .map(|(reference_name, reference_version)| {
            json!({
                "name": short_name(reference_name),
                "componentName": reference_name,
                "version": reference_version,
                "extraIdentity": {},
                "labels": [],
                "digest": null,
            })
        })
        .collect();
    let value = json!({
        "meta": {"schemaVersion": "v2"},
        "component": {
            "name": name,
            "version": version,
            "provider": "acme",
            "creationTime": creation_time,
            "repositoryContexts": [],
            "labels": labels,
            "sources": [{
                "name": short_name(name),
                "version": version,
                "type": "git",
                "access": {
                    "type": "github",
                    "repoUrl": format!("github.com/{}", name.trim_start_matches("acme.org/")),
                    "ref": format!("refs/tags/{version}"),
                    "commit": null,
                },
                "labels": [],
                "extraIdentity": {},
            }],
            "resources": resources,
            "componentReferences": component_references,
        },
        "signatures": [],
    });
    #[allow(
        clippy::expect_used,
        reason = "the generator writes every field the model requires; the demo tests read each"
    )]
    serde_json::from_value(value).expect("generated descriptors are well-formed")
}

/// The last path segment of a component name, used for reference and artefact names.
pub(crate) fn short_name(component_name: &str) -> String {
    component_name
        .rsplit('/')
        .next()
        .unwrap_or(component_name)
        .to_string()
}

/// How the cart service's image is exposed (the original's `gardener.cloud/cve-categorisation`):
/// `/rescore` proposes lower severities for its vulnerabilities from the default rule set.
const CART: &str = "acme.org/shop/cart";

pub(crate) fn image_resource(component_name: &str, version: &str) -> Value {
    let name = short_name(component_name);
    let labels = if component_name == CART {
        json!([{"name": "gardener.cloud/cve-categorisation", "value": {
            "network_exposure": "protected", "authentication_enforced": true,
            "user_interaction": "end-user", "confidentiality_requirement": "high",
            "integrity_requirement": "high", "availability_requirement": "high",
            "comment": "behind the shop's gateway; customers log in",
        }}])
    } else {
        json!([])
    };
    json!({
        "name": name,
        "version": version,
        "type": "ociImage",
        "relation": "external",
        "access": {
            "type": "ociRegistry",
            "imageReference": format!("registry.acme.invalid/images/{name}:{version}"),
        },
        "extraIdentity": {},
        "labels": labels,
        "srcRefs": [],
        "digest": null,
    })
}

pub(crate) fn chart_resource(component_name: &str, version: &str) -> Value {
    let name = format!("{}-chart", short_name(component_name));
    json!({
        "name": name,
        "version": version,
        "type": "helmChart/v1",
        "relation": "local",
        "access": {
            "type": "localBlob",
            "localReference": format!("sha256:{:064x}", fnv1a(&format!("{component_name}:{version}"))),
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        },
        "extraIdentity": {},
        "labels": [],
        "srcRefs": [],
        "digest": null,
    })
}

/// A stable 64-bit hash (FNV-1a) for made-up digests and deterministic choices.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
