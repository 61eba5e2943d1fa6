//! The tiered cache end to end: single-flight, modes, stale-while-revalidate, invalidation races,
//! restart from disk, and two "pods" sharing a real Redis.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use odg_cache::{
    CacheConfig, CacheError, CacheKey, CacheMode, CacheValue, DiskConfig, Kind, KindPolicy, Scope,
    Selector, SharedTierConfig, TieredCache,
};

#[derive(Debug, Clone, PartialEq)]
struct Text(String);

impl CacheValue for Text {
    fn encode(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode(payload: &[u8]) -> Result<Self, String> {
        String::from_utf8(payload.to_vec())
            .map(Text)
            .map_err(|e| e.to_string())
    }
    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.0.capacity()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct LoadError(String);

impl From<CacheError> for LoadError {
    fn from(error: CacheError) -> Self {
        LoadError(error.to_string())
    }
}

fn key(kind: &str, name: &str) -> CacheKey {
    CacheKey::new(
        Kind::new(kind).unwrap(),
        &[name],
        Scope::component_version(name, "1.0.0"),
    )
}

fn config() -> CacheConfig {
    let mut config = CacheConfig {
        memory_bytes: 8 * 1024 * 1024,
        fleet_wait: Duration::from_secs(5),
        ..CacheConfig::default()
    };
    config.policies.insert(
        "versions".into(),
        KindPolicy::mutable(Duration::from_millis(200), Duration::from_secs(30)),
    );
    config
}

fn shared_config(prefix: &str) -> SharedTierConfig {
    SharedTierConfig {
        url: "redis://127.0.0.1:6379".into(),
        key_prefix: prefix.into(),
        ..SharedTierConfig::default()
    }
}

fn unique_prefix() -> String {
    format!("odg-test-{:016x}", rand::random::<u64>())
}

/// A loader that counts its calls and answers after `delay`.
fn counting_loader(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    answer: &str,
) -> impl FnOnce() -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Text, LoadError>> + Send>,
> + Send
       + 'static {
    let calls = calls.clone();
    let answer = answer.to_string();
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await; // under test: a slow origin
            Ok(Text(answer))
        })
    }
}

/// A loader that counts its calls, says when it has started, and answers only once released:
/// tests order events by what they observe, not by how long they sleep.
struct GatedLoader {
    started: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

type BoxedLoad =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Text, LoadError>> + Send>>;

fn gated_loader(
    calls: &Arc<AtomicUsize>,
    answer: &str,
) -> (impl FnOnce() -> BoxedLoad + Send + 'static, GatedLoader) {
    let (started_sender, started) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let calls = calls.clone();
    let answer = answer.to_string();
    let loader = move || -> BoxedLoad {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let _ = started_sender.send(());
            let _ = released.await;
            Ok(Text(answer))
        })
    };
    (loader, GatedLoader { started, release })
}

