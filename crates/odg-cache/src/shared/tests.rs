//! The shared tier's tests: pure parts (redaction, key layout, parsing, wire format), then
//! real Redis: the server at 127.0.0.1:6379 (override with `ODG_TEST_REDIS_URL`) for behaviour,
//! and dedicated `redis-server` child processes for faults (kill, restart, pause) and for a
//! three-node cluster. Every Redis test uses its own key prefix (and so its own channel) and
//! deletes its keys, also when it fails.

use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::connection::reconnect_backoff;
use super::*;
use crate::entry::EntryMeta;
use crate::generations::Stamp;
use crate::key::{Kind, Scope};
use odg_test_support::{shared_redis_url, RedisServer, SharedRedisPrefix};

// Pure parts: redaction, key layout, parsing, wire format.

#[test]
fn urls_are_redacted_for_logs() {
    assert_eq!(
        redact_url("redis://127.0.0.1:6379/0"),
        "redis://127.0.0.1:6379/0"
    );
    assert_eq!(
        redact_url("redis://:s3cret@cache:6379/1"),
        "redis://***@cache:6379/1"
    );
    assert_eq!(
        redact_url("rediss://user:p@ss/w@cache"),
        "rediss://***@cache"
    );
    assert_eq!(
        redact_url("redis://a:x@n1:7000, redis://a:x@n2:7001"),
        "redis://***@n1:7000,redis://***@n2:7001"
    );
    assert_eq!(
        redact_url("unix:///run/redis.sock?db=1&pass=x"),
        "unix:///run/redis.sock?***"
    );
    let config = SharedTierConfig::new("redis://:hunter2@cache:6379");
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn keys_follow_the_documented_layout() {
    let keys = Keys {
        prefix: "odg".to_string(),
    };
    let id = EntryId([0xab; 16]);
    assert_eq!(keys.entry(&id), format!("odg:entry:{}", "ab".repeat(16)));
    assert_eq!(keys.lease(&id), format!("odg:lease:{}", "ab".repeat(16)));
    assert_eq!(keys.generations(), "odg:generations");
    assert_eq!(keys.channel(), "odg:invalidations");
}

#[test]
fn lease_tokens_stay_out_of_debug_output() {
    let lease = Lease {
        id: EntryId([1; 16]),
        token: "secret-token".to_string(),
    };
    assert!(!format!("{lease:?}").contains("secret-token"));
}

#[test]
fn generations_parse_sorted_and_skip_garbage() {
    let flat = ["epoch", "7", "kind:versions", "2", "all", "1", "bad", "x"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        parse_generations(flat),
        vec![
            ("all".to_string(), 1),
            ("epoch".to_string(), 7),
            ("kind:versions".to_string(), 2)
        ]
    );
}

#[test]
fn backoff_is_capped_and_ttls_never_zero() {
    assert!(reconnect_backoff(0) < Duration::from_millis(130));
    assert!(reconnect_backoff(30) <= Duration::from_millis(1200));
    assert_eq!(whole_millis(Duration::from_micros(10)), 1);
    assert_eq!(whole_millis(Duration::from_secs(2)), 2000);
    assert!(new_epoch() > 0);
}

#[test]
fn invalidation_messages_are_plain_json() {
    let message = InvalidationMessage {
        origin: "pod-a".to_string(),
        selector: SelectorMessage::Component {
            name: "acme.org/a".to_string(),
        },
        generations: vec![("component:acme.org/a".to_string(), 3)],
    };
    let json = serde_json::to_string(&message).unwrap();
    assert_eq!(
        json,
        r#"{"origin":"pod-a","selector":{"type":"component","name":"acme.org/a"},"generations":[["component:acme.org/a",3]]}"#
    );
    assert_eq!(
        serde_json::from_str::<InvalidationMessage>(&json).unwrap(),
        message
    );
}

// Against Redis.

fn config(url: &str, prefix: &str) -> SharedTierConfig {
    SharedTierConfig {
        key_prefix: prefix.to_string(),
        ..SharedTierConfig::new(url)
    }
}

fn entry_id(n: u8) -> EntryId {
    EntryId([n; 16])
}

fn sample_entry(payload_bytes: usize) -> StoredEntry {
    StoredEntry {
        meta: EntryMeta {
            kind: Kind::new("descriptor").unwrap(),
            scope: Scope::component_version("acme.org/a", "1.0.0"),
            stamp: Stamp::from_array([9, 1, 2, 3, 4]),
            created_at_ms: 1_700_000_000_000,
            fresh_until_ms: Some(1_700_000_060_000),
            expires_at_ms: None,
        },
        key_text: "10:acme.org/a;5:1.0.0;".to_string(),
        payload: Bytes::from(vec![b'x'; payload_bytes]),
    }
}

async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("test Redis reachable")
}

