//! Pruning: the score as pure arithmetic, then real Redis — the suite's server (override with
//! `ODG_TEST_REDIS_URL`) under a key prefix of each test's own, and a dedicated `redis-server`
//! child switched to an LFU policy for the hit counter.

use std::time::Duration;

use bytes::Bytes;
use redis::AsyncCommands;

use super::*;
use crate::entry::{encode_entry, StoredEntry};
use crate::generations::Stamp;
use crate::key::{Kind, Scope};
use odg_test_support::{shared_redis_url, SharedRedisPrefix};

const NOW_MS: u64 = 1_800_000_000_000;

fn sample(kind: &str, bytes: u64, age_seconds: u64, idle: Option<u64>) -> EntrySample {
    EntrySample {
        key: format!("p:entry:{kind}-{bytes}-{age_seconds}"),
        bytes,
        meta: Some(EntryMeta {
            kind: Kind::new(kind).unwrap(),
            scope: Scope::component_version("acme.org/a", "1.0.0"),
            stamp: Stamp::default(),
            created_at_ms: NOW_MS - age_seconds * 1000,
            fresh_until_ms: None,
            expires_at_ms: None,
        }),
        unreadable: false,
        idle_seconds: idle,
        lfu_counter: None,
    }
}

#[test]
fn the_score_weighs_cost_recency_age_frequency_and_size() {
    let weights = ScoreWeights::default();
    let score = |entry: &EntrySample| keep_score(entry, &weights, NOW_MS);
    let base = sample("descriptor", 4096, 60, Some(60));
    // Costlier to recompute: kept longer.
    assert!(score(&sample("dependencies", 4096, 60, Some(60))) > score(&base));
    assert!(score(&sample("versions", 4096, 60, Some(60))) < score(&base));
    // Idle one half-life: half the score.
    let idle = sample("descriptor", 4096, 60, Some(60 + 3600));
    assert!((score(&idle) / score(&base) - 0.5).abs() < 1e-9);
    // Older by one age half-life: half the score.
    let old = sample("descriptor", 4096, 60 + 7 * 24 * 3600, Some(60));
    assert!((score(&old) / score(&base) - 0.5).abs() < 1e-9);
    // Twice the bytes: half the score per byte; below 1 KiB counts as 1 KiB.
    let large = sample("descriptor", 8192, 60, Some(60));
    assert!((score(&large) / score(&base) - 0.5).abs() < 1e-9);
    assert_eq!(
        score(&sample("descriptor", 10, 60, Some(60))),
        score(&sample("descriptor", 1024, 60, Some(60)))
    );
    // More hits: kept longer; no counter at all is neutral.
    let mut hot = base.clone();
    hot.lfu_counter = Some(20);
    let mut cold = base.clone();
    cold.lfu_counter = Some(1);
    assert!(score(&hot) > score(&cold) && score(&cold) > score(&base));
    // Without an idle time, the age stands in.
    let no_idle = sample("descriptor", 4096, 3600, None);
    assert_eq!(
        score(&no_idle),
        score(&sample("descriptor", 4096, 3600, Some(3600)))
    );
    // Unknown kinds and unknown headers take the default cost.
    let mut unknown = base.clone();
    unknown.meta = None;
    assert!(score(&unknown) > 0.0);
}

#[test]
fn dead_entries_are_unreadable_expired_or_behind_the_generations() {
    let mut generations = Generations::default();
    generations.set_field("epoch", 7);
    generations.set_field("component:acme.org/a", 2);
    let mut entry = sample("descriptor", 100, 1, None);
    entry.meta.as_mut().unwrap().stamp = Stamp::from_array([7, 0, 0, 2, 0]);
    assert_eq!(dead_reason(&entry, Some(&generations), NOW_MS), None);
    assert_eq!(dead_reason(&entry, None, NOW_MS), None);
    let mut behind = entry.clone();
    behind.meta.as_mut().unwrap().stamp = Stamp::from_array([7, 0, 0, 1, 0]);
    assert_eq!(
        dead_reason(&behind, Some(&generations), NOW_MS),
        Some(DeadReason::Invalidated)
    );
    let mut other_epoch = entry.clone();
    other_epoch.meta.as_mut().unwrap().stamp = Stamp::from_array([6, 0, 0, 2, 0]);
    assert_eq!(
        dead_reason(&other_epoch, Some(&generations), NOW_MS),
        Some(DeadReason::Invalidated)
    );
    assert_eq!(
        dead_reason(&behind, None, NOW_MS),
        None,
        "without generations nothing is judged stale"
    );
    let mut expired = entry.clone();
    expired.meta.as_mut().unwrap().expires_at_ms = Some(NOW_MS - 1);
    assert_eq!(
        dead_reason(&expired, Some(&generations), NOW_MS),
        Some(DeadReason::Expired)
    );
    let mut unreadable = entry;
    unreadable.meta = None;
    unreadable.unreadable = true;
    assert_eq!(
        dead_reason(&unreadable, None, NOW_MS),
        Some(DeadReason::Unreadable)
    );
}

