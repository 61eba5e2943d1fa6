//! Per-kind policy: how long entries stay fresh, how long a stale one may be served while it is
//! refreshed, and which tiers keep the kind.

use std::time::Duration;

/// How one kind of data is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPolicy {
    /// Soft TTL: afterwards the entry is stale. `None` = immutable, never stale.
    pub fresh_for: Option<Duration>,
    /// How long past `fresh_for` a stale entry is still served while one refresh runs
    /// (stale-while-revalidate); afterwards it is gone.
    pub stale_for: Duration,
    pub memory: bool,
    pub disk: bool,
    pub shared: bool,
}

impl KindPolicy {
    /// Content-addressed, immutable data (a descriptor of a pinned version, the tree of a pinned
    /// version): cached everywhere, never stale; only an explicit invalidation removes it.
    pub fn immutable() -> KindPolicy {
        KindPolicy {
            fresh_for: None,
            stale_for: Duration::ZERO,
            memory: true,
            disk: true,
            shared: true,
        }
    }

    /// Data that changes upstream (version lists): fresh for `fresh_for`, then served stale for
    /// up to `stale_for` while one refresh runs. Kept in memory and the shared tier only: it is
    /// cheap to refetch after a restart, and a disk copy would only ever be stale.
    pub fn mutable(fresh_for: Duration, stale_for: Duration) -> KindPolicy {
        KindPolicy {
            fresh_for: Some(fresh_for),
            stale_for,
            memory: true,
            disk: false,
            shared: true,
        }
    }

    /// How long the shared tier should keep an entry written now with this freshness.
    pub fn shared_ttl(&self, fresh_for: Option<Duration>) -> Option<Duration> {
        fresh_for.map(|fresh| fresh + self.stale_for)
    }
}
