//! What the cache tests share: descriptor sets generated in code, fast seeding of a registry,
//! pods started with cache flags, raw requests that may fail, Redis key prefixes that clean up
//! after themselves, and small readers of logs and `/proc`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use odg_oci::{sha256_digest, RegistryClient, RegistryClientConfig, OCI_MANIFEST_MEDIA_TYPE};
use odg_ocm::{
    component_repository_path, encode_descriptor_tar, version_to_tag, OcmRepositoryUrl,
    MEDIA_TYPE_CONFIG_LEGACY, MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{http_client, odg_command, OdgServer};

pub use odg_test_support::{shared_redis_url, SharedRedisPrefix};

/// The admin token every cache test pod accepts.
pub const ADMIN_TOKEN: &str = "cache-test-admin-token";
/// The label whose value tells which revision of a descriptor was served.
pub const REVISION_LABEL: &str = "acme.org/revision";

/// One component version: its identity and the YAML pushed for it.
#[derive(Debug, Clone)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    pub yaml: String,
}

/// A descriptor in the fixtures' style: a revision label (`revision` tells corrected copies
/// apart), `resources` generated resources (about 330 bytes of YAML each) and the given references.
pub fn descriptor(
    name: &str,
    version: &str,
    references: &[(String, String)],
    revision: &str,
    resources: usize,
) -> Descriptor {
    let mut yaml = format!(
        "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: '{name}'\n  version: '{version}'\n  \
         provider: 'acme'\n  repositoryContexts: []\n  labels:\n  - name: '{REVISION_LABEL}'\n    \
         value: '{revision}'\n  sources: []\n"
    );
    if resources == 0 {
        yaml.push_str("  resources: []\n");
    } else {
        yaml.push_str("  resources:\n");
        let short = name.rsplit('/').next().unwrap_or(name);
        for index in 0..resources {
            yaml.push_str(&format!(
                "  - name: 'resource-{index:04}'\n    version: '{version}'\n    type: 'ociImage'\n    \
                 relation: 'external'\n    access: {{type: 'ociRegistry', imageReference: \
                 'registry.acme.org/{short}/resource-{index:04}:{version}'}}\n    labels:\n    \
                 - name: 'acme.org/build'\n      value: {{revision: '{revision}', index: {index}, \
                 commit: '{index:040x}'}}\n"
            ));
        }
    }
    if references.is_empty() {
        yaml.push_str("  componentReferences: []\n");
    } else {
        yaml.push_str("  componentReferences:\n");
        for (reference, reference_version) in references {
            let short = reference.rsplit('/').next().unwrap_or(reference);
            yaml.push_str(&format!(
                "  - name: '{short}'\n    componentName: '{reference}'\n    version: \
                 '{reference_version}'\n    extraIdentity: {{}}\n"
            ));
        }
    }
    Descriptor {
        name: name.to_owned(),
        version: version.to_owned(),
        yaml,
    }
}

pub const FLEET_ROOT: &str = "acme.org/fleet/root";
pub const FLEET_ROOT_VERSION: &str = "1.0.0";
const FLEET_LEAVES: usize = 12;
const FLEET_LEAF_VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];
const FLEET_MIDS: usize = 5;

/// A tree of 30 component versions: the root references 5 mid components, each of which
/// references 5 of 12 leaf components (in 2 versions each; leaves shared between mids).
pub fn fleet_tree(revision: &str) -> Vec<Descriptor> {
    let leaf = |index: usize| format!("acme.org/fleet/leaf-{index:02}");
    let mut set = Vec::new();
    for index in 0..FLEET_LEAVES {
        for version in FLEET_LEAF_VERSIONS {
            set.push(descriptor(&leaf(index), version, &[], revision, 3));
        }
    }
    let mut mids = Vec::new();
    for mid in 0..FLEET_MIDS {
        let references: Vec<(String, String)> = (0..5)
            .map(|k| {
                (
                    leaf((mid * 2 + k) % FLEET_LEAVES),
                    FLEET_LEAF_VERSIONS[(mid + k) % 2].to_owned(),
                )
            })
            .collect();
        let name = format!("acme.org/fleet/mid-{mid}");
        set.push(descriptor(&name, "1.0.0", &references, revision, 5));
        mids.push((name, "1.0.0".to_owned()));
    }
    set.push(descriptor(
        FLEET_ROOT,
        FLEET_ROOT_VERSION,
        &mids,
        revision,
        2,
    ));
    set
}

