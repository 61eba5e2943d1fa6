//! Hit latency per cache tier: the same value read through `TieredCache::get_or_load` with a
//! policy that keeps it in exactly one tier (memory, disk, or Redis), beside a miss that goes
//! to the loader every time (the no-cache baseline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use odg_cache::{
    CacheConfig, CacheError, CacheKey, CacheMode, CacheValue, DiskConfig, Kind, KindPolicy, Scope,
    SharedTierConfig, TieredCache,
};

use odg_test_support::RedisServer;

#[derive(Debug, clap::Args)]
pub struct TiersArgs {
    /// Reads per tier and value size.
    #[arg(long, default_value_t = 20_000)]
    reads: usize,
    /// Value sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "1024,10240,102400")]
    sizes: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Blob(Vec<u8>);

impl CacheValue for Blob {
    fn encode(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn decode(payload: &[u8]) -> Result<Self, String> {
        Ok(Blob(payload.to_vec()))
    }
    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.0.capacity()
    }
}

#[derive(Debug, Clone)]
struct Never;

impl From<CacheError> for Never {
    fn from(_: CacheError) -> Self {
        Never
    }
}

fn only(memory: bool, disk: bool, shared: bool) -> KindPolicy {
    KindPolicy {
        memory,
        disk,
        shared,
        ..KindPolicy::immutable()
    }
}

pub async fn run(args: TiersArgs) -> anyhow::Result<()> {
    let redis = RedisServer::start().await;
    let directory = tempfile::tempdir()?;
    let mut config = CacheConfig {
        memory_bytes: 256 << 20,
        disk: Some(DiskConfig {
            directory: directory.path().join("entries"),
            max_bytes: 1 << 30,
        }),
        shared: Some(SharedTierConfig::new(redis.url())),
        ..CacheConfig::default()
    };
    config
        .policies
        .insert("memory".into(), only(true, false, false));
    config
        .policies
        .insert("disk".into(), only(false, true, false));
    config
        .policies
        .insert("shared".into(), only(false, false, true));
    let cache = TieredCache::new(config).await?;
    println!(
        "## Cache hit latency per tier ({} reads each, one task, release build)\n",
        args.reads
    );
    println!("| value size | tier | p50 µs | p99 µs | reads/s of one task |");
    println!("|---|---|---|---|---|");
    for size in &args.sizes {
        for tier in ["memory", "disk", "shared", "no cache (loader every time)"] {
            let kind = if tier.starts_with("no cache") {
                "memory"
            } else {
                tier
            };
            let key = CacheKey::new(Kind::new(kind)?, &[&size.to_string()], Scope::none());
            let payload = Arc::new(vec![7u8; *size]);
            let mode = if tier.starts_with("no cache") {
                CacheMode::Bypass
            } else {
                CacheMode::Normal
            };
            // Fill once.
            let fill = payload.clone();
            cache
                .get_or_load::<Blob, Never, _, _>(&key, CacheMode::Normal, move || async move {
                    Ok(Blob((*fill).clone()))
                })
                .await
                .map_err(|_| anyhow::anyhow!("fill failed"))?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut latencies = Vec::with_capacity(args.reads);
            let mut busy = Duration::ZERO;
            for _ in 0..args.reads {
                // Let the previous read's fill task finish its writes, so that every read is a
                // fresh lookup in the tier rather than a join of the previous flight.
                tokio::time::sleep(Duration::from_micros(300)).await;
                let source = payload.clone();
                let begin = Instant::now();
                let value = cache
                    .get_or_load::<Blob, Never, _, _>(&key, mode, move || async move {
                        Ok(Blob((*source).clone()))
                    })
                    .await
                    .map_err(|_| anyhow::anyhow!("read failed"))?;
                latencies.push(begin.elapsed());
                busy += begin.elapsed();
                assert_eq!(value.0.len(), *size);
            }
            latencies.sort();
            let at = |fraction: f64| {
                latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)]
            };
            println!(
                "| {} KiB | {tier} | {:.1} | {:.1} | {:.0} |",
                size / 1024,
                at(0.5).as_secs_f64() * 1e6,
                at(0.99).as_secs_f64() * 1e6,
                args.reads as f64 / busy.as_secs_f64()
            );
        }
    }
    Ok(())
}
