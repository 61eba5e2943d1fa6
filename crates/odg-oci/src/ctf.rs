//! `CtfDirectory`: OCM's Common Transport Format directory (`artifact-index.json` + `blobs/<alg>.<hex>`) as an `OciStore`.
//!
//! Manifests are blobs too. Their media type comes from the index entry's optional `mediaType`,
//! else from the manifest document's own `mediaType` (required on put), else it is sniffed.
//! All file I/O goes through `tokio::fs`; every write is atomic (temp file in the same directory,
//! fsync, rename, fsync of the directory); the index is rewritten under a `tokio::sync::Mutex`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::blob_stream::{verified, BlobRead, BlobStream, ByteRange};
use crate::digest::{is_digest_reference, parse_digest, sha256_digest, verify_digest};
use crate::error::OciError;
use crate::manifest::sniff_manifest_media_type;
use crate::reference::{validate_digest_reference, validate_reference, validate_repository};
use crate::store::{FetchedManifest, OciStore, DEFAULT_MAX_MANIFEST_BYTES};

pub const ARTIFACT_INDEX_FILE: &str = "artifact-index.json";
pub const BLOBS_DIRECTORY: &str = "blobs";
const ARTIFACT_INDEX_SCHEMA_VERSION: u32 = 1;
/// Bytes per read of a streamed blob.
const CTF_READ_CHUNK: usize = 64 * 1024;

