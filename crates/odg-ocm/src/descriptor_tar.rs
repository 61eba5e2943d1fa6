//! The `+tar` descriptor layer: finding `component-descriptor.yaml` in a tar, and writing such a tar.
//!
//! Reading parses the tar headers by hand instead of using the `tar` crate's reader, because the
//! Python library writes tars without end-of-archive blocks (and a missing final padding must not
//! matter either); the format is simple enough that a slice walk is the most robust reader.
//! Supported: ustar/GNU/v7 headers, GNU long names (`L`), PAX `path` records (`x`).

use crate::error::OcmError;

pub(crate) const DESCRIPTOR_ENTRY_NAME: &str = "component-descriptor.yaml";

const BLOCK_SIZE: usize = 512;
const NAME_FIELD: std::ops::Range<usize> = 0..100;
const SIZE_FIELD: std::ops::Range<usize> = 124..136;
const CHECKSUM_FIELD: std::ops::Range<usize> = 148..156;
const TYPE_FLAG_OFFSET: usize = 156;
const MAGIC_FIELD: std::ops::Range<usize> = 257..263;
const PREFIX_FIELD: std::ops::Range<usize> = 345..500;

/// True when `bytes` starts with a tar header whose checksum is right: the sniffing test for layers
/// of unknown media type (it also recognises v7 tars, which have no `ustar` magic).
pub(crate) fn looks_like_tar(bytes: &[u8]) -> bool {
    bytes.len() >= BLOCK_SIZE && {
        let header = &bytes[..BLOCK_SIZE];
        !is_zero_block(header) && checksum_matches(header)
    }
}

/// Returns the content of the single `component-descriptor.yaml` entry (a leading `./` is fine).
///
/// Refuses the whole archive when any entry has an absolute path or a `..` component: such an archive
/// was not written by an OCM tool, and refusing is simpler to reason about than skipping.
pub(crate) fn find_descriptor_entry(
    archive: &[u8],
    max_entry_bytes: usize,
) -> Result<&[u8], OcmError> {
    let mut offset = 0;
    let mut pending_long_name: Option<String> = None;
    let mut descriptor: Option<&[u8]> = None;

    while offset < archive.len() {
        let remaining = &archive[offset..];
        if remaining.len() < BLOCK_SIZE {
            // Trailing bytes shorter than a header: tolerate zero padding, refuse anything else.
            if is_zero_block(remaining) {
                break;
            }
            return Err(OcmError::malformed_tar("truncated header"));
        }
        let header = &remaining[..BLOCK_SIZE];
        if is_zero_block(header) {
            break; // end-of-archive marker; whatever follows is not part of the archive
        }
        if !checksum_matches(header) {
            return Err(OcmError::malformed_tar(format!(
                "bad header checksum at offset {offset}"
            )));
        }
        let size = parse_size(&header[SIZE_FIELD])
            .ok_or_else(|| OcmError::malformed_tar(format!("bad size field at offset {offset}")))?;
        let data_start = offset + BLOCK_SIZE;
        let data_end = data_start
            .checked_add(size)
            .filter(|end| *end <= archive.len())
            .ok_or_else(|| {
                OcmError::malformed_tar(format!("entry data truncated at offset {offset}"))
            })?;
        let data = &archive[data_start..data_end];
        // The final entry's padding may be missing as well: clamp rather than fail.
        offset = data_start
            .saturating_add(size.div_ceil(BLOCK_SIZE) * BLOCK_SIZE)
            .min(archive.len());

        match header[TYPE_FLAG_OFFSET] {
            b'L' => {
                pending_long_name = Some(text_until_nul(data));
                continue;
            }
            b'x' => {
                if let Some(path) = pax_path(data) {
                    pending_long_name = Some(path);
                }
                continue;
            }
            b'g' => continue, // global PAX header: no entry of its own
            _ => {}
        }

        let path = pending_long_name
            .take()
            .unwrap_or_else(|| header_path(header));
        let normalised_path = normalise_entry_path(&path)?;
        let is_regular_file = matches!(header[TYPE_FLAG_OFFSET], b'0' | b'\0' | b'7');
        if is_regular_file && normalised_path == DESCRIPTOR_ENTRY_NAME {
            if descriptor.is_some() {
                return Err(OcmError::malformed_tar(
                    "more than one component-descriptor.yaml",
                ));
            }
            if size > max_entry_bytes {
                return Err(OcmError::TooLarge {
                    what: "component-descriptor.yaml",
                    actual: size,
                    limit: max_entry_bytes,
                });
            }
            descriptor = Some(data);
        }
    }
    descriptor.ok_or(OcmError::MissingDescriptorEntry)
}

