//! The filesystem tier: one file per entry, bounded by bytes with least-recently-used eviction,
//! crash-safe by write-then-rename, its index and size rebuilt on open by verifying every file.
//!
//! Layout: `<dir>/<first two hex digits of the id>/<32 hex digits>.entry`, each file holding
//! exactly `encode_entry(entry)` (magic, format version, CRC-32). A write goes to
//! `.<32 hex>.<pid>-<n>.tmp` in the same shard directory and is renamed over the final name, so a
//! reader, or the next process after a kill -9 at any moment, finds the old file, the new file,
//! or a leftover temp file (deleted by the next `open`): never a half-written `.entry`.
//!
//! Durability: nothing is fsynced, neither entries nor directories. A kill -9 loses nothing that
//! was renamed: the written pages belong to the kernel, not to the process. After a power loss
//! or a kernel crash a file may be torn or empty, or a rename may be lost (the old value or no
//! value is back); each is a valid state of a cache. A torn file fails the CRC and is deleted at
//! open, and an old value carries its own generation stamp and times and is judged by them like
//! any other entry. Fsyncing the directory would only make the rename itself durable, which a
//! cache does not need, at the price of a disk flush per put.
//!
//! What the tier owns in its directory: only shard directories named by two lower-case hex
//! digits are scanned, and in them only `<32 hex>.entry` files (verified, counted, evicted) and
//! `.*.tmp` files (deleted at open). Anything else is left alone and ignored, so a wrongly
//! configured directory is not wiped. One process per directory: a second one would delete the
//! first one's temp files at open and would not count its entries.
//!
//! Concurrency: the index (id -> size, metadata, recency) sits behind one std mutex held for map
//! operations only, never across I/O. Every change of a file runs inside one blocking task
//! holding the lock of its shard (one per shard directory), and the index changes together with
//! the file under that lock, so a put racing a remove, purge or eviction of the same id cannot
//! leave index and files disagreeing; nor can a `put` future dropped midway, as the blocking task
//! finishes on its own. Reads take no shard lock: rename is atomic, so a read sees a whole old or
//! a whole new file.
//!
//! Index invariants: `total_bytes` is the sum of the indexed sizes; every indexed id has its file
//! (unless something else deleted it: the next get notices and forgets it); every `.entry` file
//! is indexed, except between an eviction choosing a victim and unlinking it a moment later.
//! Recency after a restart is the order of the files' mtimes, i.e. of the last writes: hits since
//! then are not remembered (a read does not write).

use crate::locks::lock;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::entry::{decode_entry, encode_entry, EntryMeta, Freshness, StoredEntry};
use crate::key::EntryId;
use crate::metrics::{
    BYTES, CAPACITY_BYTES, CORRUPT_ENTRIES_TOTAL, ENTRIES, ERRORS_TOTAL, EVICTIONS_TOTAL,
    OVERSIZE_SKIPPED_TOTAL, TIER_DISK,
};
use crate::selector::Selector;
use crate::CacheError;

const ENTRY_SUFFIX: &str = ".entry";
const TEMP_SUFFIX: &str = ".tmp";
/// One lock per possible shard directory (first byte of the id).
const SHARD_COUNT: usize = 256;
/// An entry whose file would exceed `max_bytes / OVERSIZE_DIVISOR` is not stored: one value must
/// not flush most of the tier.
const OVERSIZE_DIVISOR: u64 = 4;
/// After a failed write, puts are skipped for this long before the next attempt.
const WRITE_BACKOFF: Duration = Duration::from_secs(5);
/// At most one warning per kind of failure in this interval; the others are counted in the next.
const WARNING_INTERVAL: Duration = Duration::from_secs(30);
/// Threads that read and verify entry files in parallel during `open`.
const MAX_SCAN_THREADS: usize = 8;

/// The filesystem tier. Cheap to clone; all clones share one index.
#[derive(Clone)]
pub struct DiskTier {
    inner: Arc<DiskInner>,
}

struct DiskInner {
    directory: PathBuf,
    max_bytes: u64,
    /// Held only for map operations, never across I/O.
    index: Mutex<Index>,
    /// Held (in blocking tasks only) while the file of an id in that shard is written, replaced or
    /// deleted together with its index entry. Never two at once, so they cannot deadlock.
    shard_locks: Vec<Mutex<()>>,
    /// The zero of the millisecond clocks below.
    origin: Instant,
    writes: WriteHealth,
    read_warnings: WarningLimiter,
    delete_warnings: WarningLimiter,
    temp_sequence: AtomicU64,
}