async fn next_event(
    events: &mut mpsc::Receiver<SharedEvent>,
    within: Duration,
) -> Option<SharedEvent> {
    tokio::time::timeout(within, events.recv())
        .await
        .ok()
        .flatten()
}

/// Skips other events until `wanted` arrives; panics after `within`.
async fn expect_event(
    events: &mut mpsc::Receiver<SharedEvent>,
    wanted: SharedEvent,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_event(events, left).await {
            Some(event) if event == wanted => return,
            Some(_) => continue,
            None => panic!("no {wanted:?} within {within:?}"),
        }
    }
}

/// A port nothing listens on, whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A `redis-server` child process, killed when dropped.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_ttl() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("roundtrip");
    let prefix = keys.prefix.clone();
    let tier = SharedTier::connect(config(&url, &prefix)).await.unwrap();
    assert!(tier.is_available());
    let mut raw = raw_connection(&url).await;
    let id = entry_id(1);
    let entry = sample_entry(1000);

    assert_eq!(tier.get(&id).await.unwrap(), None);
    assert!(tier
        .put(&id, &entry, Some(Duration::from_secs(2)))
        .await
        .unwrap());
    assert_eq!(tier.get(&id).await.unwrap(), Some(entry.clone()));
    let key = format!("{prefix}:entry:{}", id.to_hex());
    let ttl: i64 = raw.pttl(&key).await.unwrap();
    assert!((1..=2000).contains(&ttl), "PTTL {ttl}");

    assert!(tier.put(&id, &entry, None).await.unwrap());
    let ttl: i64 = raw.pttl(&key).await.unwrap();
    assert_eq!(ttl, -1, "no TTL given, none set");

    assert!(tier
        .put(&id, &entry, Some(Duration::from_millis(50)))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(tier.get(&id).await.unwrap(), None, "expired");

    assert!(tier.put(&id, &entry, None).await.unwrap());
    tier.delete(&id).await.unwrap();
    assert_eq!(tier.get(&id).await.unwrap(), None);
    tier.delete(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_values_are_skipped() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("oversize");
    let prefix = keys.prefix.clone();
    let tier = SharedTier::connect(SharedTierConfig {
        max_value_bytes: 1024,
        ..config(&url, &prefix)
    })
    .await
    .unwrap();
    // The envelope adds about a hundred bytes: a 1000-byte payload is over, 500 bytes fit.
    assert!(!tier
        .put(&entry_id(1), &sample_entry(1000), None)
        .await
        .unwrap());
    assert!(!tier
        .put(&entry_id(2), &sample_entry(4096), None)
        .await
        .unwrap());
    assert!(tier
        .put(&entry_id(3), &sample_entry(500), None)
        .await
        .unwrap());
    assert_eq!(tier.get(&entry_id(1)).await.unwrap(), None);
    assert_eq!(tier.get(&entry_id(2)).await.unwrap(), None);
    assert!(tier.get(&entry_id(3)).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_are_dropped() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("corrupt");
    let prefix = keys.prefix.clone();
    let tier = SharedTier::connect(config(&url, &prefix)).await.unwrap();
    let mut raw = raw_connection(&url).await;
    let id = entry_id(7);
    let key = format!("{prefix}:entry:{}", id.to_hex());

    let mut flipped = encode_entry(&sample_entry(100));
    flipped[60] ^= 0x01;
    for garbage in [b"not an entry".to_vec(), flipped] {
        let _: () = raw.set(&key, garbage).await.unwrap();
        assert_eq!(tier.get(&id).await.unwrap(), None);
        let exists: bool = raw.exists(&key).await.unwrap();
        assert!(!exists, "an unreadable value is deleted");
    }
    assert!(
        tier.is_available(),
        "a bad value is not a connection failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_released_only_by_their_holder_and_expire() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("lease");
    let prefix = keys.prefix.clone();
    let lease_config = SharedTierConfig {
        lease_ttl: Duration::from_millis(200),
        ..config(&url, &prefix)
    };
    let a = SharedTier::connect(lease_config.clone()).await.unwrap();
    let b = SharedTier::connect(lease_config).await.unwrap();
    let mut raw = raw_connection(&url).await;
    let id = entry_id(3);
    let lease_key = format!("{prefix}:lease:{}", id.to_hex());

    let held = a
        .try_lease(&id)
        .await
        .unwrap()
        .expect("first taker gets the lease");
    assert_eq!(held.id(), id);
    assert!(b.try_lease(&id).await.unwrap().is_none(), "exclusive");
    assert!(
        a.try_lease(&id).await.unwrap().is_none(),
        "exclusive within a pod too"
    );
    let ttl: i64 = raw.pttl(&lease_key).await.unwrap();
    assert!((1..=200).contains(&ttl), "PTTL {ttl}");

    let forged = Lease {
        id,
        token: "not-the-token".to_string(),
    };
    b.release(&forged).await.unwrap();
    assert!(
        b.try_lease(&id).await.unwrap().is_none(),
        "a non-holder cannot release"
    );

    a.release(&held).await.unwrap();
    let taken_by_b = b.try_lease(&id).await.unwrap().expect("free after release");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let taken_by_a = a.try_lease(&id).await.unwrap().expect("free after expiry");
    b.release(&taken_by_b).await.unwrap();
    let token: Option<String> = raw.get(&lease_key).await.unwrap();
    assert_eq!(
        token.as_deref(),
        Some(taken_by_a.token.as_str()),
        "an expired holder's release leaves the new lease"
    );
    a.release(&taken_by_a).await.unwrap();
    let exists: bool = raw.exists(&lease_key).await.unwrap();
    assert!(!exists);
}

fn field(generations: &[(String, u64)], name: &str) -> Option<u64> {
    generations
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| *value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generations_get_one_epoch_and_bumps_from_two_tiers_sum_up() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("generations");
    let prefix = keys.prefix.clone();
    let a = SharedTier::connect(config(&url, &prefix)).await.unwrap();
    let b = SharedTier::connect(config(&url, &prefix)).await.unwrap();

    let first = a.load_generations().await.unwrap();
    let epoch = field(&first, EPOCH_FIELD).expect("epoch created");
    assert!(epoch > 0);
    assert_eq!(first.len(), 1);
    assert_eq!(
        b.load_generations().await.unwrap(),
        first,
        "created once, then read"
    );

    let bumped = a.bump_generation("kind:descriptor").await.unwrap();
    assert_eq!(field(&bumped, "kind:descriptor"), Some(1));
    assert_eq!(field(&bumped, EPOCH_FIELD), Some(epoch));
    assert_eq!(
        field(
            &b.bump_generation("kind:descriptor").await.unwrap(),
            "kind:descriptor"
        ),
        Some(2)
    );

    let per_tier = 25;
    let bumps = (0..per_tier).flat_map(|_| {
        [a.clone(), b.clone()]
            .map(|tier| async move { tier.bump_generation("component:acme.org/a").await.unwrap() })
    });
    let mut seen: Vec<u64> = futures::future::join_all(bumps)
        .await
        .iter()
        .map(|generations| field(generations, "component:acme.org/a").unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=2 * per_tier as u64).collect::<Vec<_>>(),
        "every bump saw its own value"
    );
    assert_eq!(
        field(&a.load_generations().await.unwrap(), "component:acme.org/a"),
        Some(2 * per_tier as u64)
    );

    assert!(matches!(
        a.bump_generation(EPOCH_FIELD).await,
        Err(CacheError::InvalidInput(_))
    ));

    // Redis lost the hash (a restart without persistence): the next reader makes a new epoch.
    let mut raw = raw_connection(&url).await;
    let _: () = raw.del(format!("{prefix}:generations")).await.unwrap();
    let fresh = b.bump_generation("all").await.unwrap();
    let new_epoch = field(&fresh, EPOCH_FIELD).unwrap();
    assert_ne!(new_epoch, epoch);
    assert_eq!(field(&fresh, "all"), Some(1));
    assert_eq!(field(&fresh, "kind:descriptor"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_reach_other_tiers() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("pubsub");
    let prefix = keys.prefix.clone();
    let a = SharedTier::connect(config(&url, &prefix)).await.unwrap();
    let b = SharedTier::connect(config(&url, &prefix)).await.unwrap();
    let other_keys = SharedRedisPrefix::new("pubsub-other");
    let other_deployment = SharedTier::connect(config(&url, &other_keys.prefix))
        .await
        .unwrap();
    let mut events = a.subscribe();
    expect_event(&mut events, SharedEvent::Connected, Duration::from_secs(3)).await;
    let mut late = a.subscribe();
    assert_eq!(
        next_event(&mut late, Duration::from_secs(1)).await,
        Some(SharedEvent::Connected),
        "a receiver joining a live subscription hears Connected at once"
    );

    let message = InvalidationMessage {
        origin: "pod-b".to_string(),
        selector: SelectorMessage::ComponentVersion {
            name: "acme.org/a".to_string(),
            version: "1.0.0".to_string(),
        },
        generations: vec![
            ("epoch".to_string(), 5),
            ("version:acme.org/a@1.0.0".to_string(), 2),
        ],
    };
    other_deployment.publish(&message).await.unwrap();
    let sent = Instant::now();
    b.publish(&message).await.unwrap();
    let received = next_event(&mut events, Duration::from_secs(1)).await;
    assert_eq!(
        received,
        Some(SharedEvent::Invalidation(message.clone())),
        "other prefixes are not heard"
    );
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(
        next_event(&mut late, Duration::from_secs(1)).await,
        Some(SharedEvent::Invalidation(message))
    );

    // Garbage on the channel is ignored, not fatal.
    let mut raw = raw_connection(&url).await;
    let _: i64 = raw
        .publish(format!("{prefix}:invalidations"), "{not json")
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events, Duration::from_millis(200)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_answers_errors_fast_and_connect_still_returns() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    // nothing listens there: no keys to clean up, just a prefix of the test's own
    let tier_config = config(&url, &SharedRedisPrefix::new("down").prefix);
    let timeout = tier_config.operation_timeout;
    let started = Instant::now();
    let tier = SharedTier::connect(tier_config)
        .await
        .expect("a down Redis is no connect error");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "connect took {:?}",
        started.elapsed()
    );
    assert!(!tier.is_available());

    let id = entry_id(1);
    let entry = sample_entry(10);
    for round in 0..20 {
        let started = Instant::now();
        assert!(tier.get(&id).await.is_err());
        assert!(tier.put(&id, &entry, None).await.is_err());
        assert!(tier.delete(&id).await.is_err());
        assert!(tier.try_lease(&id).await.is_err());
        assert!(tier.load_generations().await.is_err());
        assert!(tier.bump_generation("all").await.is_err());
        let elapsed = started.elapsed();
        assert!(
            elapsed < timeout,
            "round {round}: six calls took {elapsed:?}"
        );
    }
    let mut events = tier.subscribe();
    assert_eq!(
        next_event(&mut events, Duration::from_millis(300)).await,
        None,
        "never connected"
    );

    assert!(matches!(
        SharedTier::connect(config("redis://127.0.0.1:notaport", "x")).await,
        Err(CacheError::InvalidInput(_))
    ));
    assert!(matches!(
        SharedTier::connect(config("redis://a:1,redis://b:2", "x")).await,
        Err(CacheError::InvalidInput(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_times_out_then_fails_fast_and_recovers() {
    let server = RedisServer::start().await;
    let tier = SharedTier::connect(SharedTierConfig {
        operation_timeout: Duration::from_millis(100),
        ..config(&server.url(), "stall")
    })
    .await
    .unwrap();
    let id = entry_id(1);
    assert!(tier.put(&id, &sample_entry(10), None).await.unwrap());

    let mut admin = raw_connection(&server.url()).await;
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "1500", "ALL"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    assert!(tier.get(&id).await.is_err());
    let first = started.elapsed();
    assert!(
        first < Duration::from_millis(200),
        "bounded by the operation timeout: {first:?}"
    );
    assert!(!tier.is_available());
    let started = Instant::now();
    assert!(tier.get(&id).await.is_err());
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "then fails fast: {:?}",
        started.elapsed()
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while !tier.is_available() {
        assert!(
            Instant::now() < deadline,
            "not available again after the pause"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tier.get(&id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_restart() {
    let mut server = RedisServer::start().await;
    let tier = SharedTier::connect(config(&server.url(), "restart"))
        .await
        .unwrap();
    let mut events = tier.subscribe();
    expect_event(&mut events, SharedEvent::Connected, Duration::from_secs(3)).await;
    let id = entry_id(1);
    let entry = sample_entry(100);
    assert!(tier.put(&id, &entry, None).await.unwrap());
    let epoch = field(&tier.load_generations().await.unwrap(), EPOCH_FIELD).unwrap();

    server.kill();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(3)).await,
        Some(SharedEvent::Disconnected)
    );
    assert!(!tier.is_available());
    let started = Instant::now();
    assert!(tier.get(&id).await.is_err());
    // a hang guard, not a latency budget: trying to connect would take the connect timeout
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "fails fast while down"
    );

    server.restart().await;
    let restarted = Instant::now();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        Some(SharedEvent::Connected)
    );
    eprintln!("reconnected {:?} after the restart", restarted.elapsed());
    assert!(
        tier.is_available(),
        "Connected implies the command connection works"
    );
    assert_eq!(
        tier.get(&id).await.unwrap(),
        None,
        "the restarted server kept nothing"
    );
    assert!(tier.put(&id, &entry, None).await.unwrap());
    assert_eq!(tier.get(&id).await.unwrap(), Some(entry));
    let new_epoch = field(&tier.load_generations().await.unwrap(), EPOCH_FIELD).unwrap();
    assert_ne!(
        new_epoch, epoch,
        "a lost generations hash means a new epoch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn becomes_available_when_redis_starts_later() {
    let port = RedisServer::reserve_port();
    let url = format!("redis://127.0.0.1:{port}");
    let tier = SharedTier::connect(config(&url, "late")).await.unwrap();
    assert!(!tier.is_available());
    assert!(tier.get(&entry_id(1)).await.is_err());

    let _server = RedisServer::start_on(port).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !tier.is_available() {
        assert!(
            Instant::now() < deadline,
            "the background probe did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entry = sample_entry(10);
    assert!(tier.put(&entry_id(1), &entry, None).await.unwrap());
    assert_eq!(tier.get(&entry_id(1)).await.unwrap(), Some(entry));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_mode_round_trip_lease_generations_and_pubsub() {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        // the config file lands in each node's own directory
        nodes.push(
            RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .await,
        );
    }
    let addresses: Vec<String> = nodes
        .iter()
        .map(|node| format!("127.0.0.1:{}", node.port()))
        .collect();
    let created = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output(),
    )
    .await
    .expect("cluster create finished")
    .expect("redis-cli on PATH");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &nodes {
        let mut connection = raw_connection(&node.url()).await;
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut connection)
                .await
                .unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster not ok: {info}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let url = nodes
        .iter()
        .map(RedisServer::url)
        .collect::<Vec<_>>()
        .join(",");
    let cluster_config = SharedTierConfig {
        cluster: true,
        ..config(&url, "cluster")
    };
    let a = SharedTier::connect(cluster_config.clone()).await.unwrap();
    let b = SharedTier::connect(cluster_config).await.unwrap();
    assert!(a.is_available() && b.is_available());

    // Sixteen ids land on all three nodes' slots.
    for n in 0..16 {
        let entry = sample_entry(100 + n as usize);
        assert!(a
            .put(&entry_id(n), &entry, Some(Duration::from_secs(30)))
            .await
            .unwrap());
        assert_eq!(b.get(&entry_id(n)).await.unwrap(), Some(entry));
    }
    b.delete(&entry_id(0)).await.unwrap();
    assert_eq!(a.get(&entry_id(0)).await.unwrap(), None);

    let lease = a.try_lease(&entry_id(5)).await.unwrap().unwrap();
    assert!(b.try_lease(&entry_id(5)).await.unwrap().is_none());
    a.release(&lease).await.unwrap();
    assert!(b.try_lease(&entry_id(5)).await.unwrap().is_some());

    let epoch = field(&a.load_generations().await.unwrap(), EPOCH_FIELD).unwrap();
    let bumped = b.bump_generation("kind:versions").await.unwrap();
    assert_eq!(field(&bumped, EPOCH_FIELD), Some(epoch));
    assert_eq!(field(&bumped, "kind:versions"), Some(1));

    let mut events = a.subscribe();
    expect_event(&mut events, SharedEvent::Connected, Duration::from_secs(3)).await;
    let message = InvalidationMessage {
        origin: "pod-b".to_string(),
        selector: SelectorMessage::Kind {
            kind: "versions".to_string(),
        },
        generations: bumped,
    };
    // Published through whichever node the cluster client picks; heard on the subscriber's node.
    for _ in 0..3 {
        b.publish(&message).await.unwrap();
        assert_eq!(
            next_event(&mut events, Duration::from_secs(1)).await,
            Some(SharedEvent::Invalidation(message.clone()))
        );
    }
}

/// Not an assertion: prints get/put latency of a 10 KiB value against the local Redis
/// (`cargo test -p odg-cache --release latency -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_of_10_kib_values_is_reported() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("latency");
    let prefix = keys.prefix.clone();
    let tier = SharedTier::connect(config(&url, &prefix)).await.unwrap();
    let entry = sample_entry(10 * 1024);
    let rounds = 500;
    let (mut puts, mut gets) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for n in 0..rounds {
        let id = entry_id((n % 64) as u8);
        let started = Instant::now();
        tier.put(&id, &entry, Some(Duration::from_secs(30)))
            .await
            .unwrap();
        puts.push(started.elapsed());
        let started = Instant::now();
        assert!(tier.get(&id).await.unwrap().is_some());
        gets.push(started.elapsed());
    }
    for (name, samples) in [("put", &mut puts), ("get", &mut gets)] {
        samples.sort_unstable();
        let mean = samples.iter().sum::<Duration>() / rounds as u32;
        eprintln!(
            "shared tier {name} 10 KiB: mean {mean:?}, p50 {:?}, p99 {:?}, max {:?}",
            samples[rounds / 2],
            samples[rounds * 99 / 100],
            samples[rounds - 1]
        );
    }
}