/// The distinct component names of a set, in first-seen order.
pub fn component_names(set: &[Descriptor]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for descriptor in set {
        if !names.contains(&descriptor.name) {
            names.push(descriptor.name.clone());
        }
    }
    names
}

/// Pushes `set` to `repository` (`http://host:port/path`) in-process, `concurrency` at a time, in
/// the layout `odg push` writes: a config blob naming a tar layer that holds
/// `component-descriptor.yaml`. The YAML is stored as given (not parsed and rewritten, and
/// without the repository context `odg push` appends), which keeps seeding hundreds of
/// descriptors cheap in a debug build; `odg push` itself is used where a test corrects one.
pub async fn seed(repository: &str, set: &[Descriptor], concurrency: usize) {
    use odg_oci::OciStore as _;
    let repository: OcmRepositoryUrl = repository.parse().expect("a repository URL");
    let client = RegistryClient::new(RegistryClientConfig::default()).expect("a registry client");
    let store = Arc::new(client.endpoint(repository.plain_http, &repository.host));
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for descriptor in set.iter().cloned() {
        let (store, repository, permits) = (store.clone(), repository.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is open");
            let what = format!("push {}:{}", descriptor.name, descriptor.version);
            let path = component_repository_path(&repository, &descriptor.name);
            let layer = encode_descriptor_tar(&descriptor.yaml);
            let layer_digest = sha256_digest(&layer);
            let config = serde_json::to_vec(&serde_json::json!({
                "componentDescriptorLayer": {
                    "digest": layer_digest,
                    "mediaType": MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY,
                    "size": layer.len(),
                }
            }))
            .expect("JSON");
            let config_digest = sha256_digest(&config);
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": MEDIA_TYPE_CONFIG_LEGACY, "digest": config_digest, "size": config.len()},
                "layers": [{"mediaType": MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, "digest": layer_digest, "size": layer.len()}],
            }))
            .expect("JSON");
            store
                .put_blob(&path, &layer_digest, layer.into())
                .await
                .unwrap_or_else(|error| panic!("{what}: layer: {error}"));
            store
                .put_blob(&path, &config_digest, config.into())
                .await
                .unwrap_or_else(|error| panic!("{what}: config: {error}"));
            store
                .put_manifest(
                    &path,
                    &version_to_tag(&descriptor.version),
                    OCI_MANIFEST_MEDIA_TYPE,
                    manifest.into(),
                )
                .await
                .unwrap_or_else(|error| panic!("{what}: manifest: {error}"));
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a push task");
    }
}

/// Writes `descriptor` to a file in `directory` and uploads it with the real `odg push`.
pub async fn odg_push_one(repository: &str, directory: &Path, descriptor: &Descriptor) {
    let file = directory.join(format!(
        "{}-{}.yaml",
        descriptor.name.replace('/', "_"),
        descriptor.version
    ));
    std::fs::write(&file, &descriptor.yaml).expect("write the descriptor file");
    crate::harness::odg_push(repository, &[file]).await;
}

/// `odg serve --listen ... --cache-dir <its temp dir> ARGS...`
pub async fn start_pod(args: Vec<String>) -> OdgServer {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    OdgServer::start(&args).await
}

/// `odg serve` on a cache directory the test owns, so it outlives the process (kill -9 and restart).
pub async fn start_pod_in(cache_dir: &Path, args: Vec<String>) -> OdgServer {
    OdgServer::start_with(|command, setup| {
        command
            .arg("serve")
            .arg("--listen")
            .arg(setup.listen)
            .arg("--cache-dir")
            .arg(cache_dir)
            .args(&args);
    })
    .await
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// A GET that may fail (the pod may be dying): the status and JSON body, or the transport error.
pub async fn try_get(
    http: &reqwest::Client,
    base_url: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(&str, &str)],
) -> Result<(StatusCode, Value), String> {
    let mut request = http.get(format!("{base_url}{path}")).query(query);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|error| error.to_string())?;
    let body = serde_json::from_slice(&bytes)
        .map_err(|error| format!("{status}: not JSON ({error}): {bytes:?}"))?;
    Ok((status, body))
}

