//! The disk tier across process deaths, without Redis: kill -9 in the middle of heavy cache
//! writes, restart on the same cache directory, and every answer must still be the registry's
//! truth; and entries written before a restart are served after it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use odg_test_support::{DelayProxy, PathKind, RegistryServer};
use reqwest::StatusCode;
use serde_json::Value;

use crate::cache_support::{answers_of, truth};
use crate::cache_support::{
    delete_cache, descriptor, every_request, fleet_tree, proc_status_kib, seed, shuffle,
    start_pod_in, strings, ApiRequest, Descriptor, ADMIN_TOKEN,
};
use crate::harness::{http_client, OdgServer};

const COMPONENTS: usize = 20;
const VERSIONS: [&str; 5] = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"];

/// 100 component versions of about 9 KiB each: component i references component i+1 in the
/// same version, so every version of component 0 has a tree of all 20 components (a chain: with
/// two references each, the paths, and so the tree answers, would grow like Fibonacci numbers).
fn chain_set() -> Vec<Descriptor> {
    let name = |index: usize| format!("acme.org/crash/c-{index:02}");
    let mut set = Vec::new();
    for index in 0..COMPONENTS {
        for version in VERSIONS {
            let references: Vec<(String, String)> = [index + 1]
                .into_iter()
                .filter(|next| *next < COMPONENTS)
                .map(|next| (name(next), version.to_owned()))
                .collect();
            set.push(descriptor(
                &name(index),
                version,
                &references,
                "original",
                25,
            ));
        }
    }
    set
}

/// Every descriptor, every component's greatest version and version list, and the trees of
/// components 0 and 10 in every version (references only: whole descriptors in 20-node trees
/// would make the debug build spend the test's time on JSON).
fn crash_requests(set: &[Descriptor]) -> Vec<ApiRequest> {
    let mut requests: Vec<ApiRequest> = every_request(set)
        .into_iter()
        .filter(|request| request.path != "/ocm/component/dependencies")
        .collect();
    for root in ["acme.org/crash/c-00", "acme.org/crash/c-10"] {
        for version in VERSIONS {
            requests.push(ApiRequest::dependencies(
                root,
                version,
                "componentReferences",
            ));
        }
    }
    requests
}

/// `.entry` and `.tmp` files under the disk tier's directory.
fn disk_files(cache_dir: &Path) -> (usize, usize) {
    let mut entries = 0;
    let mut temporary = 0;
    let Ok(shards) = std::fs::read_dir(cache_dir.join("cache-entries")) else {
        return (0, 0);
    };
    for shard in shards.flatten() {
        let Ok(files) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".entry") {
                entries += 1;
            } else if name.ends_with(".tmp") {
                temporary += 1;
            }
        }
    }
    (entries, temporary)
}

