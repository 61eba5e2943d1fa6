//! Tests of the filesystem tier: layout, bound and eviction order, restart, corruption, foreign
//! files, purges, failing writes and concurrent use. The kill -9 test is in `tests/disk_crash.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use rand::{Rng, SeedableRng};

use super::*;
use crate::{CacheKey, Kind, Scope, Stamp};

fn key(index: usize) -> CacheKey {
    key_in("descriptor", "acme.org/a", index)
}

fn key_in(kind: &str, component: &str, index: usize) -> CacheKey {
    let index = format!("{index:04}");
    CacheKey::new(
        Kind::new(kind).unwrap(),
        &[component, &index],
        Scope::component_version(component, &index),
    )
}

/// Deterministic payload bytes for a key and a version of its value.
fn payload(key: &CacheKey, version: u32, length: usize) -> Bytes {
    let mut bytes = version.to_le_bytes().to_vec();
    let id = key.id().0;
    bytes
        .extend((0..length).map(|position| id[position % 16] ^ (position as u8) ^ (version as u8)));
    Bytes::from(bytes)
}

fn entry(key: &CacheKey, version: u32, length: usize) -> StoredEntry {
    StoredEntry {
        meta: EntryMeta {
            kind: key.kind().clone(),
            scope: key.scope().clone(),
            stamp: Stamp::default(),
            created_at_ms: 1_700_000_000_000,
            fresh_until_ms: None,
            expires_at_ms: None,
        },
        key_text: key.text().to_string(),
        payload: payload(key, version, length),
    }
}

fn encoded_size(entry: &StoredEntry) -> u64 {
    encode_entry(entry).len() as u64
}

/// Every file below `directory` whose name ends with `suffix`, with its size.
fn files_ending(directory: &Path, suffix: &str) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        for dirent in fs::read_dir(&current).unwrap().flatten() {
            let path = dirent.path();
            if dirent.file_type().unwrap().is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push((path.clone(), dirent.metadata().unwrap().len()));
            }
        }
    }
    found
}

/// Checks the index against the directory: same count, same bytes, no temp files.
fn assert_agrees_with_disk(tier: &DiskTier) {
    let files = files_ending(tier.directory(), ENTRY_SUFFIX);
    assert_eq!(tier.len(), files.len(), "entries vs files");
    assert_eq!(
        tier.bytes(),
        files.iter().map(|(_, size)| size).sum::<u64>(),
        "bytes vs file sizes"
    );
    assert!(
        files_ending(tier.directory(), TEMP_SUFFIX).is_empty(),
        "temp files left"
    );
}

/// A key whose shard differs from all of `shards`.
fn key_outside(shards: &[String], from: usize) -> (usize, CacheKey) {
    (from..)
        .map(|index| (index, key(index)))
        .find(|(_, key)| !shards.contains(&shard_name(&key.id())))
        .unwrap()
}

#[tokio::test]
async fn round_trip_replace_and_remove() {
    let directory = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(directory.path().join("cache"), 1 << 20)
        .await
        .unwrap();
    assert!(tier.is_empty() && tier.is_writable());
    let first_key = key(1);
    let first = entry(&first_key, 1, 10_000);
    tier.put(first_key.id(), &first).await;
    assert_eq!(tier.get(&first_key.id()).await, Some(first.clone()));
    let path = entry_path(tier.directory(), &first_key.id());
    let hex = first_key.id().to_hex();
    assert!(
        path.ends_with(format!("{}/{hex}.entry", &hex[..2])),
        "{}",
        path.display()
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        encode_entry(&first),
        "the file is exactly the envelope"
    );
    assert_eq!(tier.bytes(), encoded_size(&first));
    assert_eq!(tier.get(&key(2).id()).await, None);

    let replacement = entry(&first_key, 2, 300);
    tier.put(first_key.id(), &replacement).await;
    assert_eq!(tier.get(&first_key.id()).await, Some(replacement.clone()));
    assert_eq!((tier.len(), tier.bytes()), (1, encoded_size(&replacement)));
    assert_agrees_with_disk(&tier);

    tier.remove(&first_key.id()).await;
    tier.remove(&key(2).id()).await;
    assert_eq!(tier.get(&first_key.id()).await, None);
    assert!(!path.exists());
    assert_eq!((tier.len(), tier.bytes()), (0, 0));
}

