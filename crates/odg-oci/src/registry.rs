//! `RegistryClient` (shared HTTP client, token cache, per-host semaphores) and `RegistryEndpoint`,
//! the `OciStore` for one registry host speaking the OCI distribution API under `/v2/`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{self, HeaderName};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::auth::{repository_scope, Credentials};
use crate::blob_stream::{sliced, verified, BlobRead, BlobStream, ByteRange};
use crate::digest::{is_digest_reference, sha256_digest, verify_digest};
use crate::error::{OciError, OciErrorKind};
use crate::manifest::{
    content_type_essence, is_image_manifest_media_type, is_index_media_type,
    sniff_manifest_media_type, MANIFEST_ACCEPT,
};
use crate::metrics::Operation;
use crate::pagination::parse_next_link;
use crate::redirect::{PinnedResolver, RedirectGuard};
use crate::reference::{validate_digest_reference, validate_reference, validate_repository};
use crate::store::{FetchedManifest, OciStore, DEFAULT_MAX_MANIFEST_BYTES};
use crate::tls::{read_ca_file, warn_about_unusable_certificate_variables};
use crate::transport::{
    status_error, HttpClients, RequestAuth, RequestSpec, Transport, TrustedClients,
};
use odg_retry::RetryPolicy;

const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// Tag-list pages followed at most (a loop guard; real repositories need a handful).
const MAX_TAG_PAGES: usize = 10_000;

/// Settings of a `RegistryClient`. `Debug` redacts passwords.
#[derive(Debug, Clone)]
pub struct RegistryClientConfig {
    /// Credentials per registry `host[:port]` as passed to `RegistryClient::endpoint` (case-insensitive;
    /// default ports are not written: `ghcr.io`, not `ghcr.io:443`).
    pub credentials: HashMap<String, Credentials>,
    /// Requests in flight per host (including their body reads); token fetches count for the realm host.
    pub max_concurrent_requests_per_host: usize,
    pub connect_timeout: Duration,
    /// Whole-exchange timeout (headers and body) of one attempt.
    pub request_timeout: Duration,
    /// Retries after the first attempt on connection errors, timeouts, 408, 429 and 5xx.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is shortened to it.
    pub max_retry_after: Duration,
    pub max_manifest_bytes: u64,
    /// Limit for one page of a tag list.
    pub max_tags_page_bytes: u64,
    pub user_agent: String,
    /// PEM files of CAs trusted for every registry, besides Mozilla's roots and the system store
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
    pub ca_files: Vec<PathBuf>,
    /// PEM files of CAs trusted only for one registry `host[:port]` (keys as in `credentials`).
    pub host_ca_files: HashMap<String, Vec<PathBuf>>,
}

impl Default for RegistryClientConfig {
    fn default() -> Self {
        RegistryClientConfig {
            credentials: HashMap::new(),
            max_concurrent_requests_per_host: 32,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_retries: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_tags_page_bytes: 16 * 1024 * 1024,
            user_agent: concat!("odg-oci/", env!("CARGO_PKG_VERSION")).to_owned(),
            ca_files: Vec::new(),
            host_ca_files: HashMap::new(),
        }
    }
}

/// A registry client: cheap to clone, one connection pool, token cache and semaphore per host for all clones.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    transport: Transport,
    max_manifest_bytes: u64,
    max_tags_page_bytes: u64,
}