/// One entry of `artifact-index.json`: a manifest in a repository, optionally tagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtfArtifact {
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub digest: String,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Fields written by other tools, kept on rewrite.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ArtifactIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(default, deserialize_with = "null_as_empty")]
    artifacts: Vec<CtfArtifact>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl ArtifactIndex {
    fn empty() -> Self {
        ArtifactIndex {
            schema_version: ARTIFACT_INDEX_SCHEMA_VERSION,
            artifacts: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    fn has_repository(&self, repository: &str) -> bool {
        self.artifacts
            .iter()
            .any(|artifact| artifact.repository == repository)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<CtfArtifact>, D::Error> {
    Ok(Option::<Vec<CtfArtifact>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A CTF directory on disk. Cheap to clone; clones share the in-memory index and its lock.
/// The index is read once on open: changes by other processes afterwards are not seen.
#[derive(Debug, Clone)]
pub struct CtfDirectory {
    inner: Arc<CtfInner>,
}

#[derive(Debug)]
struct CtfInner {
    root: PathBuf,
    index: tokio::sync::Mutex<ArtifactIndex>,
    max_manifest_bytes: u64,
}

impl CtfDirectory {
    /// Opens an existing CTF directory (its `artifact-index.json` must exist and parse).
    pub async fn open(path: impl AsRef<Path>) -> Result<CtfDirectory, OciError> {
        let root = path.as_ref().to_path_buf();
        let index_path = root.join(ARTIFACT_INDEX_FILE);
        let raw = tokio::fs::read(&index_path)
            .await
            .map_err(|error| OciError::io(format!("reading {}", index_path.display()), error))?;
        let index: ArtifactIndex = serde_json::from_slice(&raw).map_err(|error| {
            OciError::corrupt(format!(
                "{} is not an artifact index: {error}",
                index_path.display()
            ))
        })?;
        if index.schema_version != ARTIFACT_INDEX_SCHEMA_VERSION {
            return Err(OciError::corrupt(format!(
                "{}: unsupported schemaVersion {}",
                index_path.display(),
                index.schema_version
            )));
        }
        Ok(Self::with_index(root, index))
    }

    /// Opens the CTF directory at `path`, creating it (and an empty index) when absent.
    pub async fn create_or_open(path: impl AsRef<Path>) -> Result<CtfDirectory, OciError> {
        let root = path.as_ref().to_path_buf();
        let blobs = root.join(BLOBS_DIRECTORY);
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(|error| OciError::io(format!("creating {}", blobs.display()), error))?;
        let index_path = root.join(ARTIFACT_INDEX_FILE);
        let exists = tokio::fs::try_exists(&index_path)
            .await
            .map_err(|error| OciError::io(format!("checking {}", index_path.display()), error))?;
        if exists {
            return Self::open(root).await;
        }
        let index = ArtifactIndex::empty();
        write_index(&root, &index).await?;
        Ok(Self::with_index(root, index))
    }

    fn with_index(root: PathBuf, index: ArtifactIndex) -> CtfDirectory {
        CtfDirectory {
            inner: Arc::new(CtfInner {
                root,
                index: tokio::sync::Mutex::new(index),
                max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// The entries of the artifact index, in file order.
    pub async fn artifacts(&self) -> Vec<CtfArtifact> {
        self.inner.index.lock().await.artifacts.clone()
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, OciError> {
        let (algorithm, hex) = parse_digest(digest)
            .map_err(|_| OciError::invalid_reference(format!("digest {digest:?}")))?;
        Ok(self
            .inner
            .root
            .join(BLOBS_DIRECTORY)
            .join(format!("{}.{hex}", algorithm.as_str())))
    }

    async fn read_blob(&self, digest: &str, limit: u64, what: &str) -> Result<Bytes, OciError> {
        let path = self.blob_path(digest)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::not_found(what.to_owned()))
            }
            Err(error) => return Err(OciError::io(format!("opening {}", path.display()), error)),
        };
        let length = file
            .metadata()
            .await
            .map_err(|error| OciError::io(format!("reading {}", path.display()), error))?
            .len();
        if length > limit {
            return Err(OciError::too_large(what.to_owned(), limit));
        }
        let mut content = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        // `take` guards against a file that grew since `metadata`.
        file.take(limit.saturating_add(1))
            .read_to_end(&mut content)
            .await
            .map_err(|error| OciError::io(format!("reading {}", path.display()), error))?;
        if content.len() as u64 > limit {
            return Err(OciError::too_large(what.to_owned(), limit));
        }
        verify_digest(digest, &content)?;
        Ok(Bytes::from(content))
    }

    async fn write_blob_if_absent(&self, digest: &str, bytes: &[u8]) -> Result<(), OciError> {
        let path = self.blob_path(digest)?;
        if exists(&path).await? {
            return Ok(());
        }
        write_atomically(&self.inner.root.join(BLOBS_DIRECTORY), &path, bytes).await
    }
}

async fn exists(path: &Path) -> Result<bool, OciError> {
    tokio::fs::try_exists(path)
        .await
        .map_err(|error| OciError::io(format!("checking {}", path.display()), error))
}

async fn write_index(root: &Path, index: &ArtifactIndex) -> Result<(), OciError> {
    let bytes = serde_json::to_vec_pretty(index)
        .map_err(|error| OciError::protocol(format!("cannot serialise artifact index: {error}")))?;
    write_atomically(root, &root.join(ARTIFACT_INDEX_FILE), &bytes).await
}

/// Writes `bytes` to `path` so readers see the old content or the new, never a part: a temp file in
/// `directory` (same file system), fsync, rename, fsync of the directory.
async fn write_atomically(directory: &Path, path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let temp_path = directory.join(format!(
        ".tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = async {
        let mut file = tokio::fs::File::create(&temp_path).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temp_path, path).await?;
        tokio::fs::File::open(directory).await?.sync_all().await
    }
    .await;
    if let Err(error) = result {
        let _ = tokio::fs::remove_file(&temp_path).await;
        return Err(OciError::io(format!("writing {}", path.display()), error));
    }
    Ok(())
}

#[async_trait]
impl OciStore for CtfDirectory {
    async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, OciError> {
        validate_repository(repository)?;
        validate_reference(reference)?;
        let separator = if is_digest_reference(reference) {
            '@'
        } else {
            ':'
        };
        let what = format!(
            "manifest {repository}{separator}{reference} in CTF {}",
            self.inner.root.display()
        );
        let (digest, media_type) = {
            let index = self.inner.index.lock().await;
            let entry = if is_digest_reference(reference) {
                if !index.has_repository(repository) {
                    return Err(OciError::not_found(what));
                }
                index.artifacts.iter().find(|artifact| {
                    artifact.repository == repository && artifact.digest == reference
                })
            } else {
                index.artifacts.iter().find(|artifact| {
                    artifact.repository == repository && artifact.tag.as_deref() == Some(reference)
                })
            };
            match entry {
                Some(entry) => (entry.digest.clone(), entry.media_type.clone()),
                // A manifest by digest need not be listed (children of an index are plain blobs).
                None if is_digest_reference(reference) => (reference.to_owned(), None),
                None => return Err(OciError::not_found(what)),
            }
        };
        let bytes = self
            .read_blob(&digest, self.inner.max_manifest_bytes, &what)
            .await?;
        let media_type = media_type.unwrap_or_else(|| sniff_manifest_media_type(&bytes));
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
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        let what = format!(
            "blob {repository}@{digest} in CTF {}",
            self.inner.root.display()
        );
        self.read_blob(digest, max_bytes, &what).await
    }

    async fn open_blob(
        &self,
        repository: &str,
        digest: &str,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, OciError> {
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        let path = self.blob_path(digest)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(OciError::not_found(format!(
                    "blob {repository}@{digest} in CTF {}",
                    self.inner.root.display()
                )))
            }
            Err(error) => return Err(OciError::io(format!("opening {}", path.display()), error)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|error| OciError::io(format!("reading {}", path.display()), error))?
            .len();
        let (first, last) = match range {
            None => (0, size),
            Some(range) => match range.resolve(size) {
                Some((first, last)) => (first, last + 1),
                None => return Ok(BlobRead::Unsatisfiable { size: Some(size) }),
            },
        };
        file.seek(std::io::SeekFrom::Start(first))
            .await
            .map_err(|error| OciError::io(format!("reading {}", path.display()), error))?;
        let body = futures::stream::try_unfold(
            (file.take(last - first), path),
            |(mut file, path)| async move {
                let mut buffer = vec![0u8; CTF_READ_CHUNK];
                let read = file
                    .read(&mut buffer)
                    .await
                    .map_err(|error| OciError::io(format!("reading {}", path.display()), error))?;
                if read == 0 {
                    return Ok(None);
                }
                buffer.truncate(read);
                Ok(Some((Bytes::from(buffer), (file, path))))
            },
        )
        .boxed();
        Ok(BlobRead::Content(BlobStream {
            size: Some(size),
            range: range.map(|_| (first, last - 1)),
            body: match range {
                None => verified(body, digest),
                Some(_) => body,
            },
        }))
    }

    async fn list_tags(&self, repository: &str) -> Result<Vec<String>, OciError> {
        validate_repository(repository)?;
        let index = self.inner.index.lock().await;
        if !index.has_repository(repository) {
            return Err(OciError::not_found(format!(
                "repository {repository} in CTF {}",
                self.inner.root.display()
            )));
        }
        let mut tags: Vec<String> = Vec::new();
        for artifact in index
            .artifacts
            .iter()
            .filter(|artifact| artifact.repository == repository)
        {
            if let Some(tag) = &artifact.tag {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
        }
        Ok(tags)
    }

    async fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool, OciError> {
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        exists(&self.blob_path(digest)?).await
    }

    async fn put_blob(&self, repository: &str, digest: &str, bytes: Bytes) -> Result<(), OciError> {
        validate_repository(repository)?;
        validate_digest_reference(digest)?;
        verify_digest(digest, &bytes)?;
        self.write_blob_if_absent(digest, &bytes).await
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
        let limit = self.inner.max_manifest_bytes;
        if bytes.len() as u64 > limit {
            return Err(OciError::too_large(
                format!("manifest {repository}:{tag}"),
                limit,
            ));
        }
        // CTF keeps no Content-Type: the document must say what it is.
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
        }
        let declared = serde_json::from_slice::<Probe>(&bytes)
            .map_err(|error| OciError::corrupt(format!("manifest is not a JSON object: {error}")))?
            .media_type
            .ok_or_else(|| {
                OciError::protocol("a manifest stored in a CTF must carry its mediaType")
            })?;
        if declared != media_type {
            return Err(OciError::protocol(format!(
                "manifest declares mediaType {declared:?} but is stored as {media_type:?}"
            )));
        }
        if is_digest_reference(tag) {
            verify_digest(tag, &bytes)?;
        }
        let digest = sha256_digest(&bytes);
        self.write_blob_if_absent(&digest, &bytes).await?;
        let mut index = self.inner.index.lock().await;
        let mut updated = index.clone();
        let new_tag = (!is_digest_reference(tag)).then(|| tag.to_owned());
        updated.artifacts.retain(|artifact| {
            let same_tag = new_tag.is_some() && artifact.tag == new_tag;
            let same_untagged = artifact.tag.is_none() && artifact.digest == digest;
            !(artifact.repository == repository && (same_tag || same_untagged))
        });
        let already_listed = new_tag.is_none()
            && updated
                .artifacts
                .iter()
                .any(|artifact| artifact.repository == repository && artifact.digest == digest);
        if !already_listed {
            updated.artifacts.push(CtfArtifact {
                repository: repository.to_owned(),
                tag: new_tag,
                digest: digest.clone(),
                media_type: Some(media_type.to_owned()),
                extra: serde_json::Map::new(),
            });
        }
        write_index(&self.inner.root, &updated).await?;
        *index = updated;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OciErrorKind;
    use crate::manifest::{
        parse_manifest, Manifest, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
    };

    fn manifest_for(config: &[u8], layer: &[u8]) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": "application/vnd.ocm.software.component.config.v1+json",
                           "digest": sha256_digest(config), "size": config.len()},
                "layers": [{"mediaType": "application/vnd.ocm.software.component-descriptor.v2+yaml+tar",
                            "digest": sha256_digest(layer), "size": layer.len()}],
            }))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn round_trip_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ctf");
        let store = CtfDirectory::create_or_open(&root).await.unwrap();
        let repository = "component-descriptors/example.com/demo/app";
        let (config, layer) = (b"{}".as_slice(), b"layer bytes".as_slice());
        for blob in [config, layer] {
            store
                .put_blob(
                    repository,
                    &sha256_digest(blob),
                    Bytes::copy_from_slice(blob),
                )
                .await
                .unwrap();
        }
        let manifest = manifest_for(config, layer);
        let digest = store
            .put_manifest(
                repository,
                "1.0.0",
                OCI_MANIFEST_MEDIA_TYPE,
                manifest.clone(),
            )
            .await
            .unwrap();
        assert_eq!(digest, sha256_digest(&manifest));
        // Re-tagging the same version replaces the entry instead of adding one.
        store
            .put_manifest(
                repository,
                "1.0.0",
                OCI_MANIFEST_MEDIA_TYPE,
                manifest.clone(),
            )
            .await
            .unwrap();
        store
            .put_manifest(
                repository,
                "1.1.0",
                OCI_MANIFEST_MEDIA_TYPE,
                manifest.clone(),
            )
            .await
            .unwrap();

        let reopened = CtfDirectory::open(&root).await.unwrap();
        assert_eq!(reopened.artifacts().await.len(), 2);
        assert_eq!(
            reopened.list_tags(repository).await.unwrap(),
            vec!["1.0.0", "1.1.0"]
        );
        for reference in ["1.0.0", digest.as_str()] {
            let fetched = reopened.get_manifest(repository, reference).await.unwrap();
            assert_eq!(fetched.bytes, manifest);
            assert_eq!(fetched.digest, digest);
            assert_eq!(fetched.media_type, OCI_MANIFEST_MEDIA_TYPE);
            assert!(matches!(fetched.parse().unwrap(), Manifest::Image(_)));
        }
        let blob = reopened
            .get_blob(repository, &sha256_digest(layer), 100)
            .await
            .unwrap();
        assert_eq!(blob.as_ref(), layer);
        assert!(reopened
            .blob_exists(repository, &sha256_digest(layer))
            .await
            .unwrap());
        assert!(!reopened
            .blob_exists(repository, &sha256_digest(b"other"))
            .await
            .unwrap());

        // The on-disk format is the CTF one.
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(ARTIFACT_INDEX_FILE)).unwrap())
                .unwrap();
        assert_eq!(index["schemaVersion"], 1);
        assert_eq!(index["artifacts"][0]["repository"], repository);
        assert_eq!(index["artifacts"][0]["tag"], "1.0.0");
        assert_eq!(index["artifacts"][0]["digest"], digest.as_str());
        let hex = digest.strip_prefix("sha256:").unwrap();
        assert!(root.join("blobs").join(format!("sha256.{hex}")).is_file());
        let leftovers: Vec<_> = std::fs::read_dir(root.join("blobs"))
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn reads_directories_written_by_others_and_sniffs_media_types() {
        let dir = tempfile::tempdir().unwrap();
        let index_manifest = br#"{"schemaVersion":2,"manifests":[]}"#;
        let digest = sha256_digest(index_manifest);
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(
            dir.path().join("blobs").join(digest.replace(':', ".")),
            index_manifest,
        )
        .unwrap();
        std::fs::write(
            dir.path().join(ARTIFACT_INDEX_FILE),
            format!(r#"{{"schemaVersion":1,"artifacts":[{{"repository":"a/b","tag":"v1","digest":"{digest}","x":1}}]}}"#),
        )
        .unwrap();
        let store = CtfDirectory::open(dir.path()).await.unwrap();
        let fetched = store.get_manifest("a/b", "v1").await.unwrap();
        assert_eq!(fetched.media_type, OCI_INDEX_MEDIA_TYPE);
        assert!(matches!(
            parse_manifest(&fetched.bytes, Some(&fetched.media_type)).unwrap(),
            Manifest::Index(_)
        ));
        // Unknown entry fields survive a rewrite.
        store
            .put_manifest("a/c", "v2", OCI_INDEX_MEDIA_TYPE, Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#))
            .await
            .unwrap();
        let raw = std::fs::read_to_string(dir.path().join(ARTIFACT_INDEX_FILE)).unwrap();
        assert!(raw.contains("\"x\": 1"), "{raw}");
    }

    #[tokio::test]
    async fn errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            CtfDirectory::open(dir.path()).await.unwrap_err().kind(),
            OciErrorKind::Io
        );
        let store = CtfDirectory::create_or_open(dir.path()).await.unwrap();
        let kind =
            |result: Result<_, OciError>| result.map(|_: FetchedManifest| ()).unwrap_err().kind();
        assert_eq!(
            kind(store.get_manifest("a", "1.0").await),
            OciErrorKind::NotFound
        );
        assert_eq!(
            kind(store.get_manifest("a", &sha256_digest(b"x")).await),
            OciErrorKind::NotFound
        );
        assert_eq!(
            kind(store.get_manifest("../x", "1.0").await),
            OciErrorKind::NotFound
        );
        assert_eq!(
            store.list_tags("a").await.unwrap_err().kind(),
            OciErrorKind::NotFound
        );
        assert_eq!(
            store
                .get_blob("a", &sha256_digest(b"x"), 10)
                .await
                .unwrap_err()
                .kind(),
            OciErrorKind::NotFound
        );
        // A blob whose bytes do not match its digest is refused.
        let error = store
            .put_blob("a", &sha256_digest(b"x"), Bytes::from_static(b"y"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Corrupt);
        // Limits.
        store
            .put_blob(
                "a",
                &sha256_digest(b"0123456789"),
                Bytes::from_static(b"0123456789"),
            )
            .await
            .unwrap();
        let error = store
            .get_blob("a", &sha256_digest(b"0123456789"), 9)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::TooLarge);
        // Manifests must declare their media type, and the declared one.
        let without = Bytes::from_static(br#"{"schemaVersion":2,"manifests":[]}"#);
        let error = store
            .put_manifest("a", "1", OCI_INDEX_MEDIA_TYPE, without)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Protocol);
        let manifest = manifest_for(b"c", b"l");
        let error = store
            .put_manifest("a", "1", OCI_INDEX_MEDIA_TYPE, manifest)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Protocol);
        // A corrupted blob file is detected on read.
        let digest = sha256_digest(b"0123456789");
        std::fs::write(
            dir.path().join("blobs").join(digest.replace(':', ".")),
            b"tampered!!",
        )
        .unwrap();
        let error = store.get_blob("a", &digest, 100).await.unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Corrupt);
    }
}
