//! Fernet, as the reference uses it: `Fernet(TOKEN_ENCRYPTION_KEY.encode())`, so the key
//! is the url-safe base64 text itself (not decoded first), and each encrypted column holds
//! the token text Python's `Fernet.encrypt` returns, stored as bytes.

use base64::Engine;

use crate::secret::{Secret, SecretKind};

/// A fresh Fernet key as `Fernet(key)` takes it: 32 random bytes, url-safe base64 with
/// padding.
pub fn new_key() -> Secret {
    let raw: [u8; 32] = rand::random();
    Secret::new(
        SecretKind::FernetKey,
        base64::engine::general_purpose::URL_SAFE.encode(raw),
    )
}

/// Decrypts stored values with one key.
pub struct Cipher(fernet::Fernet);

/// Why a stored value did not decrypt. Fernet gives no reason on purpose (a wrong key
/// and a tampered token look the same); the structural part is ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Undecryptable {
    #[error("not a Fernet token ({0})")]
    NotFernet(String),
    #[error("the HMAC does not verify with this key (wrong key or altered token)")]
    WrongKeyOrAltered,
}

impl Cipher {
    /// The cipher of `key`, a Fernet key as the server was given it.
    pub fn new(key: &Secret) -> anyhow::Result<Self> {
        fernet::Fernet::new(key.expose())
            .map(Self)
            .ok_or_else(|| anyhow::anyhow!("{key} is not a Fernet key (32 bytes, url-safe base64)"))
    }

    /// The plaintext of a stored value.
    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, Undecryptable> {
        let token = fernet_text(stored).map_err(Undecryptable::NotFernet)?;
        self.0
            .decrypt(token)
            .map_err(|_| Undecryptable::WrongKeyOrAltered)
    }

    /// Encrypts as the server does (for tests that build a database).
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        self.0.encrypt(plaintext)
    }

    /// Encrypts with the given timestamp (for tests that build a database).
    #[cfg(test)]
    pub fn encrypt_at(&self, plaintext: &[u8], timestamp: u64) -> String {
        self.0.encrypt_at_time(plaintext, timestamp)
    }
}

/// Version byte of every Fernet token (spec: "Version, 8 bits, 0x80").
const VERSION: u8 = 0x80;
/// Version, timestamp, IV, one cipher block, HMAC: the shortest possible token.
const MIN_TOKEN_BYTES: usize = 1 + 8 + 16 + 16 + 32;

/// The stored bytes as Fernet token text, or why they are not one: url-safe base64 of a
/// token that starts with the version byte and has room for IV, a block and the HMAC.
pub fn fernet_text(stored: &[u8]) -> Result<&str, String> {
    decoded(stored).map(|(text, _)| text)
}

/// The token text and its raw bytes, checked for the version byte and a Fernet length.
fn decoded(stored: &[u8]) -> Result<(&str, Vec<u8>), String> {
    let text = std::str::from_utf8(stored).map_err(|_| "not text".to_owned())?;
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(text.trim_end())
        .map_err(|_| "not url-safe base64".to_owned())?;
    if raw.first() != Some(&VERSION) {
        return Err(format!(
            "first byte {:#04x}, not the version byte 0x80",
            raw.first().copied().unwrap_or(0)
        ));
    }
    if raw.len() < MIN_TOKEN_BYTES || (raw.len() - 1 - 8 - 16 - 32) % 16 != 0 {
        return Err(format!("{} bytes is no Fernet token length", raw.len()));
    }
    Ok((text.trim_end(), raw))
}

/// The clear header of a Fernet token: when it was made and the IV it was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenHeader {
    /// Seconds since the epoch, as the encrypting side's clock said ("Timestamp, 64 bits").
    pub timestamp: u64,
    /// "IV, 128 bits": the spec asks for a unique one per token.
    pub iv: [u8; 16],
}

/// The header of a stored token, or why it is not a Fernet token.
pub fn token_header(stored: &[u8]) -> Result<TokenHeader, String> {
    let (_, raw) = decoded(stored)?;
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&raw[1..9]);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&raw[9..25]);
    Ok(TokenHeader {
        timestamp: u64::from_be_bytes(timestamp),
        iv,
    })
}

/// Whether the stored bytes are shaped like a Fernet token (whatever the key).
pub fn is_fernet_token(stored: &[u8]) -> bool {
    fernet_text(stored).is_ok()
}

/// A short, secret-free description of a stored value for evidence: a Fernet token shows
/// its length only; anything else its kind and length.
pub fn describe(stored: &[u8]) -> String {
    match fernet_text(stored) {
        Ok(t) => format!("Fernet token, {} chars", t.len()),
        Err(why) => format!("{} bytes, {why}", stored.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fernet_keys_are_32_bytes_of_padded_url_safe_base64() {
        let key = new_key();
        assert_eq!(key.expose().len(), 44);
        assert!(key.expose().ends_with('='));
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(key.expose())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(key.kind(), SecretKind::FernetKey);
        // The `fernet` crate (what the STORAGE checks decrypt with) accepts it.
        assert!(fernet::Fernet::new(key.expose()).is_some());
    }
}
