//! Compliance: finding configurations (categorisations, filters, discovery-date reuse) and the
//! compliance summary of component trees from the delivery DB, cached per (component version,
//! finding type, datasource) in the tiered cache and invalidated exactly by metadata writes.
//!
//! Sits between the delivery DB (rows, which know nothing of OCM or the cache) and the server:
//! it joins descriptors (`odg-components`) with rows (`odg-delivery-db`) and owns the summary's
//! cache kind and what a write invalidates. Entry points: [`FindingConfigs`],
//! [`ComplianceService`], [`summarise`] (the pure algorithm).

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod cve_rescoring;
mod error;
pub mod proposals;
pub mod rescoring;
mod service;
mod summary;

pub use config::{
    artefact_id, datasource_of, Categorisation, FindingConfig, FindingConfigs, ProcessingTime,
    Profile,
};
pub use error::ComplianceError;
pub use proposals::{proposals, SprintDue};
pub use service::{
    default_policies, scope_name, selectors_for, ComplianceService, KIND_COMPLIANCE_SUMMARY,
    SUMMARY_FRESH_FOR,
};
pub use summary::{
    is_about, rows_of_version, summarise, SummaryEntry, TypeSummary, CLEAN, UNKNOWN,
};