#[tokio::test]
async fn bound_is_respected_and_least_recently_used_go_first() {
    let directory = tempfile::tempdir().unwrap();
    let size = encoded_size(&entry(&key(0), 0, 1_000));
    let tier = DiskTier::open(directory.path().to_path_buf(), 10 * size)
        .await
        .unwrap();
    for index in 0..10 {
        tier.put(key(index).id(), &entry(&key(index), 0, 1_000))
            .await;
    }
    assert_eq!(
        (tier.len(), tier.bytes()),
        (10, 10 * size),
        "exactly full is within the bound"
    );
    assert!(
        tier.get(&key(0).id()).await.is_some(),
        "0 becomes the most recently used"
    );
    tier.put(key(10).id(), &entry(&key(10), 0, 1_000)).await;
    assert!(
        tier.get(&key(1).id()).await.is_none(),
        "1 was least recently used"
    );
    assert!(tier.get(&key(0).id()).await.is_some());
    assert!(
        !entry_path(tier.directory(), &key(1).id()).exists(),
        "evicted file deleted"
    );

    for index in 11..200 {
        tier.put(key(index).id(), &entry(&key(index), 0, 1_000))
            .await;
        assert!(tier.bytes() <= tier.max_bytes());
    }
    assert_eq!(tier.len(), 10);
    for index in 190..200 {
        assert!(
            tier.get(&key(index).id()).await.is_some(),
            "{index} is among the newest"
        );
    }
    assert_agrees_with_disk(&tier);

    // Larger than a quarter of the bound: not stored, and the older value is not served either.
    let oversize = entry(&key(195), 1, (10 * size / 4) as usize);
    tier.put(key(195).id(), &oversize).await;
    assert!(tier.get(&key(195).id()).await.is_none());
    assert_eq!(tier.len(), 9);
    assert_agrees_with_disk(&tier);
}

#[tokio::test]
async fn reopening_rebuilds_size_index_and_recency_from_mtime() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().to_path_buf();
    let size = encoded_size(&entry(&key(0), 0, 500));
    let tier = DiskTier::open(path.clone(), 1 << 20).await.unwrap();
    for index in 0..50 {
        tier.put(key(index).id(), &entry(&key(index), 0, 500)).await;
    }
    // Make the written order the reverse of the index order: key 0 newest.
    for index in 0..50u64 {
        let file = File::options()
            .write(true)
            .open(entry_path(&path, &key(index as usize).id()))
            .unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(1_700_000_000 - index))
            .unwrap();
    }
    let (bytes, entries) = (tier.bytes(), tier.len());
    drop(tier);

    let reopened = DiskTier::open(path.clone(), 1 << 20).await.unwrap();
    assert_eq!((reopened.bytes(), reopened.len()), (bytes, entries));
    assert_eq!(bytes, 50 * size);
    for index in 0..50 {
        assert_eq!(
            reopened.get(&key(index).id()).await,
            Some(entry(&key(index), 0, 500))
        );
    }
    assert_agrees_with_disk(&reopened);
    drop(reopened);

    let smaller = DiskTier::open(path, 10 * size).await.unwrap();
    assert_eq!((smaller.len(), smaller.bytes()), (10, 10 * size));
    for index in 0..10 {
        assert!(
            smaller.get(&key(index).id()).await.is_some(),
            "{index} was written last"
        );
    }
    assert_agrees_with_disk(&smaller);
}

#[tokio::test]
async fn corrupt_files_are_dropped_on_get_and_on_open() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().to_path_buf();
    let tier = DiskTier::open(path.clone(), 1 << 20).await.unwrap();
    for index in 0..5 {
        tier.put(key(index).id(), &entry(&key(index), 0, 2_000))
            .await;
    }
    let flip = |index: usize| {
        let file = entry_path(&path, &key(index).id());
        let mut bytes = fs::read(&file).unwrap();
        bytes[1_000] ^= 0x01;
        fs::write(&file, bytes).unwrap();
    };
    let truncate = |index: usize, length: u64| {
        let file = File::options()
            .write(true)
            .open(entry_path(&path, &key(index).id()))
            .unwrap();
        file.set_len(length).unwrap();
    };
    flip(0);
    truncate(1, 1_500);
    assert_eq!(tier.get(&key(0).id()).await, None);
    assert_eq!(tier.get(&key(1).id()).await, None);
    assert!(!entry_path(&path, &key(0).id()).exists() && !entry_path(&path, &key(1).id()).exists());
    assert_eq!(tier.len(), 3);
    assert_agrees_with_disk(&tier);
    drop(tier);

    flip(2);
    truncate(3, 0);
    let reopened = DiskTier::open(path.clone(), 1 << 20).await.unwrap();
    assert_eq!(reopened.len(), 1);
    assert_eq!(
        reopened.get(&key(4).id()).await,
        Some(entry(&key(4), 0, 2_000))
    );
    assert_agrees_with_disk(&reopened);
}

