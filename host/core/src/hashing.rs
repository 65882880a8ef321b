//! Every hash the product takes, in one place: SHA-256 in hex for what is stored by its
//! hash (components, admin tokens, registration numbers, application links), a delivery's
//! retry key as a UUID named by what it delivers, and LINE's webhook signature (base64 of
//! HMAC-SHA256 with the channel secret).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A UUID (version 8) made from the SHA-256 of `parts`: the same parts always give the
/// same UUID, and different ones, in practice, never do. A delivery's retry key is one, so
/// that a delivery queued again after its record was lost (a restore from a backup a few
/// seconds old) carries the key LINE has already seen, and LINE refuses to deliver it twice.
pub fn name_based_uuid(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Each part's length first, so that ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// Whether `header` (an `X-Line-Signature`) is the signature of `body` with
/// `channel_secret`; the comparison takes the same time whatever the bytes
/// (`verify_slice`).
pub fn line_signature_matches(channel_secret: &[u8], body: &[u8], header: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(channel_secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_based_uuid_is_a_uuid_that_depends_on_every_part_and_its_bounds() {
        let key = name_based_uuid(&["notice", "vaccine-mr", "0102"]);
        let parsed = uuid::Uuid::parse_str(&key).unwrap();
        assert_eq!((parsed.get_version_num(), parsed.get_variant()), (8, uuid::Variant::RFC4122));
        assert_eq!(key, name_based_uuid(&["notice", "vaccine-mr", "0102"]), "the same parts, the same key");
        assert_ne!(key, name_based_uuid(&["notice", "vaccine-mr", "0103"]));
        assert_ne!(name_based_uuid(&["ab", "c"]), name_based_uuid(&["a", "bc"]));
    }

    #[test]
    fn a_signature_matches_only_its_own_body_and_secret() {
        // LINE's signature of `body` with `secret`, computed independently:
        // printf %s '{"events":[]}' | openssl dgst -sha256 -hmac secret -binary | base64
        let header = "pkK1lVPJPiJ+wPLziRD79xIxohl8AImYM8AEeM7IbzQ=";
        assert!(line_signature_matches(b"secret", br#"{"events":[]}"#, header));
        assert!(!line_signature_matches(b"secret", br#"{"events":[{}]}"#, header));
        assert!(!line_signature_matches(b"other", br#"{"events":[]}"#, header));
        assert!(!line_signature_matches(b"secret", br#"{"events":[]}"#, "not base64!"));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
