//! `OciStore`, the seam every OCI-backed reader and writer uses, and `FetchedManifest`.
//!
//! Implementations: `RegistryEndpoint` (a remote registry) and `CtfDirectory` (a local CTF directory).
//! Decorators (caching, counting) wrap this trait.

use async_trait::async_trait;
use bytes::Bytes;

use crate::blob_stream::{BlobRead, ByteRange};
use crate::error::OciError;
use crate::manifest::{parse_manifest, Manifest};

/// The default limit for a manifest body (4 MiB, what distribution itself accepts).
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A manifest as served: the raw bytes plus what we know about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The raw bytes; hash these, never a re-serialisation.
    pub bytes: Bytes,
    /// The media type (Content-Type essence, else the document's `mediaType`, else sniffed).
    pub media_type: String,
    /// `sha256:<hex>` of `bytes`. Already verified against the reference when it was a digest,
    /// and against `Docker-Content-Digest` when the registry sent one.
    pub digest: String,
}

impl FetchedManifest {
    /// Parses the bytes, using `media_type` to decide between image manifest and index.
    pub fn parse(&self) -> Result<Manifest, OciError> {
        parse_manifest(&self.bytes, Some(&self.media_type))
    }
}

/// Read and write access to OCI content of one registry (or registry-like store).
///
/// `repository` is a repository name without host (`ocm/component-descriptors/example.com/app`);
/// invalid names, tags and digests fail with kind `NotFound` before any I/O.
#[async_trait]
pub trait OciStore: Send + Sync + std::fmt::Debug {
    /// Fetches a manifest by tag or digest. Bodies over the store's manifest limit are `TooLarge`.
    async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, OciError>;

    /// Fetches a blob, verified against `digest`; more than `max_bytes` is `TooLarge` (never buffered whole).
    async fn get_blob(
        &self,
        repository: &str,
        digest: &str,
        max_bytes: u64,
    ) -> Result<Bytes, OciError>;

    /// Opens a blob as a stream, whole (verified against `digest` as it streams) or only `range`
    /// (not verifiable), never holding it in memory. A missing blob is `NotFound`.
    async fn open_blob(
        &self,
        repository: &str,
        digest: &str,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, OciError>;

    /// All tags of a repository (all pages), in the order served. A missing repository is `NotFound`.
    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, OciError>;

    async fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool, OciError>;

    /// Stores a blob after verifying `bytes` against `digest`; a blob already present is not sent again.
    async fn put_blob(&self, repository: &str, digest: &str, bytes: Bytes) -> Result<(), OciError>;

    /// Stores a manifest under `tag` (or under its digest when `tag` is a digest) and returns its digest.
    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String, OciError>;
}