/// A standard ustar archive with the one entry `component-descriptor.yaml`, end blocks included.
/// Deterministic (mtime 0, mode 0o644, uid/gid 0, no user names), so equal documents give equal digests.
#[allow(
    clippy::expect_used,
    reason = "a short fixed ASCII path fits a ustar header, and writing into a Vec cannot fail"
)]
pub fn encode_descriptor_tar(yaml: &str) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(DESCRIPTOR_ENTRY_NAME)
        .expect("a short relative ASCII path always fits a ustar header");
    header.set_size(yaml.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();

    let mut builder = tar::Builder::new(Vec::with_capacity(yaml.len() + 3 * BLOCK_SIZE));
    builder
        .append(&header, yaml.as_bytes())
        .expect("writing into a Vec cannot fail");
    builder
        .into_inner()
        .expect("writing into a Vec cannot fail")
}

fn is_zero_block(bytes: &[u8]) -> bool {
    bytes.iter().all(|byte| *byte == 0)
}

/// The checksum is the sum of the header bytes with the checksum field read as spaces. Historic
/// writers summed signed bytes, so accept either sum.
fn checksum_matches(header: &[u8]) -> bool {
    let Some(stored) = parse_octal(&header[CHECKSUM_FIELD]) else {
        return false;
    };
    let (mut unsigned_sum, mut signed_sum) = (0u64, 0i64);
    for (index, byte) in header.iter().enumerate() {
        let byte = if CHECKSUM_FIELD.contains(&index) {
            b' '
        } else {
            *byte
        };
        unsigned_sum += u64::from(byte);
        signed_sum += i64::from(byte as i8);
    }
    stored == unsigned_sum || i64::try_from(stored).is_ok_and(|stored| stored == signed_sum)
}

/// Octal size, or GNU base-256 for sizes beyond 8 GiB (which then fail the size limits anyway).
fn parse_size(field: &[u8]) -> Option<usize> {
    if field[0] & 0x80 != 0 {
        let mut size: u64 = u64::from(field[0] & 0x7f);
        for byte in &field[1..] {
            size = size.checked_mul(256)?.checked_add(u64::from(*byte))?;
        }
        return usize::try_from(size).ok();
    }
    usize::try_from(parse_octal(field)?).ok()
}

/// Octal digits, optionally surrounded by spaces and terminated by NUL or space.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

fn text_until_nul(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `prefix/name` for ustar headers with a prefix, else the name field.
fn header_path(header: &[u8]) -> String {
    let name = text_until_nul(&header[NAME_FIELD]);
    let is_ustar = &header[MAGIC_FIELD] == b"ustar\0";
    let prefix = if is_ustar {
        text_until_nul(&header[PREFIX_FIELD])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// The `path` record of a PAX extended header; records are `<length> <key>=<value>\n`.
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    let mut path = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|byte| *byte == b' ')?;
        let length: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if length <= space || length > rest.len() {
            return None;
        }
        let record = &rest[space + 1..length];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"path=") {
            path = Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = &rest[length..];
    }
    path
}

