//! Pruning the shared tier to a byte budget: a batch job (`odg cache-manager`), never on a
//! request's path.
//!
//! One pass over `<prefix>:entry:*` (SCAN, pipelined batches) reads per entry: its size
//! (`MEMORY USAGE`, what Redis really spends on it, key included), how long since it was last
//! read or written (`OBJECT IDLETIME`, available unless the server runs an LFU eviction policy),
//! its hit counter (`OBJECT FREQ`, Redis' logarithmic LFU counter, available only under an LFU
//! policy), and the header of its envelope (`GETRANGE`: kind, scope, generation stamp, created and
//! expiry times; see `entry.rs`). Nothing else under the prefix (leases, generations) is touched.
//!
//! Then, in this order:
//! 1. Dead entries go whatever the budget: an unreadable envelope, an entry past its expiry, or
//!    one whose stamp is behind the fleet's generation counters (invalidated: no pod would serve
//!    it again). Generations are only judged when the `<prefix>:generations` hash has its epoch.
//! 2. While the remaining entries hold more than the budget, the one with the lowest keep score
//!    goes first (see [`keep_score`]).
//!
//! Where the server supports it (Redis/Valkey >= 7.2), the connection runs `CLIENT NO-TOUCH ON`
//! so reading headers does not reset idle times; on older servers a header read counts as an
//! access, so idle times measure "since the last read or prune run" (reported as
//! `touch_free: false`). Deleting uses UNLINK. An entry rewritten between the scan and the delete
//! is lost once more: a cache miss, no harm.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use serde::Serialize;

use crate::entry::{decode_entry_header, EntryDecodeError, EntryMeta};
use crate::generations::{Generations, EPOCH_FIELD};
use crate::CacheError;

/// Bytes of an entry read to decode its header: the fixed fields take 74 bytes plus the kind and
/// scope (component name and version); longer scopes count as "header unknown", not as unreadable.
const HEADER_READ_BYTES: usize = 4096;
/// Entries below this size are scored as if they had it, so tiny entries do not look infinitely
/// valuable per byte.
const MIN_SCORED_BYTES: u64 = 1024;

/// How an entry's keep score is computed; see [`keep_score`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreWeights {
    /// Relative cost to recompute an entry of a kind (a dependency graph walks a whole tree, a
    /// descriptor is a manifest and a blob, a version list one tag listing and short-lived anyway).
    pub kind_costs: BTreeMap<String, f64>,
    /// The cost of kinds not listed, and of entries whose header could not be read.
    pub default_cost: f64,
    /// After this long without a read, an entry's recency factor halves.
    pub idle_half_life: Duration,
    /// After this long since it was written, an entry's youth factor halves.
    pub age_half_life: Duration,
}