/// Polls `read` until it gives `expected`; the deadline only turns a hang into a failure.
async fn eventually(expected: &str, mut read: impl AsyncFnMut() -> Text) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = read().await;
        if value == Text(expected.into()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still {value:?}");
        tokio::task::yield_now().await;
        // polling, not ordering: the background refresh is observed through its result
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn concurrent_misses_load_once_and_then_hit_memory() {
    let cache = TieredCache::new(config()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("descriptor", "acme.org/a");
    let requests = (0..100).map(|_| {
        let cache = cache.clone();
        let key = key.clone();
        let loader = counting_loader(&calls, Duration::from_millis(50), "v1");
        tokio::spawn(async move {
            cache
                .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, loader)
                .await
        })
    });
    for request in futures::future::join_all(requests).await {
        assert_eq!(*request.unwrap().unwrap(), Text("v1".into()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let again = cache
        .get_or_load::<Text, LoadError, _, _>(
            &key,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "v2"),
        )
        .await
        .unwrap();
    assert_eq!(*again, Text("v1".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn errors_are_shared_by_waiters_and_not_cached() {
    let cache = TieredCache::new(config()).await.unwrap();
    let key = key("descriptor", "acme.org/failing");
    let calls = Arc::new(AtomicUsize::new(0));
    let requests = (0..20).map(|_| {
        let cache = cache.clone();
        let key = key.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            cache
                .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await; // under test: a slow origin
                    Err(LoadError("registry down".into()))
                })
                .await
        })
    });
    for request in futures::future::join_all(requests).await {
        assert_eq!(
            request.unwrap().unwrap_err(),
            LoadError("registry down".into())
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let value = cache
        .get_or_load::<Text, LoadError, _, _>(
            &key,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "ok"),
        )
        .await
        .unwrap();
    assert_eq!(*value, Text("ok".into()));
}

#[tokio::test]
async fn refresh_skips_the_lookup_but_stores_and_bypass_does_neither() {
    let cache = TieredCache::new(config()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("descriptor", "acme.org/modes");
    let load = |answer: &str| counting_loader(&calls, Duration::ZERO, answer);
    assert_eq!(
        *cache
            .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, load("v1"))
            .await
            .unwrap(),
        Text("v1".into())
    );
    assert_eq!(
        *cache
            .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Bypass, load("v2"))
            .await
            .unwrap(),
        Text("v2".into())
    );
    assert_eq!(
        *cache
            .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, load("v3"))
            .await
            .unwrap(),
        Text("v1".into())
    );
    assert_eq!(
        *cache
            .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Refresh, load("v4"))
            .await
            .unwrap(),
        Text("v4".into())
    );
    assert_eq!(
        *cache
            .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, load("v5"))
            .await
            .unwrap(),
        Text("v4".into())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn stale_values_are_served_while_one_refresh_runs() {
    let cache = TieredCache::new(config()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("versions", "acme.org/list");
    let first = cache
        .get_or_load::<Text, LoadError, _, _>(
            &key,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "old"),
        )
        .await
        .unwrap();
    assert_eq!(*first, Text("old".into()));
    // the soft TTL (200 ms) running out is the thing under test
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Past the soft TTL: answered with the stale value while one refresh runs in the background,
    // held open until every request below has been answered.
    let (refresh, gate) = gated_loader(&calls, "new");
    let value = cache
        .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, refresh)
        .await
        .unwrap();
    assert_eq!(*value, Text("old".into()));
    gate.started.await.unwrap();
    for _ in 0..10 {
        let value = cache
            .get_or_load::<Text, LoadError, _, _>(
                &key,
                CacheMode::Normal,
                counting_loader(&calls, Duration::ZERO, "not-called"),
            )
            .await
            .unwrap();
        assert_eq!(*value, Text("old".into()));
    }
    gate.release.send(()).unwrap();
    eventually("new", async || {
        let value = cache
            .get_or_load::<Text, LoadError, _, _>(
                &key,
                CacheMode::Normal,
                counting_loader(&calls, Duration::ZERO, "newer"),
            )
            .await
            .unwrap();
        (*value).clone()
    })
    .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one initial load, one refresh"
    );
}

#[tokio::test]
async fn a_fill_that_straddles_an_invalidation_is_not_stored() {
    let cache = TieredCache::new(config()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("descriptor", "acme.org/race");
    let (loader, gate) = gated_loader(&calls, "before-invalidation");
    let slow = {
        let cache = cache.clone();
        let key = key.clone();
        tokio::spawn(async move {
            cache
                .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, loader)
                .await
        })
    };
    gate.started.await.unwrap();
    cache
        .invalidate(&Selector::component("acme.org/race"))
        .await
        .unwrap();
    gate.release.send(()).unwrap();
    assert_eq!(
        *slow.await.unwrap().unwrap(),
        Text("before-invalidation".into())
    );
    let value = cache
        .get_or_load::<Text, LoadError, _, _>(
            &key,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "after"),
        )
        .await
        .unwrap();
    assert_eq!(*value, Text("after".into()));
}

