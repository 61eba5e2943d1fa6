//! The binary envelope every stored entry has, on disk and in Redis alike: format version,
//! metadata (kind, scope, generation stamp, times), key text, payload, and a CRC-32 over all of it.
//!
//! Layout (little endian):
//! `"ODGC"` magic, u16 format version, u16 flags (0), u64 created, u64 fresh-until, u64 expires
//! (milliseconds since the epoch, 0 = never), 5 x u64 stamp, u16 kind length + kind,
//! u8 has-component + u32 length + component, u8 has-version + u32 length + version,
//! u32 key length + key, u32 payload length + payload, u32 CRC-32 of everything before it.
//! A torn or altered entry fails the length checks or the CRC and is never served.

use bytes::Bytes;

use crate::generations::Stamp;
use crate::key::{Kind, Scope};

const MAGIC: &[u8; 4] = b"ODGC";
/// Bumped on any layout change; entries of other versions are dropped as unreadable.
pub const ENTRY_FORMAT_VERSION: u16 = 1;
/// Largest key or scope string we accept when decoding, so a corrupt length cannot allocate wildly.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// What a tier knows about an entry besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub kind: Kind,
    pub scope: Scope,
    /// Generations in force when the value was loaded; a different current stamp means stale.
    pub stamp: Stamp,
    pub created_at_ms: u64,
    /// Until then the entry is fresh; after it, servable only while revalidating. `None`: forever.
    pub fresh_until_ms: Option<u64>,
    /// After it the entry is gone. `None`: never.
    pub expires_at_ms: Option<u64>,
}

/// How usable an entry is at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Past its soft TTL but inside the stale-while-revalidate window.
    Stale,
    Expired,
}

