//! The suite's own Redis (the server at 127.0.0.1:6379, or `ODG_TEST_REDIS_URL`), which tests share
//! by isolating themselves under a key prefix of their own, deleted when the test ends.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::redis_server::delete_keys_with_prefix;

/// The shared Redis the suite may use (`ODG_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
pub fn shared_redis_url() -> String {
    std::env::var("ODG_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn shared_redis_addr() -> Option<SocketAddr> {
    let url = shared_redis_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.split('/').next()?.rsplit('@').next()?;
    authority.to_socket_addrs().ok()?.next()
}

/// A key prefix of one test's own in the shared Redis (unique per process, test and call); every
/// key under `<prefix>:` is deleted on drop, also when the test panics.
pub struct SharedRedisPrefix {
    pub prefix: String,
}

impl SharedRedisPrefix {
    pub fn new(test: &str) -> SharedRedisPrefix {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        SharedRedisPrefix {
            prefix: format!(
                "odg-it-{test}-{}-{nanos:x}-{}",
                std::process::id(),
                SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }
}

impl Drop for SharedRedisPrefix {
    fn drop(&mut self) {
        if let Some(addr) = shared_redis_addr() {
            let _ = delete_keys_with_prefix(addr, &format!("{}:", self.prefix));
        }
    }
}