/// Drops `.` and empty components (so `./component-descriptor.yaml` matches) and refuses absolute
/// paths and `..` components outright.
fn normalise_entry_path(path: &str) -> Result<String, OcmError> {
    let unsafe_path = || OcmError::UnsafeTarPath {
        path: path.to_owned(),
    };
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(unsafe_path());
    }
    let mut components = Vec::new();
    for component in path.split(['/', '\\']) {
        match component {
            "" | "." => {}
            ".." => return Err(unsafe_path()),
            _ => components.push(component),
        }
    }
    Ok(components.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = "meta: {schemaVersion: v2}\n";

    fn archive_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // append_data writes GNU long-name entries for paths over 100 bytes
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Raw header bytes with an arbitrary name, which the tar crate's safe setters would refuse.
    fn archive_with_raw_name(name: &str, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut archive = header.as_bytes().to_vec();
        archive.extend_from_slice(data);
        archive.resize(archive.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE, 0);
        archive
    }

    fn without_end_blocks(mut archive: Vec<u8>) -> Vec<u8> {
        assert!(archive.ends_with(&[0; 2 * BLOCK_SIZE]));
        archive.truncate(archive.len() - 2 * BLOCK_SIZE);
        archive
    }

    #[test]
    fn encoded_tar_reads_back_with_and_without_end_blocks() {
        let archive = encode_descriptor_tar(DOCUMENT);
        assert_eq!(
            archive.len(),
            4 * BLOCK_SIZE,
            "header, one data block, two end blocks"
        );
        assert_eq!(
            find_descriptor_entry(&archive, 1024).unwrap(),
            DOCUMENT.as_bytes()
        );
        let truncated = without_end_blocks(archive);
        assert_eq!(
            find_descriptor_entry(&truncated, 1024).unwrap(),
            DOCUMENT.as_bytes()
        );
    }

    #[test]
    fn encoded_tar_is_standard_and_deterministic() {
        let archive = encode_descriptor_tar(DOCUMENT);
        assert_eq!(archive, encode_descriptor_tar(DOCUMENT));
        let mut reader = tar::Archive::new(archive.as_slice());
        let mut entries = reader.entries().unwrap();
        let entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some(DESCRIPTOR_ENTRY_NAME));
        assert_eq!(entry.header().mode().unwrap(), 0o644);
        assert_eq!(entry.header().mtime().unwrap(), 0);
        assert_eq!(entry.header().entry_type(), tar::EntryType::Regular);
        assert!(entries.next().is_none());
    }

    #[test]
    fn a_tar_written_by_python_tarfile_without_end_blocks_is_read() {
        let archive = include_bytes!("testdata/python-tarfile-without-end-blocks.tar");
        assert_eq!(
            archive.len(),
            2 * BLOCK_SIZE,
            "the fixture has no end-of-archive blocks"
        );
        let document = find_descriptor_entry(archive, 4096).unwrap();
        assert!(document.starts_with(b"meta:\n  schemaVersion: v2\n"));
    }

    #[test]
    fn missing_padding_after_the_last_entry_is_tolerated() {
        let archive = without_end_blocks(encode_descriptor_tar(DOCUMENT));
        let unpadded = &archive[..BLOCK_SIZE + DOCUMENT.len()];
        assert_eq!(
            find_descriptor_entry(unpadded, 1024).unwrap(),
            DOCUMENT.as_bytes()
        );
    }

    #[test]
    fn other_entries_and_a_leading_dot_slash_are_fine() {
        for archive in [
            archive_with(&[
                ("README", b"hello"),
                ("./component-descriptor.yaml", DOCUMENT.as_bytes()),
            ]),
            archive_with_raw_name("./component-descriptor.yaml", DOCUMENT.as_bytes()),
            archive_with_raw_name(".//./component-descriptor.yaml", DOCUMENT.as_bytes()),
        ] {
            assert_eq!(
                find_descriptor_entry(&archive, 1024).unwrap(),
                DOCUMENT.as_bytes()
            );
        }
    }

    #[test]
    fn long_gnu_names_and_pax_paths_are_resolved() {
        let long_directory = "d".repeat(120);
        let long_path = format!("{long_directory}/component-descriptor.yaml");
        let archive = archive_with(&[
            (&long_path, b"nested"),
            ("component-descriptor.yaml", DOCUMENT.as_bytes()),
        ]);
        assert_eq!(
            find_descriptor_entry(&archive, 1024).unwrap(),
            DOCUMENT.as_bytes()
        );

        let record = "path=./component-descriptor.yaml\n";
        let pax_record = format!("{} {record}", record.len() + 3);
        let mut pax_header = tar::Header::new_ustar();
        pax_header.set_path("PaxHeader/x").unwrap();
        pax_header.set_size(pax_record.len() as u64);
        pax_header.set_entry_type(tar::EntryType::XHeader);
        pax_header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&pax_header, pax_record.as_bytes()).unwrap();
        let mut file_header = tar::Header::new_ustar();
        file_header.set_path("placeholder-name").unwrap();
        file_header.set_size(DOCUMENT.len() as u64);
        file_header.set_cksum();
        builder.append(&file_header, DOCUMENT.as_bytes()).unwrap();
        let archive = builder.into_inner().unwrap();
        assert_eq!(
            find_descriptor_entry(&archive, 1024).unwrap(),
            DOCUMENT.as_bytes()
        );
    }

    #[test]
    fn absolute_paths_and_parent_components_are_refused() {
        for name in [
            "/component-descriptor.yaml",
            "../component-descriptor.yaml",
            "a/../component-descriptor.yaml",
            "./../etc/passwd",
        ] {
            let archive = archive_with_raw_name(name, DOCUMENT.as_bytes());
            let error = find_descriptor_entry(&archive, 1024).unwrap_err();
            assert!(
                matches!(error, OcmError::UnsafeTarPath { .. }),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn a_nested_descriptor_is_not_the_descriptor() {
        let archive = archive_with(&[("sub/component-descriptor.yaml", DOCUMENT.as_bytes())]);
        assert_eq!(
            find_descriptor_entry(&archive, 1024),
            Err(OcmError::MissingDescriptorEntry)
        );
    }

    #[test]
    fn duplicate_descriptor_entries_are_refused() {
        let archive = archive_with(&[
            ("component-descriptor.yaml", DOCUMENT.as_bytes()),
            ("./component-descriptor.yaml", b"other"),
        ]);
        assert!(matches!(
            find_descriptor_entry(&archive, 1024),
            Err(OcmError::MalformedTar { .. })
        ));
    }

    #[test]
    fn an_oversized_entry_is_refused() {
        let archive = encode_descriptor_tar(DOCUMENT);
        let error = find_descriptor_entry(&archive, DOCUMENT.len() - 1).unwrap_err();
        assert!(matches!(error, OcmError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn corrupt_archives_are_malformed() {
        let mut bad_checksum = encode_descriptor_tar(DOCUMENT);
        bad_checksum[0] ^= 1;
        let mut truncated_data = encode_descriptor_tar(DOCUMENT);
        truncated_data.truncate(BLOCK_SIZE + 3);
        let mut short_garbage = encode_descriptor_tar(DOCUMENT);
        short_garbage.truncate(2 * BLOCK_SIZE);
        short_garbage.extend_from_slice(b"junk");
        for archive in [bad_checksum, truncated_data, short_garbage] {
            assert!(matches!(
                find_descriptor_entry(&archive, 1024),
                Err(OcmError::MalformedTar { .. })
            ));
        }
    }

    #[test]
    fn sniffing_recognises_tars_only() {
        assert!(looks_like_tar(&encode_descriptor_tar(DOCUMENT)));
        assert!(!looks_like_tar(DOCUMENT.as_bytes()));
        assert!(!looks_like_tar(&[0; 1024]));
        assert!(!looks_like_tar(&[b'{'; 1024]));
    }
}