#[tokio::test]
async fn invalidation_selectors_drop_exactly_their_entries() {
    let cache = TieredCache::new(config()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let a = key("descriptor", "acme.org/a");
    let b = key("descriptor", "acme.org/b");
    for key in [&a, &b] {
        cache
            .get_or_load::<Text, LoadError, _, _>(
                key,
                CacheMode::Normal,
                counting_loader(&calls, Duration::ZERO, "x"),
            )
            .await
            .unwrap();
    }
    let report = cache
        .invalidate(&Selector::component_version("acme.org/a", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(report.memory_entries, 1);
    assert!(!report.published);
    let report = cache.invalidate(&Selector::Id(b.id())).await.unwrap();
    assert_eq!(report.memory_entries, 1);
    assert_eq!(cache.memory().len(), 0);
}

#[tokio::test]
async fn entries_survive_a_restart_on_disk_and_invalidations_too() {
    let directory = tempfile::tempdir().unwrap();
    let disk_config = || {
        let mut config = config();
        config.disk = Some(DiskConfig {
            directory: directory.path().join("entries"),
            max_bytes: 16 * 1024 * 1024,
        });
        config.state_directory = Some(directory.path().to_path_buf());
        config
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let kept = key("descriptor", "acme.org/kept");
    let dropped = key("descriptor", "acme.org/dropped");
    {
        let cache = TieredCache::new(disk_config()).await.unwrap();
        for key in [&kept, &dropped] {
            cache
                .get_or_load::<Text, LoadError, _, _>(
                    key,
                    CacheMode::Normal,
                    counting_loader(&calls, Duration::ZERO, "disk"),
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // under test: a slow origin
        cache
            .invalidate(&Selector::component("acme.org/dropped"))
            .await
            .unwrap();
    }
    let cache = TieredCache::new(disk_config()).await.unwrap();
    let value = cache
        .get_or_load::<Text, LoadError, _, _>(
            &kept,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "reloaded"),
        )
        .await
        .unwrap();
    assert_eq!(
        *value,
        Text("disk".into()),
        "served from disk after the restart"
    );
    let value = cache
        .get_or_load::<Text, LoadError, _, _>(
            &dropped,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "reloaded"),
        )
        .await
        .unwrap();
    assert_eq!(
        *value,
        Text("reloaded".into()),
        "the invalidation outlived the restart"
    );
}

#[tokio::test]
async fn two_pods_share_redis_load_once_and_see_each_others_invalidations() {
    let prefix = unique_prefix();
    let pod = |name: &str| {
        let mut config = config();
        config.shared = Some(shared_config(&prefix));
        config.pod_id = name.to_string();
        TieredCache::new(config)
    };
    let (a, b) = (pod("a").await.unwrap(), pod("b").await.unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("descriptor", "acme.org/fleet");

    // Both pods miss at once: the fleet lease makes one of them load.
    let loads = [&a, &b, &a, &b].map(|cache| {
        let cache = cache.clone();
        let key = key.clone();
        let loader = counting_loader(&calls, Duration::from_millis(200), "fleet-v1");
        tokio::spawn(async move {
            cache
                .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, loader)
                .await
        })
    });
    for load in futures::future::join_all(loads).await {
        assert_eq!(*load.unwrap().unwrap(), Text("fleet-v1".into()));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one origin load for the fleet"
    );

    // An invalidation through pod a reaches pod b's memory tier.
    let report = a
        .invalidate(&Selector::component("acme.org/fleet"))
        .await
        .unwrap();
    assert!(report.published);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !b.memory().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await; // polling: until the invalidation message arrives
    }
    let value = b
        .get_or_load::<Text, LoadError, _, _>(
            &key,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "fleet-v2"),
        )
        .await
        .unwrap();
    assert_eq!(*value, Text("fleet-v2".into()));
}

#[tokio::test]
async fn redis_down_means_local_tiers_and_origin_and_a_clear_invalidation_error() {
    let mut config = config();
    config.shared = Some(SharedTierConfig {
        url: "redis://127.0.0.1:1".into(),
        key_prefix: unique_prefix(),
        ..SharedTierConfig::default()
    });
    let started = std::time::Instant::now();
    let cache = TieredCache::new(config).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("descriptor", "acme.org/offline");
    for _ in 0..3 {
        let value = cache
            .get_or_load::<Text, LoadError, _, _>(
                &key,
                CacheMode::Normal,
                counting_loader(&calls, Duration::ZERO, "local"),
            )
            .await
            .unwrap();
        assert_eq!(*value, Text("local".into()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let error = cache
        .invalidate(&Selector::component("acme.org/offline"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CacheError::SharedUnavailable(_)),
        "{error:?}"
    );
    assert_eq!(
        cache.memory().len(),
        0,
        "the local tiers were purged all the same"
    );
}

#[tokio::test]
async fn a_kind_kept_only_on_disk_is_read_from_disk_every_time() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = config();
    config.disk = Some(DiskConfig {
        directory: directory.path().join("entries"),
        max_bytes: 16 * 1024 * 1024,
    });
    config.policies.insert(
        "disk-only".into(),
        KindPolicy {
            memory: false,
            disk: true,
            shared: false,
            ..KindPolicy::immutable()
        },
    );
    let cache = TieredCache::new(config).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("disk-only", "acme.org/on-disk");
    for _ in 0..5 {
        let value = cache
            .get_or_load::<Text, LoadError, _, _>(
                &key,
                CacheMode::Normal,
                counting_loader(&calls, Duration::ZERO, "v"),
            )
            .await
            .unwrap();
        assert_eq!(*value, Text("v".into()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.memory().len(), 0);
    // The disk write follows the answer; give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while cache.disk().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await; // polling: until the disk write lands
    }
    assert_eq!(cache.disk().unwrap().len(), 1);
}

#[tokio::test]
async fn a_request_after_an_invalidation_never_joins_an_older_flight() {
    let cache = TieredCache::new(config()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let key = key("descriptor", "acme.org/joined");
    let (loader, gate) = gated_loader(&calls, "old");
    let old = {
        let cache = cache.clone();
        let key = key.clone();
        tokio::spawn(async move {
            cache
                .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, loader)
                .await
        })
    };
    gate.started.await.unwrap();
    cache
        .invalidate(&Selector::component("acme.org/joined"))
        .await
        .unwrap();
    // the old flight is still running (held by its gate): a new request must not join it
    let new = cache
        .get_or_load::<Text, LoadError, _, _>(
            &key,
            CacheMode::Normal,
            counting_loader(&calls, Duration::ZERO, "new"),
        )
        .await
        .unwrap();
    assert_eq!(*new, Text("new".into()));
    gate.release.send(()).unwrap();
    assert_eq!(*old.await.unwrap().unwrap(), Text("old".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Records, for every event, the names of the spans it happened in (innermost first).
#[derive(Clone, Default)]
struct SpanScopes(Arc<std::sync::Mutex<Vec<Vec<String>>>>);

impl<S> tracing_subscriber::Layer<S> for SpanScopes
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let names = context
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_string()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().push(names);
    }
}

/// The fill task is detached (it outlives a caller that gives up), but what its loader logs
/// stays inside the span of the request that started it.
#[tokio::test(flavor = "current_thread")]
async fn a_detached_fill_carries_the_span_of_the_request_that_led_it() {
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    let scopes = SpanScopes::default();
    let subscriber = tracing_subscriber::registry().with(scopes.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let cache = TieredCache::new(config()).await.unwrap();
    let key = key("descriptor", "acme.org/traced");
    let loader = || async {
        tracing::info!("loading from the origin");
        Ok::<_, LoadError>(Text("v1".into()))
    };
    cache
        .get_or_load::<Text, LoadError, _, _>(&key, CacheMode::Normal, loader)
        .instrument(tracing::info_span!("request", request_id = "r-1"))
        .await
        .unwrap();

    let recorded = scopes.0.lock().unwrap().clone();
    let load_event = recorded
        .iter()
        .find(|scope| scope.first().is_some_and(|name| name == "cache_fill"))
        .unwrap_or_else(|| panic!("no event inside a cache_fill span: {recorded:?}"));
    assert!(
        load_event.contains(&"request".to_string()),
        "{load_event:?}"
    );
}

/// Each tier's curve sees the stream that reaches it: memory every lookup, disk the memory
/// tier's misses. Twenty keys looked up three times each: a third of the memory tier's lookups
/// miss at any size (the first of each key), every disk lookup is a first one.
#[tokio::test]
async fn miss_ratio_curves_follow_each_tiers_stream() {
    let directory = tempfile::tempdir().unwrap();
    let mut config = config();
    config.disk = Some(DiskConfig {
        directory: directory.path().to_path_buf(),
        max_bytes: 64 * 1024 * 1024,
    });
    config
        .policies
        .insert("descriptor".into(), KindPolicy::immutable());
    let cache = TieredCache::new(config).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for _round in 0..3 {
        for index in 0..20 {
            let value: Arc<Text> = cache
                .get_or_load(
                    &key("descriptor", &format!("component-{index}")),
                    CacheMode::Normal,
                    counting_loader(&calls, Duration::ZERO, "value"),
                )
                .await
                .unwrap();
            assert_eq!(value.0, "value");
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 20);
    let report = cache.miss_ratio_curves().unwrap();
    let tier = |name: &str| {
        report
            .tiers
            .iter()
            .find(|tier| tier.tier == name)
            .unwrap()
            .clone()
    };
    let memory = tier("memory");
    assert_eq!(memory.bound_bytes, Some(8 * 1024 * 1024));
    let curve = |tier: &odg_cache::TierReport, kind: &str| {
        tier.kinds
            .iter()
            .find(|curve| curve.kind == kind)
            .unwrap()
            .curve
            .clone()
    };
    for kind in ["all", "descriptor"] {
        let memory_curve = curve(&memory, kind);
        assert_eq!(memory_curve.references, 60.0);
        assert_eq!(memory_curve.sampled_references, 60);
        assert_eq!(memory_curve.cold_references, 20.0);
        // the memory tier's model is the miniature simulations of quick_cache: the twenty
        // entries fit at every simulated bound (0.25x..8x), so only first lookups miss
        assert_eq!(memory_curve.model(), "simulated");
        assert_eq!(memory_curve.simulated.len(), 21);
        for bytes in [2.0 * 1024.0 * 1024.0, 8.0 * 1024.0 * 1024.0, 1e9] {
            let ratio = memory_curve.miss_ratio_at(bytes).unwrap();
            assert!((ratio - 1.0 / 3.0).abs() < 1e-9, "{bytes}: {ratio}");
        }
        // the LRU histogram is still there: the same at large sizes, and below one entry's
        // weight nothing hits
        let large = memory_curve.lru_miss_ratio_at(1e9).unwrap();
        assert!((large - 1.0 / 3.0).abs() < 1e-9, "{large}");
        assert_eq!(memory_curve.lru_miss_ratio_at(100.0), Some(1.0));
        assert!(memory_curve.working_set_bytes > 20.0 * 500.0);

        let disk_curve = curve(&tier("disk"), kind);
        assert_eq!(disk_curve.references, 20.0);
        assert_eq!(disk_curve.model(), "lru");
        assert_eq!(disk_curve.miss_ratio_at(1e9), Some(1.0));
    }
    // `versions` is configured, but was not looked up
    assert_eq!(curve(&memory, "versions").references, 0.0);
    assert!(report.tiers.iter().all(|tier| tier.tier != "shared"));
}

#[tokio::test]
async fn miss_ratio_curves_can_be_switched_off() {
    let cache = TieredCache::new(CacheConfig {
        miss_ratio_curve_keys: None,
        ..config()
    })
    .await
    .unwrap();
    assert!(cache.miss_ratio_curves().is_none());
    cache.export_miss_ratio_curve_metrics();
}
