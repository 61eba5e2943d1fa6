//! One module per subcommand.

pub mod cache;
pub mod push;
pub mod serve;