/// Whether writes currently succeed, and when to try again after a failure.
struct WriteHealth {
    writable: AtomicBool,
    /// Milliseconds since `origin` before which puts are skipped (meaningful while not writable).
    retry_at_ms: AtomicU64,
    backoff_ms: AtomicU64,
    warnings: WarningLimiter,
}

/// Lets one warning through per `WARNING_INTERVAL` and counts the ones it holds back.
struct WarningLimiter {
    /// Milliseconds since `origin` of the last warning logged; `u64::MAX`: none yet.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

#[derive(Default)]
struct Index {
    entries: HashMap<EntryId, IndexedEntry>,
    /// Access ticks in increasing order: the first is the least recently used entry.
    recency: BTreeMap<u64, EntryId>,
    next_tick: u64,
    /// The sum of `entries[..].size`.
    total_bytes: u64,
}

struct IndexedEntry {
    /// The length of the entry's file.
    size: u64,
    /// Kept so that purges can select by kind and scope without reading files.
    meta: EntryMeta,
    tick: u64,
}

impl Index {
    fn next_tick(&mut self) -> u64 {
        let tick = self.next_tick;
        self.next_tick += 1;
        tick
    }

    /// Inserts or replaces the entry as the most recently used one.
    fn insert(&mut self, id: EntryId, size: u64, meta: EntryMeta) {
        self.remove(&id);
        let tick = self.next_tick();
        self.recency.insert(tick, id);
        self.entries.insert(id, IndexedEntry { size, meta, tick });
        self.total_bytes += size;
    }

    /// Marks the entry as just used; false when it is not indexed.
    fn touch(&mut self, id: &EntryId) -> bool {
        let tick = self.next_tick();
        let Some(entry) = self.entries.get_mut(id) else {
            return false;
        };
        self.recency.remove(&entry.tick);
        entry.tick = tick;
        self.recency.insert(tick, *id);
        true
    }

    fn remove(&mut self, id: &EntryId) -> Option<IndexedEntry> {
        let entry = self.entries.remove(id)?;
        self.recency.remove(&entry.tick);
        self.total_bytes -= entry.size;
        Some(entry)
    }

    /// Drops least recently used entries from the index until the total fits; returns their ids,
    /// whose files the caller deletes.
    fn evict_to(&mut self, max_bytes: u64) -> Vec<EntryId> {
        let mut victims = Vec::new();
        while self.total_bytes > max_bytes {
            let Some((_, id)) = self.recency.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&id) {
                self.total_bytes -= entry.size;
                victims.push(id);
            }
        }
        victims
    }

    fn figures(&self) -> (u64, usize) {
        (self.total_bytes, self.entries.len())
    }
}

