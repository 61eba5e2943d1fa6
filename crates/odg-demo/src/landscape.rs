//! The demo landscape: 58 components in five tiers (libraries, platform, services, products,
//! one root), several versions each, with shared subtrees, a `+` version, a `v`-prefixed version
//! and a pre-release, and responsibles labels on the platform, service and product components,
//! so every route has something realistic to show.

use odg_ocm::ComponentDescriptor;
use serde_json::json;

use crate::{chart_resource, descriptor, fnv1a, image_resource};

/// The top of the demo graph.
pub const DEMO_ROOT_COMPONENT: &str = "acme.org/landscape";

const LIBRARIES: &[&str] = &[
    "base-image",
    "openssl",
    "glibc",
    "golang-runtime",
    "python-runtime",
    "node-runtime",
    "jvm-runtime",
    "grpc",
    "protobuf",
    "logging-lib",
    "metrics-lib",
    "tls-lib",
];
const PLATFORM: &[&str] = &[
    "ingress-nginx",
    "cert-manager",
    "external-dns",
    "prometheus",
    "grafana",
    "loki",
    "fluent-bit",
    "vault",
    "postgres-operator",
    "redis-operator",
    "kafka",
    "keycloak",
    "istio",
    "velero",
    "gatekeeper",
];
const SERVICES: &[&str] = &[
    "cart",
    "checkout",
    "catalog",
    "payments",
    "search",
    "recommendations",
    "inventory",
    "shipping",
    "accounts",
    "notifications",
    "reviews",
    "pricing",
    "promotions",
    "orders",
    "invoices",
    "returns",
    "gateway",
    "frontend",
    "admin-ui",
    "analytics",
    "fraud-detection",
    "tax",
    "currency",
    "media",
    "loyalty",
];
const PRODUCTS: &[&str] = &[
    "storefront",
    "backoffice",
    "data-platform",
    "observability-stack",
    "security-suite",
];

struct Tier {
    names: Vec<String>,
    versions: fn(&str) -> Vec<String>,
}

fn library_versions(name: &str) -> Vec<String> {
    match name {
        "acme.org/lib/openssl" => vec!["3.0.13".into(), "3.0.14".into(), "3.0.15+fips.1".into()],
        "acme.org/lib/base-image" => vec!["v2.4.0".into(), "v2.4.1".into(), "v2.5.0".into()],
        _ => vec!["1.0.0".into(), "1.1.0".into(), "1.2.0".into()],
    }
}

fn platform_versions(_: &str) -> Vec<String> {
    vec!["0.9.0".into(), "1.0.0".into(), "1.1.0".into()]
}

fn service_versions(name: &str) -> Vec<String> {
    let mut versions = vec![
        "1.0.0".to_string(),
        "1.1.0".into(),
        "1.2.0".into(),
        "1.3.0".into(),
    ];
    if name.ends_with("/checkout") {
        versions.push("1.4.0-rc.1".into());
    }
    versions
}

fn product_versions(_: &str) -> Vec<String> {
    vec!["2026.1.0".into(), "2026.2.0".into(), "2026.3.0".into()]
}

fn qualified(prefix: &str, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| format!("acme.org/{prefix}/{name}"))
        .collect()
}

/// Picks `count` distinct dependencies from `pool`, deterministically from `seed`.
fn pick<'a>(pool: &'a [String], seed: &str, count: usize) -> Vec<&'a String> {
    let mut picked: Vec<&String> = Vec::new();
    let mut attempt = 0u64;
    while picked.len() < count.min(pool.len()) {
        let index = (fnv1a(&format!("{seed}#{attempt}")) % pool.len() as u64) as usize;
        if !picked.contains(&&pool[index]) {
            picked.push(&pool[index]);
        }
        attempt += 1;
    }
    picked
}

/// Every descriptor of the demo landscape (about 190), without repository contexts.
pub fn demo_landscape() -> Vec<ComponentDescriptor> {
    let libraries = Tier {
        names: qualified("lib", LIBRARIES),
        versions: library_versions,
    };
    let platform = Tier {
        names: qualified("platform", PLATFORM),
        versions: platform_versions,
    };
    let services = Tier {
        names: qualified("shop", SERVICES),
        versions: service_versions,
    };
    let products = Tier {
        names: qualified("products", PRODUCTS),
        versions: product_versions,
    };

    let mut descriptors = Vec::new();
    // (tier, what it depends on: (tier, how many))
    let plan: [(&Tier, Vec<(&Tier, usize)>); 4] = [
        (&libraries, vec![]),
        (&platform, vec![(&libraries, 2)]),
        (&services, vec![(&libraries, 3), (&platform, 1)]),
        (&products, vec![(&services, 5), (&platform, 2)]),
    ];
    for (tier, dependencies) in plan.iter() {
        for (name_index, name) in tier.names.iter().enumerate() {
            let versions = (tier.versions)(name);
            for (version_index, version) in versions.iter().enumerate() {
                let mut references = Vec::new();
                // Libraries build on earlier libraries, which gives the tree its depth.
                if dependencies.is_empty() && name_index > 0 {
                    let earlier = &tier.names[..name_index];
                    for dependency in pick(earlier, name, 1 + name_index % 2) {
                        references.push(at_matching_version(
                            dependency,
                            (tier.versions)(dependency),
                            version_index,
                        ));
                    }
                }
                for (dependency_tier, count) in dependencies {
                    for dependency in pick(&dependency_tier.names, name, *count) {
                        let dependency_versions = (dependency_tier.versions)(dependency);
                        references.push(at_matching_version(
                            dependency,
                            dependency_versions,
                            version_index,
                        ));
                    }
                }
                references.sort();
                references.dedup();
                // Libraries are left without owners, so the dashboard shows both cases.
                let labels = if dependencies.is_empty() {
                    vec![]
                } else {
                    vec![responsibles_label(name)]
                };
                descriptors.push(descriptor(
                    name,
                    version,
                    &creation_time(version_index),
                    vec![image_resource(name, version), chart_resource(name, version)],
                    references,
                    labels,
                ));
            }
        }
    }

    for (version_index, version) in ["2026.1.0", "2026.2.0", "2026.3.0"].iter().enumerate() {
        let references = products
            .names
            .iter()
            .map(|product| {
                (
                    product.clone(),
                    product_versions(product)[version_index].clone(),
                )
            })
            .collect();
        let labels = vec![json!({
            "name": "ocm.software/ocm-gear/extra-component-references",
            "value": [{
                "component_reference": {"name": "acme.org/platform/gatekeeper", "version": "1.1.0"},
                "purpose": ["policy"],
            }],
        })];
        let notes = crate::blobs::release_notes(version);
        descriptors.push(descriptor(
            DEMO_ROOT_COMPONENT,
            version,
            &creation_time(version_index),
            vec![crate::blobs::release_notes_resource(&notes)],
            references,
            labels,
        ));
    }
    descriptors
}