impl RegistryClient {
    /// Builds the client; fails when a CA file cannot be read or holds no certificate.
    pub fn new(config: RegistryClientConfig) -> Result<RegistryClient, OciError> {
        warn_about_unusable_certificate_variables();
        let mut common_roots = Vec::new();
        for path in &config.ca_files {
            common_roots.extend(read_ca_file(path)?);
        }
        let redirect_guard = RedirectGuard::default();
        let trusted_clients = |roots: Vec<reqwest::Certificate>| -> Result<_, OciError> {
            Ok(TrustedClients {
                direct: build_http_client(&config, roots.clone(), None)?,
                redirected: build_http_client(&config, roots, Some(redirect_guard.resolver()))?,
            })
        };
        let mut by_host = HashMap::new();
        for (host, paths) in &config.host_ca_files {
            let mut roots = common_roots.clone();
            for path in paths {
                roots.extend(read_ca_file(path)?);
            }
            by_host.insert(host.to_ascii_lowercase(), trusted_clients(roots)?);
        }
        let default = trusted_clients(common_roots)?;
        let http = HttpClients {
            default,
            by_host,
            redirect_guard,
        };
        let retry = RetryPolicy {
            max_retries: config.max_retries,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            max_retry_after: config.max_retry_after,
        };
        Ok(RegistryClient {
            inner: Arc::new(ClientInner {
                transport: Transport::new(
                    http,
                    retry,
                    config.credentials,
                    config.max_concurrent_requests_per_host,
                ),
                max_manifest_bytes: config.max_manifest_bytes,
                max_tags_page_bytes: config.max_tags_page_bytes,
            }),
        })
    }

    /// An `OciStore` for `http(s)://host/v2/...`. `host` is `name[:port]`; an unusable one makes
    /// every operation fail with kind `NotFound`.
    pub fn endpoint(&self, plain_http: bool, host: &str) -> RegistryEndpoint {
        let scheme = if plain_http { "http" } else { "https" };
        let host_is_plain = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
            });
        let base = host_is_plain
            .then(|| Url::parse(&format!("{scheme}://{host}/")).ok())
            .flatten()
            .filter(|url| url.host_str().is_some());
        RegistryEndpoint {
            client: self.clone(),
            host: host.to_owned(),
            base,
        }
    }
}

/// One HTTP client: the common trust roots plus `extra_roots`; redirects are followed by hand.
fn build_http_client(
    config: &RegistryClientConfig,
    extra_roots: Vec<reqwest::Certificate>,
    resolver: Option<Arc<PinnedResolver>>,
) -> Result<reqwest::Client, OciError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(reqwest::redirect::Policy::none());
    for root in extra_roots {
        builder = builder.add_root_certificate(root);
    }
    if let Some(resolver) = resolver {
        builder = builder.dns_resolver(resolver);
    }
    builder
        .build()
        .map_err(|error| OciError::protocol(format!("cannot build HTTP client: {error}")))
}

/// One registry host as an `OciStore`.
#[derive(Debug, Clone)]
pub struct RegistryEndpoint {
    client: RegistryClient,
    host: String,
    /// `http(s)://host/`; `None` when `host` was unusable.
    base: Option<Url>,
}

impl RegistryEndpoint {
    /// `host[:port]` as given to `RegistryClient::endpoint`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http(s)://host/`, if the host was usable.
    pub fn base_url(&self) -> Option<&Url> {
        self.base.as_ref()
    }

    fn transport(&self) -> &Transport {
        &self.client.inner.transport
    }

    fn url(&self, path: &str) -> Result<Url, OciError> {
        let base = self
            .base
            .as_ref()
            .ok_or_else(|| OciError::invalid_reference(format!("registry host {:?}", self.host)))?;
        base.join(path)
            .map_err(|_| OciError::invalid_reference(format!("path {path:?}")))
    }

    /// A `GET` of a blob, checked: for reading it whole or streaming it.
    fn blob_get_spec(&self, repository: &str, digest: &str) -> Result<RequestSpec, OciError> {
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"))?;
        Ok(self.spec(
            Operation::Blob,
            Method::GET,
            url,
            repository_scope(repository, false),
            format!("blob {}/{repository}@{digest}", self.host),
        ))
    }

    fn spec(
        &self,
        operation: Operation,
        method: Method,
        url: Url,
        scope: String,
        what: String,
    ) -> RequestSpec {
        RequestSpec {
            operation,
            method,
            url,
            auth: RequestAuth::Registry { scope },
            accept: None,
            content_type: None,
            body: None,
            body_limit: 0,
            what,
            range: None,
            stream: false,
        }
    }

    fn manifest_what(&self, repository: &str, reference: &str) -> String {
        let separator = if is_digest_reference(reference) {
            '@'
        } else {
            ':'
        };
        format!("manifest {}/{repository}{separator}{reference}", self.host)
    }