impl WarningLimiter {
    fn new() -> WarningLimiter {
        WarningLimiter {
            last_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(number of warnings held back since the last one)` when this one may be logged.
    fn permit(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Acquire);
        let interval = WARNING_INTERVAL.as_millis() as u64;
        let due = last == u64::MAX || now_ms.saturating_sub(last) >= interval;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::AcqRel))
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

impl WriteHealth {
    fn may_write(&self, now_ms: u64) -> bool {
        self.writable.load(Ordering::Acquire) || now_ms >= self.retry_at_ms.load(Ordering::Acquire)
    }

    fn succeeded(&self) {
        if !self.writable.swap(true, Ordering::AcqRel) {
            tracing::info!(tier = TIER_DISK, "disk cache writes succeed again");
        }
    }

    fn failed(&self, now_ms: u64, path: &Path, error: &io::Error) {
        let retry_at = now_ms + self.backoff_ms.load(Ordering::Acquire);
        self.retry_at_ms.store(retry_at, Ordering::Release);
        self.writable.store(false, Ordering::Release);
        count_error("put");
        if let Some(suppressed) = self.warnings.permit(now_ms) {
            tracing::warn!(
                tier = TIER_DISK,
                path = %path.display(),
                %error,
                suppressed_warnings = suppressed,
                backoff_ms = self.backoff_ms.load(Ordering::Acquire),
                "disk cache write failed; skipping writes for a while, reads go on"
            );
        }
    }
}

fn count_error(operation: &'static str) {
    metrics::counter!(ERRORS_TOTAL, "tier" => TIER_DISK, "operation" => operation).increment(1);
}

fn count_corrupt(count: u64) {
    if count > 0 {
        metrics::counter!(CORRUPT_ENTRIES_TOTAL, "tier" => TIER_DISK).increment(count);
    }
}

fn count_evictions(count: u64) {
    if count > 0 {
        metrics::counter!(EVICTIONS_TOTAL, "tier" => TIER_DISK).increment(count);
    }
}

/// Moves the byte and entry gauges by what the index moved. Deltas, as the memory tier does:
/// they commute, so concurrent updates cannot publish out of order, and several tiers add up.
fn publish_change(before: (u64, usize), after: (u64, usize)) {
    if before.0 != after.0 {
        metrics::gauge!(BYTES, "tier" => TIER_DISK).increment(after.0 as f64 - before.0 as f64);
    }
    if before.1 != after.1 {
        metrics::gauge!(ENTRIES, "tier" => TIER_DISK).increment(after.1 as f64 - before.1 as f64);
    }
}

fn shard_name(id: &EntryId) -> String {
    hex::encode([id.0[0]])
}

/// The id a file named `<32 lower-case hex>.entry` in shard directory `shard` stands for.
fn parse_entry_file_name(name: &str, shard: &str) -> Option<EntryId> {
    let stem = name.strip_suffix(ENTRY_SUFFIX)?;
    let canonical = stem.len() == 32
        && stem.starts_with(shard)
        && stem
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    if canonical {
        EntryId::from_hex(stem).ok()
    } else {
        None
    }
}

fn is_shard_name(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl DiskTier {
    /// Opens (creating) `directory`, removes leftover temp files, rebuilds the index by reading and
    /// verifying every entry (corrupt or torn ones, and expired ones, are deleted; corrupt ones
    /// counted), and evicts the least recently written entries down to `max_bytes`.
    pub async fn open(directory: PathBuf, max_bytes: u64) -> Result<DiskTier, CacheError> {
        odg_offload::run_blocking_io(move || DiskTier::open_blocking(directory, max_bytes))
            .await
            .map_err(|error| CacheError::Disk(format!("opening the disk cache failed: {error}")))?
    }

    /// The entry stored under `id`; `None` when absent, unreadable or corrupt (a corrupt file is
    /// deleted and counted). The caller checks `key_text` and freshness.
    pub async fn get(&self, id: &EntryId) -> Option<StoredEntry> {
        // The index knows every file, so a miss costs no I/O.
        if !lock(&self.inner.index).touch(id) {
            return None;
        }
        let inner = Arc::clone(&self.inner);
        let id = *id;
        odg_offload::run_blocking_io(move || inner.get_blocking(id))
            .await
            .ok()
            .flatten()
    }

    /// Stores `entry` under `id`, replacing an older one, then evicts down to the bound. Never
    /// fails the caller: a failed write is logged and counted, and writes pause for a backoff.
    /// A put that does not store its entry (too large, writes failing) removes the older entry of
    /// the id, so the tier never serves a value its caller has replaced.
    pub async fn put(&self, id: EntryId, entry: &StoredEntry) {
        let inner = Arc::clone(&self.inner);
        let now_ms = inner.now_ms();
        if !inner.writes.may_write(now_ms) && !lock(&inner.index).entries.contains_key(&id) {
            return;
        }
        let entry = entry.clone();
        if odg_offload::run_blocking_io(move || inner.put_blocking(id, entry))
            .await
            .is_err()
        {
            tracing::warn!(tier = TIER_DISK, "disk cache put task panicked");
        }
    }

    /// Deletes the entry of `id`, if any.
    pub async fn remove(&self, id: &EntryId) {
        let inner = Arc::clone(&self.inner);
        let id = *id;
        let _ = odg_offload::run_blocking_io(move || inner.discard(&id, |_| true)).await;
    }

    /// Deletes every entry `selector` matches; returns how many were deleted.
    pub async fn purge(&self, selector: &Selector) -> usize {
        let candidates: Vec<EntryId> = {
            let index = lock(&self.inner.index);
            match selector {
                Selector::Id(id) => index
                    .entries
                    .contains_key(id)
                    .then_some(*id)
                    .into_iter()
                    .collect(),
                _ => index
                    .entries
                    .iter()
                    .filter(|(id, entry)| selector.matches(id, &entry.meta))
                    .map(|(id, _)| *id)
                    .collect(),
            }
        };
        if candidates.is_empty() {
            return 0;
        }
        let inner = Arc::clone(&self.inner);
        let selector = selector.clone();
        odg_offload::run_blocking_io(move || {
            candidates
                .iter()
                .filter(|id| inner.discard(id, |entry| selector.matches(id, &entry.meta)))
                .count()
        })
        .await
        .unwrap_or(0)
    }

    /// Bytes held: the sum of the entry files' sizes.
    pub fn bytes(&self) -> u64 {
        lock(&self.inner.index).total_bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        lock(&self.inner.index).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    pub fn directory(&self) -> &Path {
        &self.inner.directory
    }

    /// False from a failed write until a write succeeds again (disk full, read-only, ...).
    pub fn is_writable(&self) -> bool {
        self.inner.writes.writable.load(Ordering::Acquire)
    }

    /// Tests change the pause after a failed write; a pause in progress ends no later than
    /// `backoff` from now.
    #[cfg(test)]
    pub(crate) fn set_write_backoff(&self, backoff: Duration) {
        let backoff_ms = backoff.as_millis() as u64;
        self.inner
            .writes
            .backoff_ms
            .store(backoff_ms, Ordering::Release);
        let retry_at = self.inner.now_ms() + backoff_ms;
        let current = self.inner.writes.retry_at_ms.load(Ordering::Acquire);
        self.inner
            .writes
            .retry_at_ms
            .store(current.min(retry_at), Ordering::Release);
    }

    fn open_blocking(directory: PathBuf, max_bytes: u64) -> Result<DiskTier, CacheError> {
        let started = Instant::now();
        fs::create_dir_all(&directory).map_err(|error| {
            CacheError::Disk(format!("cannot create {}: {error}", directory.display()))
        })?;
        let listing = fs::read_dir(&directory).map_err(|error| {
            CacheError::Disk(format!("cannot list {}: {error}", directory.display()))
        })?;
        let mut shards = Vec::new();
        let mut report = ScanReport::default();
        for dirent in listing {
            let dirent = dirent.map_err(|error| {
                CacheError::Disk(format!("cannot list {}: {error}", directory.display()))
            })?;
            let is_directory = dirent.file_type().is_ok_and(|kind| kind.is_dir());
            match dirent.file_name().to_str() {
                Some(name) if is_directory && is_shard_name(name) => shards.push(name.to_string()),
                _ => report.ignored += 1,
            }
        }

        let now_ms = now_epoch_ms();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_SCAN_THREADS)
            .min(shards.len().max(1));
        let mut groups: Vec<Vec<String>> = vec![Vec::new(); threads];
        for (position, shard) in shards.into_iter().enumerate() {
            groups[position % threads].push(shard);
        }
        let directory_ref = &directory;
        let reports: Vec<ScanReport> = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|group| {
                    scope.spawn(move || {
                        let mut report = ScanReport::default();
                        for shard in group {
                            scan_shard(directory_ref, shard, now_ms, &mut report);
                        }
                        report
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_default())
                .collect()
        });
        for part in reports {
            report.merge(part);
        }

        // Recency after a restart: the order in which the files were last written.
        let mut found = std::mem::take(&mut report.found);
        found.sort_by_key(|entry| (entry.modified, entry.id));
        let mut index = Index::default();
        for entry in found {
            index.insert(entry.id, entry.size, entry.meta);
        }
        let victims = index.evict_to(max_bytes);
        for id in &victims {
            let path = entry_path(&directory, id);
            if let Err(error) = fs::remove_file(&path) {
                if error.kind() != io::ErrorKind::NotFound {
                    count_error("delete");
                    tracing::warn!(
                        tier = TIER_DISK,
                        path = %path.display(),
                        %error,
                        "cannot evict disk cache entry"
                    );
                }
            }
        }
        count_corrupt(report.corrupt as u64);
        count_evictions(victims.len() as u64);
        for _ in 0..report.unreadable {
            count_error("open");
        }
        let figures = index.figures();
        publish_change((0, 0), figures);
        metrics::gauge!(CAPACITY_BYTES, "tier" => TIER_DISK).increment(max_bytes as f64);
        tracing::info!(
            tier = TIER_DISK,
            directory = %directory.display(),
            entries = figures.1,
            bytes = figures.0,
            max_bytes,
            evicted = victims.len(),
            corrupt_deleted = report.corrupt,
            expired_deleted = report.expired,
            temp_files_deleted = report.temp_deleted,
            unreadable = report.unreadable,
            ignored_files = report.ignored,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "disk cache opened"
        );

        let origin = Instant::now();
        Ok(DiskTier {
            inner: Arc::new(DiskInner {
                directory,
                max_bytes,
                index: Mutex::new(index),
                shard_locks: (0..SHARD_COUNT).map(|_| Mutex::new(())).collect(),
                origin,
                writes: WriteHealth {
                    writable: AtomicBool::new(true),
                    retry_at_ms: AtomicU64::new(0),
                    backoff_ms: AtomicU64::new(WRITE_BACKOFF.as_millis() as u64),
                    warnings: WarningLimiter::new(),
                },
                read_warnings: WarningLimiter::new(),
                delete_warnings: WarningLimiter::new(),
                temp_sequence: AtomicU64::new(0),
            }),
        })
    }
}

impl Drop for DiskInner {
    /// The last clone is gone: take this tier's share out of the gauges.
    fn drop(&mut self) {
        let figures = self
            .index
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .figures();
        publish_change(figures, (0, 0));
        metrics::gauge!(CAPACITY_BYTES, "tier" => TIER_DISK).decrement(self.max_bytes as f64);
    }
}

impl fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (bytes, entries) = lock(&self.inner.index).figures();
        f.debug_struct("DiskTier")
            .field("directory", &self.inner.directory)
            .field("max_bytes", &self.inner.max_bytes)
            .field("bytes", &bytes)
            .field("entries", &entries)
            .field("writable", &self.is_writable())
            .finish()
    }
}

fn entry_path(directory: &Path, id: &EntryId) -> PathBuf {
    directory
        .join(shard_name(id))
        .join(format!("{}{ENTRY_SUFFIX}", id.to_hex()))
}

/// What `open` found in the shard directories.
#[derive(Default)]
struct ScanReport {
    found: Vec<FoundEntry>,
    corrupt: usize,
    expired: usize,
    temp_deleted: usize,
    unreadable: usize,
    ignored: usize,
}

struct FoundEntry {
    id: EntryId,
    size: u64,
    meta: EntryMeta,
    modified: SystemTime,
}

impl ScanReport {
    fn merge(&mut self, other: ScanReport) {
        self.found.extend(other.found);
        self.corrupt += other.corrupt;
        self.expired += other.expired;
        self.temp_deleted += other.temp_deleted;
        self.unreadable += other.unreadable;
        self.ignored += other.ignored;
    }
}

/// Deletes temp files and reads and verifies every entry file of one shard directory.
fn scan_shard(directory: &Path, shard: &str, now_ms: u64, report: &mut ScanReport) {
    let shard_directory = directory.join(shard);
    let listing = match fs::read_dir(&shard_directory) {
        Ok(listing) => listing,
        Err(error) => {
            report.unreadable += 1;
            tracing::warn!(
                tier = TIER_DISK,
                path = %shard_directory.display(),
                %error,
                "cannot list disk cache shard"
            );
            return;
        }
    };
    for dirent in listing.flatten() {
        let path = dirent.path();
        let is_file = dirent.file_type().is_ok_and(|kind| kind.is_file());
        let name = dirent.file_name();
        let Some(name) = name.to_str().filter(|_| is_file) else {
            report.ignored += 1;
            continue;
        };
        if is_temp_name(name) {
            match fs::remove_file(&path) {
                Ok(()) => report.temp_deleted += 1,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(
                        tier = TIER_DISK,
                        path = %path.display(),
                        %error,
                        "cannot delete leftover temp file"
                    )
                }
            }
            continue;
        }
        let Some(id) = parse_entry_file_name(name, shard) else {
            report.ignored += 1;
            continue;
        };
        let (bytes, modified) = match read_with_modified(&path) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                report.unreadable += 1;
                tracing::warn!(
                    tier = TIER_DISK,
                    path = %path.display(),
                    %error,
                    "cannot read disk cache entry"
                );
                continue;
            }
        };
        let verdict = match decode_entry(&bytes) {
            Ok(entry) if entry.meta.freshness(now_ms) == Freshness::Expired => Err(None),
            Ok(entry) => Ok(entry.meta),
            Err(error) => Err(Some(error)),
        };
        match verdict {
            Ok(meta) => report.found.push(FoundEntry {
                id,
                size: bytes.len() as u64,
                meta,
                modified,
            }),
            Err(corruption) => {
                if let Err(error) = fs::remove_file(&path) {
                    // Not indexed either way; the next open tries again.
                    tracing::warn!(
                        tier = TIER_DISK,
                        path = %path.display(),
                        %error,
                        "cannot delete disk cache entry"
                    );
                }
                match corruption {
                    Some(error) => {
                        report.corrupt += 1;
                        tracing::debug!(
                            tier = TIER_DISK,
                            path = %path.display(),
                            %error,
                            "corrupt disk cache entry deleted"
                        );
                    }
                    None => report.expired += 1,
                }
            }
        }
    }
}

fn read_with_modified(path: &Path) -> io::Result<(Vec<u8>, SystemTime)> {
    let mut file = File::open(path)?;
    let metadata = file.metadata()?;
    let modified = metadata.modified().unwrap_or(UNIX_EPOCH);
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.read_to_end(&mut bytes)?;
    Ok((bytes, modified))
}

impl DiskInner {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Applies a change to the index, then moves the gauges by it (after the lock is released).
    fn change_index<R>(&self, change: impl FnOnce(&mut Index) -> R) -> R {
        let (result, before, after) = {
            let mut index = lock(&self.index);
            let before = index.figures();
            let result = change(&mut index);
            (result, before, index.figures())
        };
        publish_change(before, after);
        result
    }

    fn lock_shard(&self, id: &EntryId) -> MutexGuard<'_, ()> {
        lock(&self.shard_locks[usize::from(id.0[0])])
    }

    fn path_of(&self, id: &EntryId) -> PathBuf {
        entry_path(&self.directory, id)
    }

    fn get_blocking(&self, id: EntryId) -> Option<StoredEntry> {
        match fs::read(self.path_of(&id)) {
            Ok(bytes) => match decode_entry(&bytes) {
                Ok(entry) => Some(entry),
                Err(_) => self.get_rechecked(id),
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => self.get_rechecked(id),
            Err(error) => {
                self.read_failed(&id, &error);
                None
            }
        }
    }

    /// The slow path of a get whose file was missing or did not decode: look again under the
    /// shard lock (a put may just have replaced the file), then delete a corrupt file or forget
    /// an entry whose file is gone.
    fn get_rechecked(&self, id: EntryId) -> Option<StoredEntry> {
        let _shard = self.lock_shard(&id);
        let path = self.path_of(&id);
        match fs::read(&path) {
            Ok(bytes) => match decode_entry(&bytes) {
                Ok(entry) => Some(entry),
                Err(error) => {
                    count_corrupt(1);
                    if let Some(suppressed) = self.read_warnings.permit(self.now_ms()) {
                        tracing::warn!(
                            tier = TIER_DISK,
                            path = %path.display(),
                            %error,
                            suppressed_warnings = suppressed,
                            "corrupt disk cache entry deleted"
                        );
                    }
                    self.unlink_locked(&id, &path);
                    None
                }
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if self.change_index(|index| index.remove(&id)).is_some() {
                    tracing::debug!(
                        tier = TIER_DISK,
                        path = %path.display(),
                        "disk cache entry vanished; forgotten"
                    );
                }
                None
            }
            Err(error) => {
                self.read_failed(&id, &error);
                None
            }
        }
    }

    fn read_failed(&self, id: &EntryId, error: &io::Error) {
        count_error("get");
        if let Some(suppressed) = self.read_warnings.permit(self.now_ms()) {
            tracing::warn!(
                tier = TIER_DISK,
                path = %self.path_of(id).display(),
                %error,
                suppressed_warnings = suppressed,
                "disk cache read failed"
            );
        }
    }

    fn put_blocking(&self, id: EntryId, entry: StoredEntry) {
        let encoded = encode_entry(&entry);
        let size = encoded.len() as u64;
        if size > self.max_bytes / OVERSIZE_DIVISOR {
            metrics::counter!(OVERSIZE_SKIPPED_TOTAL, "tier" => TIER_DISK).increment(1);
            tracing::debug!(
                tier = TIER_DISK,
                %id,
                size,
                max_bytes = self.max_bytes,
                "entry too large for the disk cache"
            );
            self.discard(&id, |_| true);
            return;
        }
        if !self.writes.may_write(self.now_ms()) {
            self.discard(&id, |_| true);
            return;
        }
        let victims = {
            let _shard = self.lock_shard(&id);
            match self.write_entry_file(&id, &encoded) {
                Ok(()) => {
                    self.writes.succeeded();
                    let victims = self.change_index(|index| {
                        index.insert(id, size, entry.meta);
                        index.evict_to(self.max_bytes)
                    });
                    count_evictions(victims.len() as u64);
                    victims
                }
                Err((path, error)) => {
                    self.writes.failed(self.now_ms(), &path, &error);
                    if lock(&self.index).entries.contains_key(&id) {
                        self.unlink_locked(&id, &self.path_of(&id));
                    }
                    return;
                }
            }
        };
        for victim in victims {
            self.delete_evicted(&victim);
        }
    }

    /// Writes `encoded` to a temp file beside the final one and renames it into place; on any
    /// failure the temp file is removed. The error names the path it concerns.
    fn write_entry_file(&self, id: &EntryId, encoded: &[u8]) -> Result<(), (PathBuf, io::Error)> {
        let shard_directory = self.directory.join(shard_name(id));
        let sequence = self.temp_sequence.fetch_add(1, Ordering::Relaxed);
        let temp_path = shard_directory.join(format!(
            ".{}.{}-{sequence}{TEMP_SUFFIX}",
            id.to_hex(),
            std::process::id()
        ));
        let final_path = self.path_of(id);
        let create = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp_path)
        };
        let mut file = match create() {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                // First entry of this shard, or the directory was removed under us.
                fs::create_dir_all(&shard_directory)
                    .and_then(|()| create())
                    .map_err(|error| (shard_directory.clone(), error))?
            }
            Err(error) => return Err((temp_path, error)),
        };
        let written = file.write_all(encoded);
        drop(file);
        let result = written.and_then(|()| fs::rename(&temp_path, &final_path));
        result.map_err(|error| {
            let _ = fs::remove_file(&temp_path);
            (final_path, error)
        })
    }

    /// Deletes the file and index entry of `id` if it is indexed and `condition` holds for it.
    /// True when deleted.
    fn discard(&self, id: &EntryId, condition: impl Fn(&IndexedEntry) -> bool) -> bool {
        let _shard = self.lock_shard(id);
        let selected = lock(&self.index).entries.get(id).is_some_and(condition);
        selected && self.unlink_locked(id, &self.path_of(id))
    }

    /// With the shard lock of `id` held: deletes its file and forgets it. When the file cannot be
    /// deleted, it stays indexed, so the byte count keeps matching the disk.
    fn unlink_locked(&self, id: &EntryId, path: &Path) -> bool {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                self.delete_failed(path, &error);
                return false;
            }
        }
        self.change_index(|index| index.remove(id));
        true
    }

    /// Deletes the file of an entry eviction already took out of the index, unless a put has
    /// stored the id again since.
    fn delete_evicted(&self, id: &EntryId) {
        let _shard = self.lock_shard(id);
        if lock(&self.index).entries.contains_key(id) {
            return;
        }
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => self.delete_failed(&path, &error),
        }
    }

    fn delete_failed(&self, path: &Path, error: &io::Error) {
        count_error("delete");
        if let Some(suppressed) = self.delete_warnings.permit(self.now_ms()) {
            tracing::warn!(
                tier = TIER_DISK,
                path = %path.display(),
                %error,
                suppressed_warnings = suppressed,
                "cannot delete disk cache entry"
            );
        }
    }
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod disk_tests;