/// Asks `pod` every request once and compares with the truth; panics on the first difference.
async fn assert_all_answers_true(
    pod: &OdgServer,
    requests: &[ApiRequest],
    truth: &HashMap<ApiRequest, Value>,
) {
    let answers = answers_of(pod.base_url(), requests).await;
    for request in requests {
        assert!(
            answers[request] == truth[request],
            "{request:?}: the restarted pod answers differently from the registry\n{}\n--- truth ---\n{}",
            answers[request],
            truth[request]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_heavy_cache_writes_and_a_restart_leave_every_answer_correct() {
    const TASKS: usize = 8;
    /// About 3 s of the workload in a debug build; the tasks have written and rewritten entries
    /// by then, and many writes are in flight.
    const KILL_AFTER_ANSWERS: usize = 200;
    let registry = RegistryServer::start().await;
    let registry_repository = format!("{}/ocm", registry.url());
    let set = chain_set();
    seed(&registry_repository, &set, 8).await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    let repository = format!("{}/ocm", proxy.url());
    let cache_dir = tempfile::tempdir().unwrap();
    let args = strings(&[
        "--ocm-repo",
        &repository,
        "--disk-cache-bytes",
        "256MiB",
        "--admin-token",
        ADMIN_TOKEN,
    ]);

    let first = start_pod_in(cache_dir.path(), args.clone()).await;
    // An invalidation of a component nobody asks for, before the crash: the restarted pod must
    // honour generations written before it died (and its disk entries all the same).
    let http = http_client();
    let (status, body) = delete_cache(
        &http,
        first.base_url(),
        Some(ADMIN_TOKEN),
        &[("component_name", "acme.org/crash/unrelated")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut requests = crash_requests(&set);
    shuffle(&mut requests, 0xdead_beef);
    let requests = Arc::new(requests);
    let answered = Arc::new(AtomicUsize::new(0));
    let base = first.base_url().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (requests, answered, base) = (requests.clone(), answered.clone(), base.clone());
        tasks.spawn(async move {
            let http = http_client();
            // Each task walks all requests from its own offset; every other request refreshes
            // (`Shortcut-Cache`: load and store again), so entries are replaced on disk too.
            for step in 0..requests.len() {
                let index = (task * requests.len() / TASKS + step) % requests.len();
                let headers: &[(&str, &str)] = if step % 2 == 1 {
                    &[("Shortcut-Cache", "true")]
                } else {
                    &[]
                };
                match requests[index].send(&http, &base, headers).await {
                    Ok((status, body)) => {
                        assert_eq!(status, StatusCode::OK, "{:?}: {body}", requests[index]);
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return, // killed
                }
            }
        });
    }
    let total = requests.len() * TASKS;
    let started = Instant::now();
    while answered.load(Ordering::SeqCst) < KILL_AFTER_ANSWERS {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the workload is too slow: {} answers in 30 s",
            answered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(2)).await; // polling: until enough answers before the kill
    }
    let pid = first.pid();
    let rss_kib = proc_status_kib(pid, "VmRSS");
    drop(first); // kill -9
    let killed_after = answered.load(Ordering::SeqCst);
    while let Some(result) = tasks.join_next().await {
        result.expect("a workload task");
    }
    let (entries, temporary) = disk_files(cache_dir.path());
    eprintln!(
        "killed (SIGKILL, RSS {} MiB) after {killed_after} of {total} answers in {:?}; \
         {entries} entry files and {temporary} temp files left on disk",
        rss_kib / 1024,
        started.elapsed()
    );
    assert!(entries > 0, "the workload wrote entries before the kill");

    let truth = truth(&registry_repository, &requests).await;
    proxy.reset_counters();
    let second = start_pod_in(cache_dir.path(), args.clone()).await;
    let opened = second
        .log()
        .lines()
        .find(|line| line.contains("disk cache opened"))
        .map(|line| {
            line.split_whitespace()
                .filter(|field| {
                    [
                        "entries=",
                        "corrupt_deleted=",
                        "temp_files_deleted=",
                        "unreadable=",
                    ]
                    .iter()
                    .any(|name| field.starts_with(name))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "(no disk cache line in the log)".to_owned());
    eprintln!("restarted: disk cache opened with {opened}");
    assert_all_answers_true(&second, &requests, &truth).await;
    let blobs_fetched: usize = proxy.counts_of("GET", PathKind::Blob).values().sum();
    let (entries_after, temporary_after) = disk_files(cache_dir.path());
    eprintln!(
        "after the restart: {} requests answered as the registry does, {blobs_fetched} descriptor \
         blobs fetched for {} descriptors (the rest came from disk); {entries_after} entry files, \
         {temporary_after} temp files",
        requests.len(),
        set.len()
    );
    assert_eq!(
        temporary_after, 0,
        "the restart removed leftover temp files"
    );
    assert!(
        blobs_fetched < set.len(),
        "the restarted pod used none of the {entries} entries on disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_serves_its_entries_after_a_restart_without_redis() {
    let registry = RegistryServer::start().await;
    let registry_repository = format!("{}/ocm", registry.url());
    let set = fleet_tree("original");
    seed(&registry_repository, &set, 8).await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    let repository = format!("{}/ocm", proxy.url());
    let cache_dir = tempfile::tempdir().unwrap();
    let args = strings(&["--ocm-repo", &repository]);
    let requests: Vec<ApiRequest> = set
        .iter()
        .map(|d| ApiRequest::component(&d.name, Some(&d.version)))
        .collect();

    let first = start_pod_in(cache_dir.path(), args.clone()).await;
    let http = http_client();
    for request in &requests {
        let (status, body) = request.send(&http, first.base_url(), &[]).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while disk_files(cache_dir.path()).0 < set.len() {
        assert!(
            Instant::now() < deadline,
            "the pod did not write its entries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling: until the files are written
    }
    // A clean stop (SIGTERM), so nothing here is about crashes.
    terminate(&first).await;
    drop(first);

    proxy.reset_counters();
    let second = start_pod_in(cache_dir.path(), args).await;
    for request in &requests {
        let (status, body) = request.send(&http, second.base_url(), &[]).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let blobs_fetched: usize = proxy.counts_of("GET", PathKind::Blob).values().sum();
    assert_eq!(
        blobs_fetched,
        0,
        "{} entries were on disk, yet the restarted pod fetched {blobs_fetched} of {} descriptors from the registry",
        set.len(),
        set.len()
    );
}

/// Sends SIGTERM and waits (at most 10 s) until the process has exited (a zombie until reaped).
async fn terminate(server: &OdgServer) {
    let pid = server.pid();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if state.is_empty() || state.contains("State:\tZ") {
            return;
        }
        assert!(Instant::now() < deadline, "odg serve ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await; // polling: until the process exits
    }
}