    async fn head_blob(
        &self,
        repository: &str,
        digest: &str,
        push: bool,
    ) -> Result<bool, OciError> {
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"))?;
        let what = format!("blob {}/{repository}@{digest}", self.host);
        let spec = self.spec(
            Operation::BlobExists,
            Method::HEAD,
            url,
            repository_scope(repository, push),
            what,
        );
        let answer = self.transport().execute(&spec).await?;
        match answer.status {
            status if status.is_success() => Ok(true),
            // Registries with storage redirects answer a HEAD of a blob they hold with the redirect
            // to it (not followed: HEADs never are).
            status if status.is_redirection() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(status_error(&spec, status, &answer.body)),
        }
    }
}

/// Checks an optional `Docker-Content-Digest` against the bytes: a mismatch is `Corrupt`, a value we
/// cannot parse (unknown algorithm) is ignored.
fn check_docker_content_digest(header: Option<&str>, bytes: &[u8]) -> Result<(), OciError> {
    let Some(expected) = header.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(());
    };
    match verify_digest(expected, bytes) {
        Err(error) if error.kind() == OciErrorKind::Corrupt => Err(OciError::corrupt(format!(
            "Docker-Content-Digest does not match the content: {error}"
        ))),
        Err(_) => {
            tracing::debug!(
                header = expected,
                "ignoring unparsable Docker-Content-Digest"
            );
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// What a `Content-Range` says: the inclusive bytes served (none in a 416's) and the whole size
/// (none when `*`).
type ContentRange = (Option<(u64, u64)>, Option<u64>);

/// `bytes first-last/size` or `bytes */size` (size `*` when unknown).
fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (served, size) = rest.split_once('/')?;
    let size = match size.trim() {
        "*" => None,
        size => Some(size.parse().ok()?),
    };
    let served = match served.trim() {
        "*" => None,
        served => {
            let (first, last) = served.split_once('-')?;
            Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
        }
    };
    Some((served, size))
}

/// The body of a streaming answer, chunk by chunk as it arrives.
fn response_stream(
    response: reqwest::Response,
    what: String,
) -> futures::stream::BoxStream<'static, Result<Bytes, OciError>> {
    futures::stream::try_unfold(response, move |mut response| {
        let what = what.clone();
        async move {
            match response.chunk().await {
                Ok(Some(chunk)) => Ok(Some((chunk, response))),
                Ok(None) => Ok(None),
                Err(error) => Err(OciError::Unavailable {
                    message: format!("{what}: the body broke off: {error}"),
                }),
            }
        }
    })
    .boxed()
}

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[async_trait]
impl OciStore for RegistryEndpoint {
    async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, OciError> {
        validate_repository(repository)?;
        validate_reference(reference)?;
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"))?;
        let mut spec = self.spec(
            Operation::Manifest,
            Method::GET,
            url,
            repository_scope(repository, false),
            self.manifest_what(repository, reference),
        );
        spec.accept = Some(MANIFEST_ACCEPT);
        spec.body_limit = self.client.inner.max_manifest_bytes;
        let answer = self.transport().execute(&spec).await?;
        if answer.status != StatusCode::OK {
            return Err(status_error(&spec, answer.status, &answer.body));
        }
        let bytes = answer.body.clone();
        if is_digest_reference(reference) {
            verify_digest(reference, &bytes)?;
        }
        check_docker_content_digest(answer.header_str(DOCKER_CONTENT_DIGEST), &bytes)?;
        let media_type = answer
            .header_str(header::CONTENT_TYPE)
            .map(content_type_essence)
            .filter(|essence| is_image_manifest_media_type(essence) || is_index_media_type(essence))
            .unwrap_or_else(|| sniff_manifest_media_type(&bytes));
        Ok(FetchedManifest {
            digest: sha256_digest(&bytes),
            bytes,
            media_type,
        })
    }

