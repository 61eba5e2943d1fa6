//! Kill -9 safety of the disk tier. The test re-executes its own binary as a child that writes
//! entries as fast as it can and SIGKILLs it mid-write, three times; afterwards no `.entry` file
//! may be torn, every entry the reopened tier returns must be exactly what was written for its
//! key, no temp file may remain, and the byte count must equal the files on disk.
//!
//! A separate test binary because it spawns processes; works under `cargo test` and nextest alike
//! (both run one test as `<binary> --exact <name> --nocapture`; the child adds `--ignored`).
//! The metrics test lives here too: the tier records from blocking threads, so it needs a
//! process-wide recorder, which the crate's unit-test binary must not have.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use odg_cache::metrics::{
    BYTES, CAPACITY_BYTES, CORRUPT_ENTRIES_TOTAL, ENTRIES, ERRORS_TOTAL, EVICTIONS_TOTAL,
    OVERSIZE_SKIPPED_TOTAL,
};
use odg_cache::{
    decode_entry, encode_entry, CacheKey, DiskTier, EntryMeta, Kind, Scope, Stamp, StoredEntry,
};

/// Names the directory the child writes to; without it the child test does nothing.
const DIRECTORY_VARIABLE: &str = "ODG_DISK_CRASH_TEST_DIRECTORY";
const CHILD_TEST: &str = "disk_crash_child_writes_until_killed";
const READY_LINE: &str = "odg-disk-crash-child-ready";
const WRITTEN_PREFIX: &str = "odg-disk-crash-child-written ";
const KEYS: usize = 300;
/// Small enough that the child evicts all the time (entries average about 10 KiB).
const MAX_BYTES: u64 = 1024 * 1024;
const WRITERS: u32 = 8;

fn key(index: usize) -> CacheKey {
    CacheKey::new(
        Kind::new("descriptor").unwrap(),
        &["crash", &format!("{index:04}")],
        Scope::component("acme.org/crash"),
    )
}

/// The value written for `index` in write number `version`: the version, then bytes derived
/// from the key and the version, of a length derived from both.
fn entry(index: usize, version: u32) -> StoredEntry {
    let key = key(index);
    let length = (index * 37 + version as usize * 101) % 20_000;
    let id = key.id().0;
    let mut payload = version.to_le_bytes().to_vec();
    payload
        .extend((0..length).map(|position| id[position % 16] ^ (position as u8) ^ (version as u8)));
    StoredEntry {
        meta: EntryMeta {
            kind: key.kind().clone(),
            scope: key.scope().clone(),
            stamp: Stamp::from_array([1, 2, 3, 4, u64::from(version)]),
            created_at_ms: 1_700_000_000_000 + u64::from(version),
            fresh_until_ms: None,
            expires_at_ms: None,
        },
        key_text: key.text().to_string(),
        payload: Bytes::from(payload),
    }
}

/// Checks `found` is exactly a value written for `index`.
fn assert_written_value(index: usize, found: &StoredEntry) {
    assert!(found.payload.len() >= 4, "payload of {index} too short");
    let version = u32::from_le_bytes(found.payload[..4].try_into().unwrap());
    assert_eq!(
        *found,
        entry(index, version),
        "entry {index} differs from what was written"
    );
}

fn files_ending(directory: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        for dirent in std::fs::read_dir(&current).unwrap().flatten() {
            if dirent.file_type().unwrap().is_dir() {
                pending.push(dirent.path());
            } else if dirent.file_name().to_string_lossy().ends_with(suffix) {
                found.push(dirent.path());
            }
        }
    }
    found
}

#[test]
#[ignore = "the child process of disk_kill9_leaves_only_whole_entries"]
fn disk_crash_child_writes_until_killed() {
    let Some(directory) = std::env::var_os(DIRECTORY_VARIABLE) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let tier = DiskTier::open(PathBuf::from(directory), MAX_BYTES)
            .await
            .unwrap();
        // Whatever the previous child left must already be whole.
        for index in 0..KEYS {
            if let Some(found) = tier.get(&key(index).id()).await {
                assert_written_value(index, &found);
            }
        }
        println!("{READY_LINE}");
        // In case the parent died: do not run forever.
        let deadline = Instant::now() + Duration::from_secs(60);
        let versions = Arc::new(AtomicU32::new(rand_start()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let tier = tier.clone();
                let versions = Arc::clone(&versions);
                tokio::spawn(async move {
                    let mut step = writer as usize;
                    while Instant::now() < deadline {
                        let index = (step * 7919) % KEYS;
                        let version = versions.fetch_add(1, Ordering::Relaxed);
                        tier.put(key(index).id(), &entry(index, version)).await;
                        if step % 5 == 0 {
                            let other = (step * 31) % KEYS;
                            if let Some(found) = tier.get(&key(other).id()).await {
                                assert_written_value(other, &found);
                            }
                        }
                        if step % 97 == 0 {
                            tier.remove(&key((step * 13) % KEYS).id()).await;
                        }
                        step += WRITERS as usize;
                    }
                })
            })
            .collect();
        // Progress for the parent's report; the last line before the kill is the count it sees.
        let written = Arc::clone(&versions);
        let start = written.load(Ordering::Relaxed);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await; // polling: until the child reports ready
                println!(
                    "{WRITTEN_PREFIX}{}",
                    written.load(Ordering::Relaxed) - start
                );
            }
        });
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