impl Default for ScoreWeights {
    fn default() -> ScoreWeights {
        ScoreWeights {
            kind_costs: BTreeMap::from([
                ("dependencies".to_string(), 16.0),
                ("descriptor".to_string(), 4.0),
                ("versions".to_string(), 1.0),
            ]),
            default_cost: 2.0,
            idle_half_life: Duration::from_secs(3600),
            age_half_life: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What one pruning run does.
#[derive(Clone)]
pub struct PruneConfig {
    /// One server: `redis://[user:password@]host:port/db`. Never logged.
    pub url: String,
    pub key_prefix: String,
    /// The entries of this prefix may use at most this many bytes of Redis memory afterwards.
    pub budget_bytes: u64,
    pub weights: ScoreWeights,
    /// Report what would go, delete nothing.
    pub dry_run: bool,
    /// SCAN COUNT and pipeline batch size.
    pub batch: usize,
    /// Bound of every call (a batch of a few hundred commands is one call).
    pub operation_timeout: Duration,
}

impl PruneConfig {
    pub fn new(url: impl Into<String>, key_prefix: impl Into<String>, budget_bytes: u64) -> Self {
        PruneConfig {
            url: url.into(),
            key_prefix: key_prefix.into(),
            budget_bytes,
            weights: ScoreWeights::default(),
            dry_run: false,
            batch: 256,
            operation_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for PruneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PruneConfig")
            .field("url", &crate::shared::redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("budget_bytes", &self.budget_bytes)
            .field("weights", &self.weights)
            .field("dry_run", &self.dry_run)
            .field("batch", &self.batch)
            .finish()
    }
}

/// What was read of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EntrySample {
    pub key: String,
    /// `MEMORY USAGE` (value, key and Redis' overhead).
    pub bytes: u64,
    /// The decoded header; `None` when it did not fit in the bytes read.
    pub meta: Option<EntryMeta>,
    /// Set when the envelope is not an entry of this format at all.
    pub unreadable: bool,
    /// Seconds since the last access (`OBJECT IDLETIME`), where the server tells.
    pub idle_seconds: Option<u64>,
    /// Redis' logarithmic LFU counter (`OBJECT FREQ`), where the server tells.
    pub lfu_counter: Option<u64>,
}

/// Why an entry goes regardless of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    Unreadable,
    Expired,
    /// Its stamp is behind the generation counters: invalidated.
    Invalidated,
}

/// Why `entry` is dead, if it is. `generations`: the fleet's counters, when known.
pub fn dead_reason(
    entry: &EntrySample,
    generations: Option<&Generations>,
    now_ms: u64,
) -> Option<DeadReason> {
    if entry.unreadable {
        return Some(DeadReason::Unreadable);
    }
    let meta = entry.meta.as_ref()?;
    if meta.expires_at_ms.is_some_and(|expires| now_ms >= expires) {
        return Some(DeadReason::Expired);
    }
    let generations = generations?;
    (generations.stamp(&meta.kind, &meta.scope) != meta.stamp).then_some(DeadReason::Invalidated)
}

/// The value of keeping an entry per KiB it costs; the lowest goes first.
///
/// `keep = cost(kind) × frequency × recency × youth / size_kib`, where
/// - `cost(kind)`: [`ScoreWeights::kind_costs`], the relative work to recompute it;
/// - `frequency = 1 + ln(1 + hits)`, `hits` being Redis' logarithmic LFU counter; where the
///   server keeps none, every entry gets the same factor;
/// - `recency = 2^(−idle / idle_half_life)`; where the server keeps no idle time, the age stands in;
/// - `youth = 2^(−age / age_half_life)`, age counted from the entry's creation;
/// - `size_kib = max(bytes, 1 KiB) / 1 KiB`: per byte, since the budget is in bytes.
pub fn keep_score(entry: &EntrySample, weights: &ScoreWeights, now_ms: u64) -> f64 {
    let cost = entry
        .meta
        .as_ref()
        .and_then(|meta| weights.kind_costs.get(meta.kind.as_str()))
        .copied()
        .unwrap_or(weights.default_cost);
    let age_seconds = entry.meta.as_ref().map_or(0.0, |meta| {
        now_ms.saturating_sub(meta.created_at_ms) as f64 / 1000.0
    });
    let idle_seconds = entry.idle_seconds.map_or(age_seconds, |idle| idle as f64);
    let frequency = 1.0 + (entry.lfu_counter.unwrap_or(0) as f64).ln_1p();
    let recency = half_life_factor(idle_seconds, weights.idle_half_life);
    let youth = half_life_factor(age_seconds, weights.age_half_life);
    let size_kib = entry.bytes.max(MIN_SCORED_BYTES) as f64 / 1024.0;
    cost * frequency * recency * youth / size_kib
}

fn half_life_factor(seconds: f64, half_life: Duration) -> f64 {
    let half_life = half_life.as_secs_f64();
    if half_life <= 0.0 {
        return 1.0;
    }
    0.5f64.powf(seconds / half_life)
}

/// Entries and bytes of one kind (`unknown` when the header was not read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindTotals {
    pub entries: u64,
    pub bytes: u64,
    pub deleted: u64,
    pub bytes_deleted: u64,
}

/// Which signals the server provided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneSignals {
    /// `OBJECT IDLETIME` answered (not under an LFU policy).
    pub idle_time: bool,
    /// `OBJECT FREQ` answered (only under an LFU policy).
    pub hit_counter: bool,
    /// `CLIENT NO-TOUCH` is on: header reads did not count as accesses.
    pub touch_free: bool,
    /// The generations hash was there, so invalidated entries could be told.
    pub generations: bool,
}

/// What a run found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub budget_bytes: u64,
    pub entries_scanned: u64,
    pub bytes_scanned: u64,
    pub deleted_unreadable: u64,
    pub deleted_expired: u64,
    pub deleted_invalidated: u64,
    pub deleted_for_budget: u64,
    pub bytes_deleted: u64,
    /// What the entries hold afterwards (as scanned, less what was deleted).
    pub bytes_after: u64,
    pub entries_after: u64,
    /// The keep score of the best entry deleted for the budget, and of the worst one kept.
    pub highest_deleted_score: Option<f64>,
    pub lowest_kept_score: Option<f64>,
    pub signals: PruneSignals,
    pub by_kind: BTreeMap<String, KindTotals>,
}

