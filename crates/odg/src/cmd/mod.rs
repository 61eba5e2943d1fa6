//! One module per subcommand.

pub mod push;
pub mod serve;