#[test]
fn glob_characters_in_the_prefix_are_literal() {
    assert_eq!(escape_glob("odg"), "odg");
    assert_eq!(escape_glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
}

// Real Redis.

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("test Redis reachable")
}

fn stored(kind: &str, component: &str, stamp: [u64; 5], payload_bytes: usize) -> Vec<u8> {
    encode_entry(&StoredEntry {
        meta: EntryMeta {
            kind: Kind::new(kind).unwrap(),
            scope: Scope::component_version(component, "1.0.0"),
            stamp: Stamp::from_array(stamp),
            created_at_ms: now_ms() - 1000,
            fresh_until_ms: None,
            expires_at_ms: None,
        },
        key_text: format!("{}:{component};", component.len()),
        payload: Bytes::from(vec![b'x'; payload_bytes]),
    })
}

/// `MEMORY USAGE` of a key.
async fn usage(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

async fn keys_under(connection: &mut redis::aio::MultiplexedConnection, pattern: &str) -> usize {
    let keys: Vec<String> = connection.keys(pattern).await.unwrap();
    keys.len()
}

#[tokio::test]
async fn prunes_dead_entries_then_the_lowest_scores_down_to_the_budget() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("prune-budget");
    let other_keys = SharedRedisPrefix::new("prune-other");
    let (prefix, other) = (keys.prefix.clone(), other_keys.prefix.clone());
    let mut redis = connection(&url).await;
    let live_stamp = [7, 0, 0, 0, 0];
    let _: () = redis
        .hset_multiple(
            format!("{prefix}:generations"),
            &[("epoch", 7u64), ("component:acme.org/stale", 1)],
        )
        .await
        .unwrap();
    for index in 0..10 {
        let _: () = redis
            .set(
                format!("{prefix}:entry:versions-{index:02}"),
                stored("versions", &format!("acme.org/v{index}"), live_stamp, 2000),
            )
            .await
            .unwrap();
        let _: () = redis
            .set(
                format!("{prefix}:entry:dependencies-{index:02}"),
                stored(
                    "dependencies",
                    &format!("acme.org/d{index}"),
                    live_stamp,
                    2000,
                ),
            )
            .await
            .unwrap();
    }
    // Dead: invalidated (component counter moved on), another epoch, unreadable.
    let _: () = redis
        .set(
            format!("{prefix}:entry:stale"),
            stored("descriptor", "acme.org/stale", live_stamp, 2000),
        )
        .await
        .unwrap();
    let _: () = redis
        .set(
            format!("{prefix}:entry:old-epoch"),
            stored("descriptor", "acme.org/x", [6, 0, 0, 0, 0], 2000),
        )
        .await
        .unwrap();
    let _: () = redis
        .set(format!("{prefix}:entry:garbage"), b"not an entry".to_vec())
        .await
        .unwrap();
    // Not entries, or not this prefix: never touched.
    let _: () = redis
        .set(format!("{prefix}:lease:abc"), "token")
        .await
        .unwrap();
    let _: () = redis
        .set(
            format!("{other}:entry:versions-00"),
            stored("versions", "acme.org/v0", live_stamp, 2000),
        )
        .await
        .unwrap();

    let mut total = 0u64;
    for index in 0..10 {
        for kind in ["versions", "dependencies"] {
            total += usage(&mut redis, &format!("{prefix}:entry:{kind}-{index:02}")).await;
        }
    }
    // Room for a bit more than the ten dependency graphs: every version list must go.
    let budget = total / 2 + 100;
    let mut config = PruneConfig::new(url.clone(), prefix.clone(), budget);
    config.batch = 7;
    config.dry_run = true;

    let dry = prune(&config).await.unwrap();
    assert_eq!(dry.entries_scanned, 23, "{dry:#?}");
    assert_eq!(dry.deleted_invalidated, 2, "{dry:#?}");
    assert_eq!(dry.deleted_unreadable, 1, "{dry:#?}");
    assert_eq!(dry.deleted_for_budget, 10, "{dry:#?}");
    assert!(dry.signals.generations && dry.signals.idle_time, "{dry:#?}");
    assert_eq!(
        keys_under(&mut redis, &format!("{prefix}:entry:*")).await,
        23,
        "a dry run deletes nothing"
    );

    config.dry_run = false;
    let report = prune(&config).await.unwrap();
    eprintln!("{report:#?}");
    assert_eq!(report.deleted(), dry.deleted(), "{report:#?}");
    assert!(report.bytes_after <= budget, "{report:#?}");
    assert_eq!(report.by_kind["versions"].deleted, 10, "{report:#?}");
    assert_eq!(report.by_kind["dependencies"].deleted, 0, "{report:#?}");
    assert!(report.highest_deleted_score < report.lowest_kept_score);
    assert_eq!(
        keys_under(&mut redis, &format!("{prefix}:entry:versions-*")).await,
        0
    );
    assert_eq!(
        keys_under(&mut redis, &format!("{prefix}:entry:dependencies-*")).await,
        10
    );
    assert_eq!(
        keys_under(&mut redis, &format!("{prefix}:entry:stale")).await,
        0
    );
    assert_eq!(
        keys_under(&mut redis, &format!("{prefix}:lease:*")).await,
        1
    );
    assert_eq!(
        keys_under(&mut redis, &format!("{prefix}:generations")).await,
        1
    );
    assert_eq!(keys_under(&mut redis, &format!("{other}:entry:*")).await, 1);

    // Within the budget now: a second run deletes nothing.
    let again = prune(&config).await.unwrap();
    assert_eq!(again.deleted(), 0, "{again:#?}");
}

