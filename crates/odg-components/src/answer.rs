//! Rendered answers: the exact bytes a route sends, with a strong validator (a hash of those
//! bytes) and compressed forms made once, on first demand, then shared by every later request.
//!
//! The warm path of a route is one cache lookup and a reference-counted copy of [`Bytes`]; the
//! JSON is never rebuilt from parsed descriptors while the answer stays cached.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use odg_cache::CacheValue;
use tokio::sync::OnceCell;

use crate::ComponentError;

/// Answers up to this size are sent as they are: compressing them saves less than the
/// `Content-Encoding` round costs a client, and tiny bodies barely shrink.
pub const COMPRESSION_THRESHOLD_BYTES: usize = 1024;

/// Work on answers up to this size (rendering, compressing) runs inline on the runtime: a
/// few tens of microseconds, less than a hand-off to the blocking pool costs. Larger ones go
/// through [`odg_offload::run_cpu_bound`].
pub const INLINE_WORK_BYTES: usize = 64 * 1024;

/// Memory counted for the compressed forms of an answer above the threshold, as a share of
/// its JSON: the forms are made lazily, after the entry was weighed, so the weight reserves
/// room for them up front. JSON compresses 5-10x with each of the three codecs.
const COMPRESSED_RESERVE_DIVISOR: usize = 2;

/// A compressed form a client can ask for in `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    Gzip,
    Brotli,
    Zstd,
}

impl ContentEncoding {
    /// The token of `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Brotli => "br",
            ContentEncoding::Zstd => "zstd",
        }
    }

    /// Suffix of the representation's entity tag: each coding is its own representation, so
    /// its strong validator must differ from the identity one (RFC 9110, 8.8.3).
    fn etag_suffix(self) -> &'static str {
        match self {
            ContentEncoding::Gzip => "-gz",
            ContentEncoding::Brotli => "-br",
            ContentEncoding::Zstd => "-zst",
        }
    }

    /// Compresses at settings chosen for a once-per-answer cost: better ratios than
    /// per-request compression could afford, without brotli's slowest levels.
    fn compress(self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            ContentEncoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(input.len() / 4),
                    flate2::Compression::new(6),
                );
                encoder.write_all(input)?;
                encoder.finish()
            }
            ContentEncoding::Brotli => {
                let mut out = Vec::with_capacity(input.len() / 4);
                {
                    let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 6, 22);
                    writer.write_all(input)?;
                    writer.flush()?;
                }
                Ok(out)
            }
            ContentEncoding::Zstd => zstd::bulk::compress(input, 6),
        }
    }
}

/// One answer as sent: JSON bytes, their entity tag, and compressed forms filled on demand.
#[derive(Debug)]
pub struct RenderedAnswer {
    json: Bytes,
    /// `"<32 hex digits>"`: XXH3-128 of `json`, quoted as an entity tag, then the tags of the
    /// gzip, brotli and zstd forms. The same bytes give the same tags on every pod and after
    /// every restart. Made once per answer, so a hit sends them without formatting or copying.
    etags: [Bytes; 4],
    gzip: OnceCell<Option<Bytes>>,
    brotli: OnceCell<Option<Bytes>>,
    zstd: OnceCell<Option<Bytes>>,
}

impl RenderedAnswer {
    pub fn new(json: impl Into<Bytes>) -> RenderedAnswer {
        let json = json.into();
        let opaque = format!("\"{:032x}", xxhash_rust::xxh3::xxh3_128(&json));
        let tag = |suffix: &str| Bytes::from(format!("{opaque}{suffix}\""));
        let etags = [
            tag(""),
            tag(ContentEncoding::Gzip.etag_suffix()),
            tag(ContentEncoding::Brotli.etag_suffix()),
            tag(ContentEncoding::Zstd.etag_suffix()),
        ];
        RenderedAnswer {
            json,
            etags,
            gzip: OnceCell::new(),
            brotli: OnceCell::new(),
            zstd: OnceCell::new(),
        }
    }

    /// The uncompressed JSON, shared (cloning it copies a pointer, not the bytes).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The strong entity tag of the identity representation, quotes included.
    pub fn etag(&self) -> &str {
        self.etag_text(None)
    }

    /// The strong entity tag of the representation in `encoding` (`None` = identity), shared:
    /// cloning it copies a pointer.
    pub fn etag_for(&self, encoding: Option<ContentEncoding>) -> &Bytes {
        let index = match encoding {
            None => 0,
            Some(ContentEncoding::Gzip) => 1,
            Some(ContentEncoding::Brotli) => 2,
            Some(ContentEncoding::Zstd) => 3,
        };
        &self.etags[index]
    }

    /// [`RenderedAnswer::etag_for`] as text (the tags are ASCII by construction).
    pub fn etag_text(&self, encoding: Option<ContentEncoding>) -> &str {
        std::str::from_utf8(self.etag_for(encoding)).unwrap_or_default()
    }

