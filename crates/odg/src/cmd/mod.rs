//! One module per subcommand.

pub mod cache;
pub mod cache_advise;
pub mod cache_manager;
pub mod db;
pub mod enumerate;
pub mod push;
pub mod serve;