impl PruneReport {
    pub fn deleted(&self) -> u64 {
        self.deleted_unreadable
            + self.deleted_expired
            + self.deleted_invalidated
            + self.deleted_for_budget
    }
}

/// Scans the prefix's entries, deletes the dead ones, then the lowest scores until the rest fits
/// the budget. Single server only (a cluster would be scanned node by node; not supported yet).
pub async fn prune(config: &PruneConfig) -> Result<PruneReport, CacheError> {
    if config.url.contains(',') {
        return Err(CacheError::InvalidInput(
            "pruning supports one Redis server, not a cluster node list".to_string(),
        ));
    }
    if config.key_prefix.is_empty() || config.key_prefix.contains(char::is_whitespace) {
        return Err(CacheError::InvalidInput(
            "key prefix must be non-empty, without whitespace".to_string(),
        ));
    }
    let redacted = crate::shared::redact_url(&config.url);
    let failed = |what: &str, error: redis::RedisError| {
        CacheError::SharedUnavailable(format!("prune {what} on {redacted}: {error}"))
    };
    let client = redis::Client::open(config.url.as_str())
        .map_err(|error| CacheError::InvalidInput(format!("Redis URL {redacted}: {error}")))?;
    let connection_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.operation_timeout))
        .set_response_timeout(Some(config.operation_timeout));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&connection_config)
        .await
        .map_err(|error| failed("connect", error))?;

    let mut report = PruneReport {
        dry_run: config.dry_run,
        budget_bytes: config.budget_bytes,
        ..PruneReport::default()
    };
    report.signals.touch_free = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("ON")
        .query_async::<()>(&mut connection)
        .await
        .is_ok();
    let generations = load_generations(&mut connection, &config.key_prefix)
        .await
        .map_err(|error| failed("HGETALL generations", error))?;
    report.signals.generations = generations.is_some();

    let now_ms = now_ms();
    let pattern = format!("{}:entry:*", escape_glob(&config.key_prefix));
    let batch = config.batch.max(1);
    let mut dead: Vec<(EntrySample, DeadReason)> = Vec::new();
    let mut live: Vec<(EntrySample, f64)> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(batch)
            .query_async(&mut connection)
            .await
            .map_err(|error| failed("SCAN", error))?;
        if !keys.is_empty() {
            let samples = sample_entries(&mut connection, keys)
                .await
                .map_err(|error| failed("reading entries", error))?;
            for sample in samples {
                report.signals.idle_time |= sample.idle_seconds.is_some();
                report.signals.hit_counter |= sample.lfu_counter.is_some();
                report.entries_scanned += 1;
                report.bytes_scanned += sample.bytes;
                let totals = report.by_kind.entry(kind_label(&sample)).or_default();
                totals.entries += 1;
                totals.bytes += sample.bytes;
                match dead_reason(&sample, generations.as_ref(), now_ms) {
                    Some(reason) => dead.push((sample, reason)),
                    None => {
                        let score = keep_score(&sample, &config.weights, now_ms);
                        live.push((sample, score));
                    }
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }

    // Lowest keep score first; ties: the larger entry first, then by key for a stable order.
    live.sort_by(|(a, score_a), (b, score_b)| {
        score_a
            .total_cmp(score_b)
            .then(b.bytes.cmp(&a.bytes))
            .then(a.key.cmp(&b.key))
    });
    let live_bytes: u64 = live.iter().map(|(sample, _)| sample.bytes).sum();
    let mut to_free = live_bytes.saturating_sub(config.budget_bytes);
    let mut doomed: Vec<&EntrySample> = Vec::new();
    for (sample, reason) in &dead {
        match reason {
            DeadReason::Unreadable => report.deleted_unreadable += 1,
            DeadReason::Expired => report.deleted_expired += 1,
            DeadReason::Invalidated => report.deleted_invalidated += 1,
        }
        doomed.push(sample);
    }
    let mut kept_from = 0;
    for (index, (sample, score)) in live.iter().enumerate() {
        if to_free == 0 {
            break;
        }
        to_free = to_free.saturating_sub(sample.bytes);
        report.deleted_for_budget += 1;
        report.highest_deleted_score = Some(*score);
        doomed.push(sample);
        kept_from = index + 1;
    }
    report.lowest_kept_score = live.get(kept_from).map(|(_, score)| *score);
    for sample in &doomed {
        report.bytes_deleted += sample.bytes;
        let totals = report.by_kind.entry(kind_label(sample)).or_default();
        totals.deleted += 1;
        totals.bytes_deleted += sample.bytes;
    }
    report.bytes_after = report.bytes_scanned - report.bytes_deleted;
    report.entries_after = report.entries_scanned - doomed.len() as u64;

    if !config.dry_run {
        for chunk in doomed.chunks(batch) {
            let mut unlink = redis::cmd("UNLINK");
            for sample in chunk {
                unlink.arg(&sample.key);
            }
            unlink
                .query_async::<()>(&mut connection)
                .await
                .map_err(|error| failed("UNLINK", error))?;
        }
    }
    tracing::info!(
        scanned = report.entries_scanned,
        bytes_scanned = report.bytes_scanned,
        deleted = report.deleted(),
        bytes_deleted = report.bytes_deleted,
        bytes_after = report.bytes_after,
        budget = config.budget_bytes,
        dry_run = config.dry_run,
        "pruned the shared cache tier"
    );
    Ok(report)
}

/// The generation counters, if the hash exists with its epoch (else nothing can be judged stale).
async fn load_generations(
    connection: &mut MultiplexedConnection,
    prefix: &str,
) -> redis::RedisResult<Option<Generations>> {
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(format!("{prefix}:generations"))
        .query_async(connection)
        .await?;
    if !fields.iter().any(|(field, _)| field == EPOCH_FIELD) {
        return Ok(None);
    }
    let mut generations = Generations::default();
    for (field, value) in fields {
        if let Ok(value) = value.parse::<u64>() {
            generations.set_field(&field, value);
        }
    }
    Ok(Some(generations))
}

/// Size, idle time, LFU counter and header of each key, in one pipelined round trip. Keys gone
/// since the SCAN are left out.
async fn sample_entries(
    connection: &mut MultiplexedConnection,
    keys: Vec<String>,
) -> redis::RedisResult<Vec<EntrySample>> {
    let mut pipeline = redis::pipe();
    pipeline.ignore_errors();
    for key in &keys {
        // The OBJECT queries first: they never count as an access, the GETRANGE may.
        pipeline
            .cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0);
        pipeline.cmd("OBJECT").arg("IDLETIME").arg(key);
        pipeline.cmd("OBJECT").arg("FREQ").arg(key);
        pipeline
            .cmd("GETRANGE")
            .arg(key)
            .arg(0)
            .arg(HEADER_READ_BYTES - 1);
    }
    let replies: Vec<Value> = pipeline.query_async(connection).await?;
    let mut samples = Vec::with_capacity(keys.len());
    for (key, replies) in keys.into_iter().zip(replies.chunks(4)) {
        let [usage, idle, frequency, header] = replies else {
            continue;
        };
        let Some(bytes) = integer(usage) else {
            // Gone since the SCAN (nil), or not ours to judge.
            continue;
        };
        let header = match header {
            Value::BulkString(bytes) => bytes.as_slice(),
            _ => &[],
        };
        let (meta, unreadable) = match decode_entry_header(header) {
            Ok(meta) => (Some(meta), false),
            Err(EntryDecodeError::Truncated) if header.len() >= HEADER_READ_BYTES => (None, false),
            Err(_) => (None, true),
        };
        samples.push(EntrySample {
            key,
            bytes,
            meta,
            unreadable,
            idle_seconds: integer(idle),
            lfu_counter: integer(frequency),
        });
    }
    Ok(samples)
}

fn integer(value: &Value) -> Option<u64> {
    match value {
        Value::Int(number) => u64::try_from(*number).ok(),
        _ => None,
    }
}

fn kind_label(sample: &EntrySample) -> String {
    match (&sample.meta, sample.unreadable) {
        (_, true) => "unreadable".to_string(),
        (Some(meta), false) => meta.kind.as_str().to_string(),
        (None, false) => "unknown".to_string(),
    }
}

/// The prefix as a literal inside a SCAN MATCH pattern.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