impl EntryMeta {
    pub fn freshness(&self, now_ms: u64) -> Freshness {
        if self.expires_at_ms.is_some_and(|expires| now_ms >= expires) {
            Freshness::Expired
        } else if self
            .fresh_until_ms
            .is_some_and(|fresh_until| now_ms >= fresh_until)
        {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }
}

/// An entry as the disk and shared tiers keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub meta: EntryMeta,
    /// The canonical key text, checked on read so an id collision can never serve another key's value.
    pub key_text: String,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryDecodeError {
    #[error("entry truncated")]
    Truncated,
    #[error("not an odg cache entry")]
    BadMagic,
    #[error("entry format version {0} is not {ENTRY_FORMAT_VERSION}")]
    UnsupportedVersion(u16),
    #[error("entry checksum mismatch")]
    Checksum,
    #[error("entry field malformed: {0}")]
    Malformed(&'static str),
}

pub fn encode_entry(entry: &StoredEntry) -> Vec<u8> {
    let meta = &entry.meta;
    let mut out = Vec::with_capacity(96 + entry.key_text.len() + entry.payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&ENTRY_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&meta.created_at_ms.to_le_bytes());
    out.extend_from_slice(&meta.fresh_until_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.expires_at_ms.unwrap_or(0).to_le_bytes());
    for generation in meta.stamp.as_array() {
        out.extend_from_slice(&generation.to_le_bytes());
    }
    let kind = meta.kind.as_str().as_bytes();
    out.extend_from_slice(&(kind.len() as u16).to_le_bytes());
    out.extend_from_slice(kind);
    for optional in [&meta.scope.component, &meta.scope.version] {
        match optional {
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(&(entry.key_text.len() as u32).to_le_bytes());
    out.extend_from_slice(entry.key_text.as_bytes());
    out.extend_from_slice(&(entry.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&entry.payload);
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], EntryDecodeError> {
        let end = self
            .position
            .checked_add(count)
            .ok_or(EntryDecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(EntryDecodeError::Truncated)?;
        self.position = end;
        Ok(slice)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryDecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, EntryDecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, EntryDecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, EntryDecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, EntryDecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    fn text(&mut self, length: usize, field: &'static str) -> Result<String, EntryDecodeError> {
        if length > MAX_TEXT_BYTES {
            return Err(EntryDecodeError::Malformed(field));
        }
        String::from_utf8(self.take(length)?.to_vec())
            .map_err(|_| EntryDecodeError::Malformed(field))
    }
}

/// Decodes and verifies an entry (magic, format version, lengths, CRC).
pub fn decode_entry(bytes: &[u8]) -> Result<StoredEntry, EntryDecodeError> {
    if bytes.len() < 8 {
        return Err(EntryDecodeError::Truncated);
    }
    if &bytes[..4] != MAGIC {
        return Err(EntryDecodeError::BadMagic);
    }
    let Some((body, checksum)) = bytes.split_last_chunk::<4>() else {
        return Err(EntryDecodeError::Truncated);
    };
    let mut reader = Reader {
        bytes: body,
        position: 4,
    };
    let version = reader.u16()?;
    if version != ENTRY_FORMAT_VERSION {
        return Err(EntryDecodeError::UnsupportedVersion(version));
    }
    if crc32fast::hash(body) != u32::from_le_bytes(*checksum) {
        return Err(EntryDecodeError::Checksum);
    }
    let _flags = reader.u16()?;
    let meta = read_meta(&mut reader)?;
    let key_length = reader.u32()? as usize;
    let key_text = reader.text(key_length, "key")?;
    let payload_length = reader.u32()? as usize;
    let payload = Bytes::copy_from_slice(reader.take(payload_length)?);
    if reader.position != body.len() {
        return Err(EntryDecodeError::Malformed("trailing bytes"));
    }
    Ok(StoredEntry {
        meta,
        key_text,
        payload,
    })
}

/// The metadata of an entry from a prefix of its encoding (magic, format version, then the fields
/// up to and including the scope), without the key, the payload or the checksum, which covers the
/// whole entry and so cannot be verified here. For tools that look at many entries without
/// reading them whole (pruning); never for serving.
pub fn decode_entry_header(bytes: &[u8]) -> Result<EntryMeta, EntryDecodeError> {
    if bytes.len() < 6 {
        return Err(EntryDecodeError::Truncated);
    }
    if &bytes[..4] != MAGIC {
        return Err(EntryDecodeError::BadMagic);
    }
    let mut reader = Reader { bytes, position: 4 };
    let version = reader.u16()?;
    if version != ENTRY_FORMAT_VERSION {
        return Err(EntryDecodeError::UnsupportedVersion(version));
    }
    let _flags = reader.u16()?;
    read_meta(&mut reader)
}

/// The fields after the flags, up to and including the scope.
fn read_meta(reader: &mut Reader<'_>) -> Result<EntryMeta, EntryDecodeError> {
    let created_at_ms = reader.u64()?;
    let fresh_until_ms = Some(reader.u64()?).filter(|value| *value != 0);
    let expires_at_ms = Some(reader.u64()?).filter(|value| *value != 0);
    let mut stamp = [0u64; 5];
    for generation in stamp.iter_mut() {
        *generation = reader.u64()?;
    }
    let kind_length = reader.u16()? as usize;
    let kind = reader.text(kind_length, "kind")?;
    let kind = Kind::new(&kind).map_err(|_| EntryDecodeError::Malformed("kind"))?;
    let mut optional = || -> Result<Option<String>, EntryDecodeError> {
        match reader.u8()? {
            0 => Ok(None),
            1 => {
                let length = reader.u32()? as usize;
                reader.text(length, "scope").map(Some)
            }
            _ => Err(EntryDecodeError::Malformed("scope flag")),
        }
    };
    let component = optional()?;
    let version = optional()?;
    Ok(EntryMeta {
        kind,
        scope: Scope { component, version },
        stamp: Stamp::from_array(stamp),
        created_at_ms,
        fresh_until_ms,
        expires_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredEntry {
        StoredEntry {
            meta: EntryMeta {
                kind: Kind::new("descriptor").unwrap(),
                scope: Scope::component_version("acme.org/a", "1.0.0+b"),
                stamp: Stamp::from_array([7, 1, 2, 3, 4]),
                created_at_ms: 1_700_000_000_000,
                fresh_until_ms: Some(1_700_000_060_000),
                expires_at_ms: None,
            },
            key_text: "3:abc;".into(),
            payload: Bytes::from_static(b"payload bytes"),
        }
    }

    #[test]
    fn round_trip() {
        let entry = sample();
        assert_eq!(decode_entry(&encode_entry(&entry)).unwrap(), entry);
        let mut no_scope = sample();
        no_scope.meta.scope = Scope::none();
        no_scope.payload = Bytes::new();
        assert_eq!(decode_entry(&encode_entry(&no_scope)).unwrap(), no_scope);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let encoded = encode_entry(&sample());
        for length in 0..encoded.len() {
            assert!(
                decode_entry(&encoded[..length]).is_err(),
                "truncated to {length}"
            );
        }
        for position in 0..encoded.len() {
            let mut altered = encoded.clone();
            altered[position] ^= 0x5a;
            assert!(decode_entry(&altered).is_err(), "byte {position} flipped");
        }
    }

    #[test]
    fn the_header_decodes_from_a_prefix() {
        let entry = sample();
        let encoded = encode_entry(&entry);
        // Enough for the header: everything up to the key length.
        let header_end = encoded.len() - 4 - entry.payload.len() - 4 - entry.key_text.len() - 4;
        assert_eq!(decode_entry_header(&encoded).unwrap(), entry.meta);
        assert_eq!(
            decode_entry_header(&encoded[..header_end]).unwrap(),
            entry.meta
        );
        assert_eq!(
            decode_entry_header(&encoded[..header_end - 1]),
            Err(EntryDecodeError::Truncated)
        );
        assert_eq!(
            decode_entry_header(b"XXXXYYYYYYYY"),
            Err(EntryDecodeError::BadMagic)
        );
    }

    #[test]
    fn freshness_windows() {
        let mut meta = sample().meta;
        meta.fresh_until_ms = Some(100);
        meta.expires_at_ms = Some(200);
        assert_eq!(meta.freshness(99), Freshness::Fresh);
        assert_eq!(meta.freshness(100), Freshness::Stale);
        assert_eq!(meta.freshness(200), Freshness::Expired);
        meta.fresh_until_ms = None;
        meta.expires_at_ms = None;
        assert_eq!(meta.freshness(u64::MAX), Freshness::Fresh);
    }
}