    /// Whether compressed forms are offered at all.
    pub fn compressible(&self) -> bool {
        self.json.len() > COMPRESSION_THRESHOLD_BYTES
    }

    /// The answer in `encoding`, made at the first request for it and kept with the answer;
    /// `None` when the answer is below the threshold or the form would not be smaller.
    /// Concurrent first requests wait for one compression rather than each running their own.
    pub async fn compressed(
        &self,
        encoding: ContentEncoding,
    ) -> Result<Option<Bytes>, ComponentError> {
        if !self.compressible() {
            return Ok(None);
        }
        let cell = match encoding {
            ContentEncoding::Gzip => &self.gzip,
            ContentEncoding::Brotli => &self.brotli,
            ContentEncoding::Zstd => &self.zstd,
        };
        let form = cell
            .get_or_try_init(|| async {
                let json = self.json.clone();
                let compress = move || -> Option<Bytes> {
                    match encoding.compress(&json) {
                        Ok(out) if out.len() < json.len() => Some(Bytes::from(out)),
                        Ok(_) => None,
                        Err(error) => {
                            tracing::warn!(%error, encoding = encoding.token(), "compression failed; sending identity");
                            None
                        }
                    }
                };
                if self.json.len() <= INLINE_WORK_BYTES {
                    Ok::<_, ComponentError>(compress())
                } else {
                    odg_offload::run_cpu_bound(compress).await.map_err(ComponentError::from)
                }
            })
            .await?;
        Ok(form.clone())
    }
}

impl CacheValue for RenderedAnswer {
    /// The JSON only: compressed forms and the tag are derived again after a decode.
    fn encode(&self) -> Vec<u8> {
        self.json.to_vec()
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        Ok(RenderedAnswer::new(Bytes::copy_from_slice(payload)))
    }

    fn footprint(&self) -> usize {
        let reserve = if self.compressible() {
            self.json.len() / COMPRESSED_RESERVE_DIVISOR
        } else {
            0
        };
        let etags: usize = self.etags.iter().map(Bytes::len).sum();
        std::mem::size_of::<Self>() + self.json.len() + etags + reserve
    }

    fn fresh_for(&self, kind_default: Option<Duration>) -> Option<Duration> {
        kind_default
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn large_json() -> Vec<u8> {
        let items: Vec<String> = (0..500).map(|i| format!("item-{i}")).collect();
        serde_json::to_vec(&items).unwrap()
    }

    #[test]
    fn the_tag_is_a_quoted_hash_of_the_bytes_and_stable() {
        let a = RenderedAnswer::new(b"{\"a\":1}".to_vec());
        let b = RenderedAnswer::new(b"{\"a\":1}".to_vec());
        let c = RenderedAnswer::new(b"{\"a\":2}".to_vec());
        assert_eq!(a.etag(), b.etag());
        assert_ne!(a.etag(), c.etag());
        assert!(a.etag().starts_with('"') && a.etag().ends_with('"'));
        assert_eq!(a.etag().len(), 34);
        assert_eq!(a.etag_text(None), a.etag());
        assert_eq!(
            a.etag_text(Some(ContentEncoding::Gzip)),
            format!("{}-gz\"", &a.etag()[..33])
        );
        assert_eq!(
            a.etag_text(Some(ContentEncoding::Zstd)),
            format!("{}-zst\"", &a.etag()[..33])
        );
        let decoded = RenderedAnswer::decode(&a.encode()).unwrap();
        assert_eq!(decoded.etag(), a.etag());
    }

    #[tokio::test]
    async fn compressed_forms_decode_to_the_same_bytes() {
        let json = large_json();
        let answer = RenderedAnswer::new(json.clone());
        let gzip = answer
            .compressed(ContentEncoding::Gzip)
            .await
            .unwrap()
            .unwrap();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, json);
        let brotli_form = answer
            .compressed(ContentEncoding::Brotli)
            .await
            .unwrap()
            .unwrap();
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&brotli_form[..], 4096)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, json);
        let zstd_form = answer
            .compressed(ContentEncoding::Zstd)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(zstd::decode_all(&zstd_form[..]).unwrap(), json);
        let again = answer
            .compressed(ContentEncoding::Gzip)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.as_ptr(), gzip.as_ptr(), "made once, then shared");
    }

    #[tokio::test]
    async fn small_answers_are_not_compressed() {
        let answer = RenderedAnswer::new(b"[\"1.0.0\"]".to_vec());
        assert!(!answer.compressible());
        assert!(answer
            .compressed(ContentEncoding::Gzip)
            .await
            .unwrap()
            .is_none());
        assert!(
            RenderedAnswer::new(large_json()).footprint() > large_json().len(),
            "the weight reserves room for compressed forms"
        );
    }
}