/// `DELETE /cache` with `query`, authenticated by `bearer` if given.
pub async fn delete_cache(
    http: &reqwest::Client,
    base_url: &str,
    bearer: Option<&str>,
    query: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = http.delete(format!("{base_url}/cache")).query(query);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("DELETE /cache answers");
    let status = response.status();
    let body = response.json().await.expect("DELETE /cache answers JSON");
    (status, body)
}

/// One API request: path and query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiRequest {
    pub path: &'static str,
    pub query: Vec<(String, String)>,
}

impl ApiRequest {
    /// `/ocm/component`; `version: None` asks for the greatest.
    pub fn component(name: &str, version: Option<&str>) -> ApiRequest {
        let mut query = vec![("component_name".to_owned(), name.to_owned())];
        if let Some(version) = version {
            query.push(("version".to_owned(), version.to_owned()));
        }
        ApiRequest {
            path: "/ocm/component",
            query,
        }
    }

    /// `/ocm/component/versions` with every version (`max=0`).
    pub fn versions(name: &str) -> ApiRequest {
        ApiRequest {
            path: "/ocm/component/versions",
            query: vec![
                ("component_name".to_owned(), name.to_owned()),
                ("max".to_owned(), "0".to_owned()),
            ],
        }
    }

    /// `/ocm/component/dependencies` with `populate`.
    pub fn dependencies(name: &str, version: &str, populate: &str) -> ApiRequest {
        ApiRequest {
            path: "/ocm/component/dependencies",
            query: vec![
                ("component_name".to_owned(), name.to_owned()),
                ("version".to_owned(), version.to_owned()),
                ("populate".to_owned(), populate.to_owned()),
            ],
        }
    }

    /// The same request with `ignore_cache=true` (neither looks up nor stores).
    pub fn uncached(&self) -> ApiRequest {
        let mut query = self.query.clone();
        query.push(("ignore_cache".to_owned(), "true".to_owned()));
        ApiRequest {
            path: self.path,
            query,
        }
    }

    pub async fn send(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Value), String> {
        try_get(http, base_url, self.path, &self.query, headers).await
    }
}

/// Every request a set can answer: each descriptor, each component's greatest version and
/// version list, and the dependency tree of every component version that has references.
pub fn every_request(set: &[Descriptor]) -> Vec<ApiRequest> {
    let mut requests: Vec<ApiRequest> = set
        .iter()
        .map(|descriptor| ApiRequest::component(&descriptor.name, Some(&descriptor.version)))
        .collect();
    for name in component_names(set) {
        requests.push(ApiRequest::component(&name, None));
        requests.push(ApiRequest::versions(&name));
    }
    for descriptor in set {
        if descriptor.yaml.contains("componentName:") {
            requests.push(ApiRequest::dependencies(
                &descriptor.name,
                &descriptor.version,
                "all",
            ));
        }
    }
    requests
}

/// The value of the revision label of a descriptor answer (`/ocm/component`).
pub fn revision_of(body: &Value) -> Option<String> {
    body["component"]["labels"]
        .as_array()?
        .iter()
        .find(|label| label["name"] == REVISION_LABEL)
        .and_then(|label| label["value"].as_str())
        .map(str::to_owned)
}

