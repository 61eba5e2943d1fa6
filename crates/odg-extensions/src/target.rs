//! What the extensions walk: configured components and which of their versions.

/// Which versions of a component a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelection {
    /// The newest `n` (at least 1) as `/ocm/component/versions?max=n` lists them.
    Newest(usize),
    /// Exactly this version.
    Exact(String),
}

/// One configured component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub component_name: String,
    pub versions: VersionSelection,
    /// Passed on as `ocm_repo_url` to every request of this component's trees.
    pub ocm_repo_url: Option<String>,
    /// Passed on as `version_filter` when listing versions.
    pub version_filter: Option<String>,
}

impl Target {
    /// The newest version of `name`.
    pub fn newest(name: impl Into<String>) -> Target {
        Target {
            component_name: name.into(),
            versions: VersionSelection::Newest(1),
            ocm_repo_url: None,
            version_filter: None,
        }
    }
}
