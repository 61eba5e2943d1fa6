//! The OCM model and its rules, as a pure library: component descriptors, their encodings in OCI
//! layers, versions and version filters, repository URLs and the repository mapping.
//!
//! Invariant: no I/O, no async, no HTTP, no knowledge of how OCI registries are spoken to. Callers
//! hand in bytes and strings and get models, paths and decisions back.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod bounded_value;
pub mod component_config;
pub mod decode;
pub mod dependencies;
pub mod descriptor;
mod descriptor_tar;
pub mod error;
mod flow_nesting;
pub mod full_match_regex;
pub mod mapping;
pub mod media_types;
pub mod repository;
pub mod version;
mod yaml_writer;

pub use component_config::{ComponentConfig, LayerRef};
pub use decode::{
    decode_descriptor_layer, descriptor_to_yaml, parse_descriptor_document, verify_identity,
    DecodeLimits, DecodedDescriptor,
};
pub use dependencies::{DependencyEdge, EXTRA_COMPONENT_REFERENCES_LABEL};
pub use descriptor::{
    Artefact, Component, ComponentDescriptor, ComponentReference, Label, Meta, RepositoryContext,
};
pub use descriptor_tar::encode_descriptor_tar;
pub use error::{OcmError, OcmErrorKind};
pub use full_match_regex::FullMatchRegex;
pub use mapping::{
    ComponentSelector, OneOrMany, RepositoryCandidate, RepositoryChoice, RepositoryMapping,
    RepositoryRule, RepositoryRuleConfig, VirtualRepository, VirtualRepositoryConfig,
    VirtualSelector, VirtualSelectorConfig, AUTO as AUTO_REPOSITORY,
};
pub use media_types::{
    DescriptorLayerFormat, DESCRIPTOR_LAYER_MEDIA_TYPES, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_CONFIG_LEGACY, MEDIA_TYPE_DESCRIPTOR_JSON, MEDIA_TYPE_DESCRIPTOR_JSON_TAR,
    MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, MEDIA_TYPE_DESCRIPTOR_YAML, MEDIA_TYPE_DESCRIPTOR_YAML_TAR,
    PUSH_CONFIG_MEDIA_TYPE, PUSH_DESCRIPTOR_LAYER_MEDIA_TYPE,
};
pub use repository::{
    component_repository_path, component_version_reference, validate_component_name,
    validate_version, OcmRepositoryUrl,
};
pub use version::{
    greatest, sort_ascending, tag_to_version, version_to_tag, RelaxedVersion, VersionFilter,
};
