//! Every hash the product takes, in one place: SHA-256 in hex for what is stored by its
//! hash (components, admin tokens, registration numbers, application links), and LINE's
//! webhook signature (base64 of HMAC-SHA256 with the channel secret).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
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
