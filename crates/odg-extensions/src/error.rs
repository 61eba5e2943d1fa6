//! The one error this crate returns: a run that cannot start. Failures of single requests during
//! a run are not errors but part of its report.

#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