#[tokio::test]
async fn open_deletes_temp_files_and_leaves_foreign_files_alone() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().to_path_buf();
    let stored = key(7);
    let hex = stored.id().to_hex();
    let shard = path.join(&hex[..2]);
    fs::create_dir_all(&shard).unwrap();
    fs::write(
        shard.join(format!("{hex}.entry")),
        encode_entry(&entry(&stored, 0, 100)),
    )
    .unwrap();
    let temp_files = [
        shard.join(format!(".{hex}.123-0.tmp")),
        shard.join(".whatever.tmp"),
    ];
    for temp in &temp_files {
        fs::write(temp, b"half an entry").unwrap();
    }
    let (_, elsewhere) = key_outside(&[hex[..2].to_string()], 0);
    let foreign = [
        path.join("README"),
        path.join(".hidden.tmp"),
        shard.join("notes.txt"),
        shard.join(format!("{}.entry", hex.to_uppercase())),
        shard.join(format!("{hex}.entry.bak")),
        // A valid entry in the wrong shard: ours in shape, but never looked up there.
        shard.join(format!("{}.entry", elsewhere.id().to_hex())),
        path.join("zz").join(format!("{hex}.entry")),
    ];
    for file in &foreign {
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, encode_entry(&entry(&elsewhere, 0, 10))).unwrap();
    }

    let tier = DiskTier::open(path, 1 << 20).await.unwrap();
    assert_eq!(tier.len(), 1);
    assert_eq!(tier.get(&stored.id()).await, Some(entry(&stored, 0, 100)));
    assert_eq!(tier.get(&elsewhere.id()).await, None);
    for temp in &temp_files {
        assert!(!temp.exists(), "{} deleted", temp.display());
    }
    for file in &foreign {
        assert!(file.exists(), "{} left alone", file.display());
    }
}

#[tokio::test]
async fn expired_entries_are_deleted_on_open() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().to_path_buf();
    let tier = DiskTier::open(path.clone(), 1 << 20).await.unwrap();
    let mut expired = entry(&key(1), 0, 100);
    expired.meta.expires_at_ms = Some(1);
    tier.put(key(1).id(), &expired).await;
    let mut fresh = entry(&key(2), 0, 100);
    fresh.meta.expires_at_ms = Some(u64::MAX);
    tier.put(key(2).id(), &fresh).await;
    assert_eq!(
        tier.len(),
        2,
        "the tier stores what it is given; the caller judges freshness"
    );
    drop(tier);
    let reopened = DiskTier::open(path, 1 << 20).await.unwrap();
    assert_eq!(reopened.len(), 1);
    assert_eq!(reopened.get(&key(2).id()).await, Some(fresh));
    assert_agrees_with_disk(&reopened);
}

#[tokio::test]
async fn purge_deletes_what_the_selector_matches() {
    let directory = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(directory.path().to_path_buf(), 1 << 20)
        .await
        .unwrap();
    let keys: Vec<CacheKey> = (0..4)
        .flat_map(|index| {
            [
                key_in("descriptor", "acme.org/a", index),
                key_in("versions", "acme.org/a", index),
                key_in("descriptor", "acme.org/b", index),
            ]
        })
        .collect();
    for key in &keys {
        tier.put(key.id(), &entry(key, 0, 100)).await;
    }
    assert_eq!(tier.len(), 12);
    let one = key_in("descriptor", "acme.org/b", 3);
    assert_eq!(tier.purge(&Selector::Id(one.id())).await, 1);
    assert_eq!(tier.purge(&Selector::Id(one.id())).await, 0);
    assert_eq!(
        tier.purge(&Selector::component_version("Acme.org/A", "0001"))
            .await,
        2
    );
    assert_eq!(
        tier.purge(&Selector::Kind(Kind::new("versions").unwrap()))
            .await,
        3
    );
    assert_eq!(tier.purge(&Selector::component("acme.org/b")).await, 3);
    assert_eq!(tier.len(), 3);
    assert!(tier
        .get(&key_in("descriptor", "acme.org/a", 0).id())
        .await
        .is_some());
    assert!(tier
        .get(&key_in("descriptor", "acme.org/a", 1).id())
        .await
        .is_none());
    assert_agrees_with_disk(&tier);
    assert_eq!(tier.purge(&Selector::All).await, 3);
    assert!(tier.is_empty());
    assert_agrees_with_disk(&tier);
}