/// Versions start apart in each child so that rounds write different values.
fn rand_start() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos() % 1_000_000 * 1_000)
        .unwrap_or(0)
}

#[test]
fn disk_kill9_leaves_only_whole_entries() {
    let directory = tempfile::tempdir().unwrap();
    let mut temp_files_after_kills = Vec::new();
    let mut puts_before_kills = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
            .env(DIRECTORY_VARIABLE, directory.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read stdout on a thread until the child is ready, and drain it after that.
        let stdout = child.stdout.take().unwrap();
        let (ready_sender, ready) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut written = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(READY_LINE) {
                    let _ = ready_sender.send(());
                }
                if let Some(count) = line.strip_prefix(WRITTEN_PREFIX) {
                    written = count.parse().unwrap_or(written);
                }
            }
            written
        });
        let child_output = |child: &mut std::process::Child| {
            let mut errors = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut errors);
            }
            errors
        };
        if ready.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "round {round}: the child never got ready:\n{}",
                child_output(&mut child)
            );
        }
        std::thread::sleep(Duration::from_millis(300 + 100 * round)); // under test: a kill at a varying moment of the write load
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "round {round}: the child stopped by itself ({status}):\n{}",
                child_output(&mut child)
            );
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        puts_before_kills.push(reader.join().unwrap());

        temp_files_after_kills.push(files_ending(directory.path(), ".tmp").len());
        for path in files_ending(directory.path(), ".entry") {
            let bytes = std::fs::read(&path).unwrap();
            let decoded = decode_entry(&bytes).unwrap_or_else(|error| {
                panic!("round {round}: {} is torn: {error}", path.display())
            });
            let index = (0..KEYS)
                .find(|index| key(*index).text() == decoded.key_text)
                .unwrap_or_else(|| panic!("{} holds an unknown key", path.display()));
            assert_eq!(
                path.file_name().unwrap().to_string_lossy(),
                format!("{}.entry", key(index).id().to_hex()),
                "filed under its own id"
            );
            assert_written_value(index, &decoded);
        }
    }
    println!("puts started before each kill (about): {puts_before_kills:?}");
    println!("temp files left by each kill: {temp_files_after_kills:?}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _serial = in_process_tiers();
    runtime.block_on(async {
        let tier = DiskTier::open(directory.path().to_path_buf(), MAX_BYTES)
            .await
            .unwrap();
        assert!(
            files_ending(directory.path(), ".tmp").is_empty(),
            "open deletes temp files"
        );
        let files = files_ending(directory.path(), ".entry");
        let on_disk: u64 = files
            .iter()
            .map(|path| std::fs::metadata(path).unwrap().len())
            .sum();
        assert_eq!(
            tier.bytes(),
            on_disk,
            "bytes() is the sum of the file sizes"
        );
        assert_eq!(tier.len(), files.len());
        assert!(tier.bytes() <= MAX_BYTES);
        assert!(!tier.is_empty(), "the children wrote something");
        let mut found = 0;
        for index in 0..KEYS {
            if let Some(value) = tier.get(&key(index).id()).await {
                assert_written_value(index, &value);
                found += 1;
            }
        }
        assert_eq!(found, tier.len(), "every indexed entry is readable");
        println!("after 3 kills: {found} entries, {} bytes", tier.bytes());
    });
}