/// The label naming a component's responsibles (read by `/ocm/component/responsibles`).
pub const RESPONSIBLES_LABEL: &str = "cloud.gardener.cnudie/responsibles";

/// Made-up owners: (GitHub user, first name, last name).
const PEOPLE: &[(&str, &str, &str)] = &[
    ("ada-l", "Ada", "Lovelace"),
    ("alan-t", "Alan", "Turing"),
    ("grace-h", "Grace", "Hopper"),
    ("edsger-d", "Edsger", "Dijkstra"),
    ("barbara-l", "Barbara", "Liskov"),
    ("donald-k", "Donald", "Knuth"),
    ("frances-a", "Frances", "Allen"),
];

/// Two owners per component (a GitHub user and a person with an address), chosen from the
/// name, the same in every version.
fn responsibles_label(name: &str) -> serde_json::Value {
    let first = (fnv1a(name) % PEOPLE.len() as u64) as usize;
    let (user, _, _) = PEOPLE[first];
    let (_, first_name, last_name) = PEOPLE[(first + 1) % PEOPLE.len()];
    json!({
        "name": RESPONSIBLES_LABEL,
        "value": [
            {"type": "githubUser", "username": user, "github_hostname": "github.com"},
            {"type": "personalName", "firstName": first_name, "lastName": last_name},
            {"type": "emailAddress", "email": format!("{}@acme.invalid", first_name.to_lowercase())},
        ],
    })
}

/// Newer versions of a component depend on newer versions of its dependencies.
fn at_matching_version(
    name: &str,
    versions: Vec<String>,
    version_index: usize,
) -> (String, String) {
    let chosen = versions[version_index.min(versions.len() - 1)].clone();
    (name.to_string(), chosen)
}

fn creation_time(version_index: usize) -> String {
    format!("2026-{:02}-15T10:00:00Z", (version_index % 12) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn landscape_is_large_connected_and_deterministic() {
        let descriptors = demo_landscape();
        let names: HashSet<&str> = descriptors
            .iter()
            .map(|d| d.component.name.as_str())
            .collect();
        assert!(names.len() >= 50, "{} components", names.len());
        assert!(descriptors.len() >= 150);
        assert_eq!(descriptors, demo_landscape());

        let by_id: HashMap<(String, String), _> = descriptors
            .iter()
            .map(|d| ((d.component.name.clone(), d.component.version.clone()), d))
            .collect();
        // Every reference resolves inside the landscape.
        for descriptor in &descriptors {
            for edge in descriptor.component.dependency_edges() {
                assert!(
                    by_id.contains_key(&(edge.component_name.clone(), edge.version.clone())),
                    "{} -> {}:{}",
                    descriptor.component.name,
                    edge.component_name,
                    edge.version
                );
            }
        }
        assert!(by_id.contains_key(&("acme.org/lib/openssl".into(), "3.0.15+fips.1".into())));
    }

    #[test]
    fn platform_services_and_products_name_their_responsibles() {
        let descriptors = demo_landscape();
        let labelled = |name: &str| {
            descriptors
                .iter()
                .filter(|d| d.component.name == name)
                .all(|d| d.component.find_label(RESPONSIBLES_LABEL).is_some())
        };
        assert!(labelled("acme.org/shop/checkout"));
        assert!(labelled("acme.org/platform/vault"));
        assert!(labelled("acme.org/products/storefront"));
        assert!(!labelled("acme.org/lib/openssl"));
        let label = responsibles_label("acme.org/shop/checkout");
        assert_eq!(label["value"].as_array().map(Vec::len), Some(3));
    }

    /// The decoder's limits (the flow-nesting pre-scan among them) refuse none of the demo
    /// descriptors, in any of the encodings tools write them in.
    #[test]
    fn every_demo_descriptor_decodes_in_every_encoding() {
        let limits = odg_ocm::DecodeLimits::default();
        for descriptor in demo_landscape() {
            let encodings = [
                odg_ocm::descriptor_to_yaml(&descriptor),
                serde_yaml_ng::to_string(&descriptor).expect("the model serialises"),
                serde_json::to_string_pretty(&descriptor).expect("the model serialises"),
            ];
            for document in encodings {
                let decoded = odg_ocm::parse_descriptor_document(&document, &limits);
                assert_eq!(decoded.as_ref(), Ok(&descriptor), "{document}");
            }
        }
    }
}