#[tokio::test]
async fn vanished_files_are_forgotten() {
    let directory = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(directory.path().to_path_buf(), 1 << 20)
        .await
        .unwrap();
    tier.put(key(1).id(), &entry(&key(1), 0, 100)).await;
    fs::remove_file(entry_path(tier.directory(), &key(1).id())).unwrap();
    assert_eq!(tier.get(&key(1).id()).await, None);
    assert_eq!((tier.len(), tier.bytes()), (0, 0));
}

#[tokio::test]
async fn an_unreadable_entry_is_a_miss_and_stays_counted() {
    let directory = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(directory.path().to_path_buf(), 1 << 20)
        .await
        .unwrap();
    tier.put(key(1).id(), &entry(&key(1), 0, 100)).await;
    tier.put(key(2).id(), &entry(&key(2), 0, 100)).await;
    // Root reads whatever the permissions say; a directory in place of the file fails the read.
    let path = entry_path(tier.directory(), &key(1).id());
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    assert_eq!(tier.get(&key(1).id()).await, None);
    assert_eq!(
        tier.len(),
        2,
        "not corrupt, so not forgotten: it may be readable again"
    );
    assert_eq!(tier.get(&key(2).id()).await, Some(entry(&key(2), 0, 100)));
}

#[tokio::test]
async fn failing_writes_back_off_while_reads_go_on() {
    let directory = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(directory.path().to_path_buf(), 1 << 20)
        .await
        .unwrap();
    // Long enough that a slow machine cannot leave the backoff before the checks inside it.
    tier.set_write_backoff(Duration::from_secs(60));
    let readable = key(0);
    tier.put(readable.id(), &entry(&readable, 0, 1_000)).await;
    let mut shards = vec![shard_name(&readable.id())];
    let (index, broken) = key_outside(&shards, 1);
    shards.push(shard_name(&broken.id()));
    let (_, later) = key_outside(&shards, index + 1);

    // Tests run as root, where permissions do not stop writes: a file where the shard directory
    // should be does (ENOTDIR), like a full or read-only disk would.
    let blocker = directory.path().join(shard_name(&broken.id()));
    fs::write(&blocker, b"not a directory").unwrap();
    tier.put(broken.id(), &entry(&broken, 0, 1_000)).await;
    assert!(!tier.is_writable());
    assert_eq!(tier.get(&broken.id()).await, None);
    assert_eq!(
        tier.get(&readable.id()).await,
        Some(entry(&readable, 0, 1_000)),
        "reads go on"
    );

    // Within the backoff nothing is written, even where it would work.
    tier.put(later.id(), &entry(&later, 0, 1_000)).await;
    assert_eq!(tier.get(&later.id()).await, None);
    assert!(!tier.is_writable());
    assert_agrees_with_disk(&tier);

    fs::remove_file(&blocker).unwrap();
    tier.set_write_backoff(Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tier.put(later.id(), &entry(&later, 0, 1_000)).await;
    assert!(tier.is_writable());
    assert_eq!(tier.get(&later.id()).await, Some(entry(&later, 0, 1_000)));
    tier.put(broken.id(), &entry(&broken, 0, 1_000)).await;
    assert_eq!(tier.get(&broken.id()).await, Some(entry(&broken, 0, 1_000)));
    assert_eq!(tier.len(), 3);
    assert_agrees_with_disk(&tier);
}

#[tokio::test]
async fn a_put_that_is_skipped_drops_the_older_value() {
    let directory = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(directory.path().to_path_buf(), 1 << 20)
        .await
        .unwrap();
    tier.set_write_backoff(Duration::from_secs(60));
    let replaced = key(0);
    tier.put(replaced.id(), &entry(&replaced, 0, 100)).await;
    let (_, broken) = key_outside(&[shard_name(&replaced.id())], 1);
    fs::write(directory.path().join(shard_name(&broken.id())), b"x").unwrap();
    tier.put(broken.id(), &entry(&broken, 0, 100)).await;
    assert!(!tier.is_writable());
    tier.put(replaced.id(), &entry(&replaced, 1, 100)).await;
    assert_eq!(
        tier.get(&replaced.id()).await,
        None,
        "the old value is not served after a newer put"
    );
    assert_agrees_with_disk(&tier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_keep_index_and_files_in_agreement() {
    let directory = tempfile::tempdir().unwrap();
    let size = encoded_size(&entry(&key(0), 0, 3_000));
    let tier = DiskTier::open(directory.path().to_path_buf(), 25 * size)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16u64)
        .map(|task| {
            let tier = tier.clone();
            tokio::spawn(async move {
                let mut random = rand::rngs::StdRng::seed_from_u64(task);
                for _ in 0..400 {
                    // Few ids, so that the same id is hit from many tasks at once.
                    let key = key(random.random_range(0..40));
                    match random.random_range(0..100) {
                        0..=44 => {
                            let version = random.random_range(0..1_000);
                            let length = random.random_range(0..6_000);
                            tier.put(key.id(), &entry(&key, version, length)).await;
                        }
                        45..=89 => {
                            if let Some(found) = tier.get(&key.id()).await {
                                let version =
                                    u32::from_le_bytes(found.payload[..4].try_into().unwrap());
                                let expected = entry(&key, version, found.payload.len() - 4);
                                assert_eq!(
                                    found, expected,
                                    "a get returns a whole value of its key"
                                );
                            }
                        }
                        90..=96 => tier.remove(&key.id()).await,
                        _ => {
                            tier.purge(&Selector::component_version(
                                "acme.org/a",
                                &format!("{:04}", random.random_range(0..40)),
                            ))
                            .await;
                        }
                    }
                    assert!(tier.bytes() <= tier.max_bytes());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(!tier.is_empty());
    assert_agrees_with_disk(&tier);
    let (bytes, entries) = (tier.bytes(), tier.len());
    drop(tier);
    let reopened = DiskTier::open(directory.path().to_path_buf(), 25 * size)
        .await
        .unwrap();
    assert_eq!((reopened.bytes(), reopened.len()), (bytes, entries));
}

/// Not a test of behaviour: prints put/get latency and open time. Run with
/// `cargo test -p odg-cache --release disk_tests::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_latency_and_open_time() {
    fn percentiles(mut samples: Vec<Duration>) -> String {
        samples.sort();
        let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction) as usize];
        format!("p50 {:?}, p99 {:?}, max {:?}", at(0.5), at(0.99), at(1.0))
    }
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().to_path_buf();
    let count = 10_000;
    // The filesystem alone, for comparison: the same create, write, rename and read, inline.
    let raw = directory.path().join("raw");
    fs::create_dir_all(&raw).unwrap();
    let encoded = encode_entry(&entry(&key(0), 0, 10 * 1024));
    let mut writes = Vec::with_capacity(count);
    for index in 0..count {
        let started = Instant::now();
        let temp = raw.join(format!(".{index}.tmp"));
        fs::write(&temp, &encoded).unwrap();
        fs::rename(&temp, raw.join(format!("{index}.entry"))).unwrap();
        writes.push(started.elapsed());
    }
    let mut reads = Vec::with_capacity(count);
    for index in 0..count {
        let started = Instant::now();
        let bytes = fs::read(raw.join(format!("{index}.entry"))).unwrap();
        decode_entry(&bytes).unwrap();
        reads.push(started.elapsed());
    }
    println!("raw write + rename, one thread: {}", percentiles(writes));
    println!("raw read + decode, one thread: {}", percentiles(reads));

    let tier = DiskTier::open(path.clone(), 1 << 30).await.unwrap();
    let mut puts = Vec::with_capacity(count);
    for index in 0..count {
        let value = entry(&key(index), 0, 10 * 1024);
        let started = Instant::now();
        tier.put(key(index).id(), &value).await;
        puts.push(started.elapsed());
    }
    let mut replacing = Vec::with_capacity(count);
    for index in 0..count {
        let value = entry(&key(index), 1, 10 * 1024);
        let started = Instant::now();
        tier.put(key(index).id(), &value).await;
        replacing.push(started.elapsed());
    }
    let mut gets = Vec::with_capacity(count);
    for index in 0..count {
        let started = Instant::now();
        assert!(tier.get(&key(index).id()).await.is_some());
        gets.push(started.elapsed());
    }
    let mut misses = Vec::with_capacity(count);
    for index in count..2 * count {
        let started = Instant::now();
        assert!(tier.get(&key(index).id()).await.is_none());
        misses.push(started.elapsed());
    }
    println!("put 10 KiB, new id: {}", percentiles(puts));
    println!("put 10 KiB, replacing: {}", percentiles(replacing));
    println!("get 10 KiB (page cache warm): {}", percentiles(gets));
    println!("get miss: {}", percentiles(misses));
    let bytes = tier.bytes();
    drop(tier);
    let started = Instant::now();
    let reopened = DiskTier::open(path.clone(), 1 << 30).await.unwrap();
    println!(
        "open with {} entries, {} bytes (page cache warm): {:?}",
        reopened.len(),
        bytes,
        started.elapsed()
    );
    let started = Instant::now();
    let evicting = DiskTier::open(path, 10 * 1024 * 1024).await.unwrap();
    println!(
        "open evicting down to 10 MiB ({} entries left): {:?}",
        evicting.len(),
        started.elapsed()
    );
}