/// The revision labels of every element of a dependencies answer (`populate=all`), by name@version.
pub fn tree_revisions(body: &Value) -> Vec<(String, Option<String>)> {
    body["componentDependencies"]
        .as_array()
        .map(|elements| {
            elements
                .iter()
                .map(|element| {
                    let id = format!(
                        "{}@{}",
                        element["name"].as_str().unwrap_or("?"),
                        element["version"].as_str().unwrap_or("?")
                    );
                    let revision = element["labels"].as_array().and_then(|labels| {
                        labels
                            .iter()
                            .find(|label| label["name"] == REVISION_LABEL)
                            .and_then(|label| label["value"].as_str())
                            .map(str::to_owned)
                    });
                    (id, revision)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `request` on a pod every 5 ms until `accept` holds for its 200 answer; the time it took,
/// or `None` after `timeout`.
pub async fn poll_until(
    http: &reqwest::Client,
    base_url: &str,
    request: &ApiRequest,
    timeout: Duration,
    accept: impl Fn(&Value) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok((StatusCode::OK, body)) = request.send(http, base_url, &[]).await {
            if accept(&body) {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await; // polling: until the condition holds
    }
    None
}

/// How often `needle` occurs in the pod's log.
pub fn log_count(server: &OdgServer, needle: &str) -> usize {
    server.log().matches(needle).count()
}

/// Waits until `needle` occurs at least `count` times in the pod's log.
pub async fn wait_for_log(
    server: &OdgServer,
    needle: &str,
    count: usize,
    timeout: Duration,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if log_count(server, needle) >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // polling: until the log line appears
    }
    false
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("/proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Runs `odg cache invalidate ARGS...` (the real CLI) to completion; returns success and stdout.
pub async fn odg_cache_invalidate(args: &[&str]) -> (bool, String, String) {
    let mut command = odg_command();
    command.arg("cache").arg("invalidate").args(args);
    let output = crate::harness::run_bounded(command, "odg cache invalidate").await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// p-th percentile (0..=100) of `durations`, which it sorts.
pub fn percentile(durations: &mut [Duration], p: usize) -> Duration {
    if durations.is_empty() {
        return Duration::ZERO;
    }
    durations.sort();
    let index = (durations.len() - 1) * p / 100;
    durations[index]
}

/// A deterministic shuffle (xorshift), so a failing order can be reproduced.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed.max(1);
    for index in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(index, (state % (index as u64 + 1)) as usize);
    }
}

/// The arguments of a pod in a test fleet: its name, Redis (and key prefix, if any), the admin
/// token, and what it serves (`extra`: `--ocm-repo ...`, `--database-url ...`).
pub fn fleet_pod_args(
    pod: &str,
    redis_url: &str,
    prefix: Option<&str>,
    extra: &[&str],
) -> Vec<String> {
    let mut args = strings(extra);
    args.extend(strings(&[
        "--redis-url",
        redis_url,
        "--pod-id",
        pod,
        "--admin-token",
        ADMIN_TOKEN,
    ]));
    if let Some(prefix) = prefix {
        args.extend(strings(&["--redis-key-prefix", prefix]));
    }
    args
}

/// Sends every request to `base` (`CONCURRENCY` at a time) and returns the 200 answers' bodies.
pub async fn answers_of(base: &str, requests: &[ApiRequest]) -> HashMap<ApiRequest, Value> {
    const CONCURRENCY: usize = 4;
    let http = http_client();
    let queue = Arc::new(std::sync::Mutex::new(requests.to_vec()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (http, queue, base) = (http.clone(), queue.clone(), base.to_owned());
        workers.spawn(async move {
            let mut answers = Vec::new();
            loop {
                let Some(request) = queue.lock().unwrap().pop() else {
                    return answers;
                };
                let (status, body) = request
                    .send(&http, &base, &[])
                    .await
                    .unwrap_or_else(|error| panic!("{request:?}: {error}"));
                assert_eq!(status, StatusCode::OK, "{request:?}: {body}");
                answers.push((request, body));
            }
        });
    }
    let mut answers = HashMap::new();
    while let Some(result) = workers.join_next().await {
        answers.extend(result.expect("a request worker"));
    }
    answers
}

/// What a fresh pod reading the registry directly, without disk tier, answers with
/// `ignore_cache`, keyed by the request without `ignore_cache`.
pub async fn truth(
    registry_repository: &str,
    requests: &[ApiRequest],
) -> HashMap<ApiRequest, Value> {
    let reference = start_pod(strings(&[
        "--ocm-repo",
        registry_repository,
        "--disk-cache-bytes",
        "0",
    ]))
    .await;
    let uncached: Vec<ApiRequest> = requests.iter().map(ApiRequest::uncached).collect();
    // the requests may repeat (a burst asks for the same key many times): answers are shared
    let answers = answers_of(reference.base_url(), &uncached).await;
    requests
        .iter()
        .zip(&uncached)
        .map(|(request, uncached)| (request.clone(), answers[uncached].clone()))
        .collect()
}