/// Held while a test of this binary has a tier open in this process, so that the metrics test
/// sees only its own tier in the gauges.
fn in_process_tiers() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    lock(&SERIAL)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The disk tier's series in the shared test recorder (installed globally: the tier records from
/// blocking threads, where a local recorder does not reach).
struct DiskMetrics(&'static odg_test_support::CapturingRecorder);

impl DiskMetrics {
    fn installed() -> DiskMetrics {
        DiskMetrics(odg_test_support::CapturingRecorder::global())
    }

    fn counter(&self, name: &str, labels: &str) -> u64 {
        self.0.counter(&format!("{name}{{{labels}}}"))
    }

    fn gauge(&self, name: &str) -> f64 {
        self.0.gauge(&format!("{name}{{tier=disk}}"))
    }
}

fn entry_file(directory: &Path, index: usize) -> PathBuf {
    let hex = key(index).id().to_hex();
    directory.join(&hex[..2]).join(format!("{hex}.entry"))
}

#[test]
fn disk_metrics_follow_the_tier() {
    let recorder = DiskMetrics::installed();
    // A sync test holding the guard around the runtime: no lock is held across an await.
    let _serial = in_process_tiers();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(disk_metrics_scenario(&recorder));
}

async fn disk_metrics_scenario(recorder: &DiskMetrics) {
    let counter = |name: &str| recorder.counter(name, "tier=disk");
    let errors = |operation: &str| {
        recorder.counter(ERRORS_TOTAL, &format!("operation={operation},tier=disk"))
    };
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().to_path_buf();
    // Counters only grow and other tests of this binary may have moved them: compare deltas.
    let evictions = counter(EVICTIONS_TOTAL);
    let corrupt = counter(CORRUPT_ENTRIES_TOTAL);
    let oversize = counter(OVERSIZE_SKIPPED_TOTAL);
    let (put_errors, get_errors) = (errors("put"), errors("get"));

    // Entries of 20 KB; ten fit.
    let sized = |index: usize| StoredEntry {
        payload: Bytes::from(vec![index as u8; 20_000]),
        ..entry(index, 0)
    };
    let max_bytes = 10 * encode_entry(&sized(0)).len() as u64;
    let tier = DiskTier::open(path.clone(), max_bytes).await.unwrap();
    let assert_gauges = |tier: &DiskTier| {
        assert_eq!(recorder.gauge(BYTES), tier.bytes() as f64);
        assert_eq!(recorder.gauge(ENTRIES), tier.len() as f64);
        assert_eq!(recorder.gauge(CAPACITY_BYTES), tier.max_bytes() as f64);
    };
    assert_gauges(&tier);
    for index in 0..40 {
        tier.put(key(index).id(), &sized(index)).await;
        assert_gauges(&tier);
    }
    assert_eq!(tier.len(), 10);
    assert_eq!(counter(EVICTIONS_TOTAL) - evictions, 30);
    let held: Vec<usize> = (30..40).collect();

    // A corrupt file, dropped on get.
    let file = entry_file(&path, held[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    assert!(tier.get(&key(held[0]).id()).await.is_none());
    assert_eq!(counter(CORRUPT_ENTRIES_TOTAL) - corrupt, 1);
    assert_gauges(&tier);

    // Larger than a quarter of the bound.
    let mut large = entry(held[1], 1);
    large.payload = Bytes::from(vec![0u8; (max_bytes / 4) as usize]);
    tier.put(key(held[1]).id(), &large).await;
    assert_eq!(counter(OVERSIZE_SKIPPED_TOTAL) - oversize, 1);
    assert_gauges(&tier);

    // An unreadable file (a directory in its place) and a failing write (a file in place of a
    // shard directory).
    let file = entry_file(&path, held[2]);
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    assert!(tier.get(&key(held[2]).id()).await.is_none());
    assert_eq!(errors("get") - get_errors, 1);
    let blocked = (100..)
        .find(|index| !entry_file(&path, *index).parent().unwrap().exists())
        .unwrap();
    std::fs::write(
        entry_file(&path, blocked).parent().unwrap(),
        b"not a directory",
    )
    .unwrap();
    tier.put(key(blocked).id(), &entry(blocked, 0)).await;
    assert_eq!(errors("put") - put_errors, 1);
    assert!(!tier.is_writable());
    assert_gauges(&tier);
    std::fs::remove_dir(&file).unwrap();
    drop(tier);
    assert_eq!(
        recorder.gauge(BYTES),
        0.0,
        "a dropped tier takes its share out"
    );
    assert_eq!(recorder.gauge(ENTRIES), 0.0);
    assert_eq!(recorder.gauge(CAPACITY_BYTES), 0.0);

    // Corruption found while opening is counted too.
    let file = entry_file(&path, held[3]);
    let length = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    let reopened = DiskTier::open(path, max_bytes).await.unwrap();
    assert_eq!(counter(CORRUPT_ENTRIES_TOTAL) - corrupt, 2);
    assert_gauges(&reopened);
}