#[tokio::test]
async fn recently_read_entries_outlive_idle_ones() {
    let url = shared_redis_url();
    let keys = SharedRedisPrefix::new("prune-idle");
    let prefix = keys.prefix.clone();
    let mut redis = connection(&url).await;
    for index in 0..6 {
        let _: () = redis
            .set(
                format!("{prefix}:entry:{index}"),
                stored(
                    "descriptor",
                    &format!("acme.org/c{index}"),
                    [1, 0, 0, 0, 0],
                    3000,
                ),
            )
            .await
            .unwrap();
    }
    // Redis' LRU clock ticks in whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for index in 0..3 {
        let _: Vec<u8> = redis.get(format!("{prefix}:entry:{index}")).await.unwrap();
    }
    let one = usage(&mut redis, &format!("{prefix}:entry:0")).await;
    let report = prune(&PruneConfig::new(url.clone(), prefix.clone(), 3 * one))
        .await
        .unwrap();
    assert_eq!(report.deleted_for_budget, 3, "{report:#?}");
    for index in 0..3 {
        assert_eq!(
            keys_under(&mut redis, &format!("{prefix}:entry:{index}")).await,
            1,
            "entry {index} was just read: {report:#?}"
        );
    }
}

#[tokio::test]
async fn under_an_lfu_policy_the_hit_counter_decides() {
    let server = odg_test_support::RedisServer::start().await;
    let url = server.url();
    let mut redis = connection(&url).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lfu")
        .query_async(&mut redis)
        .await
        .unwrap();
    let prefix = "lfu";
    for index in 0..6 {
        let _: () = redis
            .set(
                format!("{prefix}:entry:{index}"),
                stored(
                    "descriptor",
                    &format!("acme.org/c{index}"),
                    [1, 0, 0, 0, 0],
                    3000,
                ),
            )
            .await
            .unwrap();
    }
    for _ in 0..200 {
        for index in 3..6 {
            let _: Vec<u8> = redis.get(format!("{prefix}:entry:{index}")).await.unwrap();
        }
    }
    let one = usage(&mut redis, &format!("{prefix}:entry:0")).await;
    let report = prune(&PruneConfig::new(url.clone(), prefix, 3 * one))
        .await
        .unwrap();
    assert!(
        report.signals.hit_counter && !report.signals.idle_time,
        "{report:#?}"
    );
    assert_eq!(report.deleted_for_budget, 3, "{report:#?}");
    for index in 3..6 {
        assert_eq!(
            keys_under(&mut redis, &format!("{prefix}:entry:{index}")).await,
            1,
            "entry {index} was read 200 times: {report:#?}"
        );
    }
}

#[tokio::test]
async fn a_cluster_url_and_a_bad_prefix_are_refused() {
    let error = prune(&PruneConfig::new(
        "redis://127.0.0.1:7000,redis://127.0.0.1:7001",
        "odg",
        1,
    ))
    .await
    .unwrap_err();
    assert!(error.to_string().contains("cluster"), "{error}");
    assert!(prune(&PruneConfig::new(shared_redis_url(), "", 1))
        .await
        .is_err());
    let config = PruneConfig::new("redis://:hunter2@127.0.0.1:1", "odg", 1);
    assert!(!format!("{config:?}").contains("hunter2"));
}