    async fn get_blob(
        &self,
        repository: &str,
        digest: &str,
        max_bytes: u64,
    ) -> Result<Bytes, OciError> {
        let mut spec = self.blob_get_spec(repository, digest)?;
        spec.body_limit = max_bytes;
        let answer = self.transport().execute(&spec).await?;
        if answer.status != StatusCode::OK {
            return Err(status_error(&spec, answer.status, &answer.body));
        }
        verify_digest(digest, &answer.body)?;
        Ok(answer.body)
    }

    async fn open_blob(
        &self,
        repository: &str,
        digest: &str,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, OciError> {
        let mut spec = self.blob_get_spec(repository, digest)?;
        spec.range = range.map(ByteRange::header_value);
        spec.stream = true;
        let answer = self.transport().execute(&spec).await?;
        let content_range = answer
            .header_str(header::CONTENT_RANGE)
            .and_then(parse_content_range);
        match (answer.status, answer.response) {
            (StatusCode::RANGE_NOT_SATISFIABLE, _) => Ok(BlobRead::Unsatisfiable {
                size: content_range.and_then(|(_, size)| size),
            }),
            (StatusCode::PARTIAL_CONTENT, Some(response)) if range.is_some() => {
                let Some((Some(served), size)) = content_range else {
                    return Err(OciError::protocol(format!(
                        "{}: a 206 without a usable Content-Range",
                        spec.what
                    )));
                };
                Ok(BlobRead::Content(BlobStream {
                    size,
                    range: Some(served),
                    body: response_stream(*response, spec.what.clone()),
                }))
            }
            (StatusCode::OK, Some(response)) => {
                let size = response.content_length();
                let body = response_stream(*response, spec.what.clone());
                match range {
                    // The registry sent the whole blob: verify it, and cut it to the range.
                    None => Ok(BlobRead::Content(BlobStream {
                        size,
                        range: None,
                        body: verified(body, digest),
                    })),
                    Some(range) => match size.map(|size| (size, range.resolve(size))) {
                        Some((_, None)) => Ok(BlobRead::Unsatisfiable { size }),
                        Some((_, Some((first, last)))) => Ok(BlobRead::Content(BlobStream {
                            size,
                            range: Some((first, last)),
                            body: sliced(body, first, last),
                        })),
                        // No length: the range cannot be placed; the whole blob is the answer.
                        None => Ok(BlobRead::Content(BlobStream {
                            size,
                            range: None,
                            body: verified(body, digest),
                        })),
                    },
                }
            }
            (status, _) => Err(status_error(&spec, status, &answer.body)),
        }
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, OciError> {
        validate_repository(repository)?;
        let first = self.url(&format!("v2/{repository}/tags/list"))?;
        let origin = first.origin();
        let mut next = Some(first);
        let mut visited = HashSet::new();
        let mut tags = Vec::new();
        while let Some(url) = next.take() {
            if visited.len() >= MAX_TAG_PAGES || !visited.insert(url.clone()) {
                return Err(OciError::protocol(format!(
                    "tags of {}/{repository}: pagination does not end",
                    self.host
                )));
            }
            let mut spec = self.spec(
                Operation::Tags,
                Method::GET,
                url,
                repository_scope(repository, false),
                format!("tags of {}/{repository}", self.host),
            );
            spec.accept = Some("application/json");
            spec.body_limit = self.client.inner.max_tags_page_bytes;
            let answer = self.transport().execute(&spec).await?;
            if answer.status != StatusCode::OK {
                return Err(status_error(&spec, answer.status, &answer.body));
            }
            let page: TagList = serde_json::from_slice(&answer.body).map_err(|error| {
                OciError::corrupt(format!(
                    "tags of {}/{repository}: invalid tag list: {error}",
                    self.host
                ))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            next = answer
                .headers
                .get_all(header::LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(|value| parse_next_link(value, &answer.url));
            if let Some(url) = &next {
                if url.origin() != origin {
                    return Err(OciError::protocol(format!(
                        "tags of {}/{repository}: next page is on another host",
                        self.host
                    )));
                }
            }
        }
        Ok(tags)
    }

    async fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool, OciError> {
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        self.head_blob(repository, digest, false).await
    }

    async fn put_blob(&self, repository: &str, digest: &str, bytes: Bytes) -> Result<(), OciError> {
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        verify_digest(digest, &bytes)?;
        if self.head_blob(repository, digest, true).await? {
            return Ok(());
        }
        let scope = repository_scope(repository, true);
        let what = format!("blob upload {}/{repository}@{digest}", self.host);
        let start_url = self.url(&format!("v2/{repository}/blobs/uploads/"))?;
        let start = self.spec(
            Operation::Upload,
            Method::POST,
            start_url,
            scope.clone(),
            what.clone(),
        );
        let answer = self.transport().execute(&start).await?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(status_error(&start, answer.status, &answer.body));
        }
        let location = answer
            .header_str(header::LOCATION)
            .and_then(|location| answer.url.join(location).ok())
            .ok_or_else(|| {
                OciError::protocol(format!("{what}: upload started without a usable Location"))
            })?;
        let mut put_url = location;
        put_url.query_pairs_mut().append_pair("digest", digest);
        let same_origin = self
            .base
            .as_ref()
            .is_some_and(|base| base.origin() == put_url.origin());
        let mut put = self.spec(Operation::Upload, Method::PUT, put_url, scope, what);
        if !same_origin {
            put.auth = RequestAuth::Anonymous;
        }
        put.content_type = Some("application/octet-stream".to_owned());
        put.body = Some(bytes);
        let answer = self.transport().execute(&put).await?;
        if !answer.status.is_success() {
            return Err(status_error(&put, answer.status, &answer.body));
        }
        Ok(())
    }

    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String, OciError> {
        validate_repository(repository)?;
        validate_reference(tag)?;
        let what = self.manifest_what(repository, tag);
        let limit = self.client.inner.max_manifest_bytes;
        if bytes.len() as u64 > limit {
            return Err(OciError::too_large(what, limit));
        }
        if is_digest_reference(tag) {
            verify_digest(tag, &bytes)?;
        }
        let digest = sha256_digest(&bytes);
        let url = self.url(&format!("v2/{repository}/manifests/{tag}"))?;
        let mut spec = self.spec(
            Operation::ManifestPut,
            Method::PUT,
            url,
            repository_scope(repository, true),
            what,
        );
        spec.content_type = Some(media_type.to_owned());
        spec.body = Some(bytes.clone());
        let answer = self.transport().execute(&spec).await?;
        if !answer.status.is_success() {
            return Err(status_error(&spec, answer.status, &answer.body));
        }
        check_docker_content_digest(answer.header_str(DOCKER_CONTENT_DIGEST), &bytes)?;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_reject_hosts_that_are_not_plain() {
        let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
        let endpoint = client.endpoint(true, "127.0.0.1:5000");
        assert_eq!(
            endpoint.base_url().unwrap().as_str(),
            "http://127.0.0.1:5000/"
        );
        let endpoint = client.endpoint(false, "ghcr.io");
        assert_eq!(endpoint.base_url().unwrap().as_str(), "https://ghcr.io/");
        for bad in [
            "",
            "user:pw@evil.example",
            "evil.example/path",
            "a b",
            "host?x",
        ] {
            assert!(client.endpoint(false, bad).base_url().is_none(), "{bad:?}");
        }
    }

    #[test]
    fn config_debug_redacts_passwords() {
        let mut config = RegistryClientConfig::default();
        config
            .credentials
            .insert("r.example".to_owned(), Credentials::new("bob", "hunter2"));
        let printed = format!("{config:?}");
        assert!(printed.contains("bob") && !printed.contains("hunter2"));
    }

    #[tokio::test]
    async fn invalid_host_fails_as_not_found_before_io() {
        let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
        let error = client
            .endpoint(false, "bad host")
            .get_manifest("a", "1.0")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::NotFound);
    }

    #[test]
    fn docker_content_digest_check() {
        check_docker_content_digest(None, b"x").unwrap();
        check_docker_content_digest(Some(&sha256_digest(b"x")), b"x").unwrap();
        check_docker_content_digest(Some("md5:abc"), b"x").unwrap();
        let error = check_docker_content_digest(Some(&sha256_digest(b"y")), b"x").unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Corrupt);
    }
}
