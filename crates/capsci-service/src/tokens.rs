//! Bearer tokens: 256 random bits, given to the holder once and stored only as their BLAKE3
//! hash, each naming the grant and principal it opens a session with. Revoking deletes the
//! entry; a forged token hashes to nothing stored.

use crate::grant::Grant;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenGrant {
    /// The grant of the session the token opens.
    pub grant: Grant,
    /// The principal the session records calls for.
    pub principal: String,
    /// Free metadata recorded with every call (runner, model).
    #[serde(default)]
    pub runner: serde_json::Value,
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token directory could not be used.
    #[error("token store {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The token is not known (forged, mistyped or revoked).
    #[error("unknown or revoked token")]
    Unknown,
    /// A stored entry is not valid JSON.
    #[error("token entry {path} is damaged: {source}")]
    Damaged {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Tokens kept in a directory of the store (`<store>/tokens/<hash>.json`).
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl TokenStore {
    /// The token store of the store at `store_dir`.
    pub fn open(store_dir: &Path) -> Result<Self, TokenError> {
        let dir = store_dir.join("tokens");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(TokenStore { dir })
    }

    fn entry_path(&self, token: &str) -> PathBuf {
        let hash = blake3::hash(token.trim().as_bytes()).to_hex();
        self.dir.join(format!("{hash}.json"))
    }

    /// Issues a new token for `grant`; the token itself is returned once and never stored.
    pub fn issue(&self, grant: &TokenGrant) -> Result<String, TokenError> {
        let mut bytes = [0u8; 32];
        let random = Path::new("/dev/urandom");
        std::fs::File::open(random)
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io(random))?;
        let token = format!("capsci_{}", hex(&bytes));
        let path = self.entry_path(&token);
        let json = serde_json::to_vec_pretty(grant).map_err(|source| TokenError::Damaged {
            path: path.clone(),
            source,
        })?;
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, json).map_err(io(&temp))?;
        std::fs::rename(&temp, &path).map_err(io(&path))?;
        Ok(token)
    }

    /// The grant a token opens.
    pub fn resolve(&self, token: &str) -> Result<TokenGrant, TokenError> {
        let path = self.entry_path(token);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TokenError::Unknown),
            Err(e) => return Err(TokenError::Io { path, source: e }),
        };
        serde_json::from_slice(&text).map_err(|source| TokenError::Damaged { path, source })
    }

    /// Revokes a token: sessions can no longer be opened with it.
    pub fn revoke(&self, token: &str) -> Result<(), TokenError> {
        let path = self.entry_path(token);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(TokenError::Unknown),
            Err(e) => Err(TokenError::Io { path, source: e }),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (TokenStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "capsci-tokens-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        (TokenStore::open(&dir).expect("open"), dir)
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    #[test]
    fn a_token_opens_its_grant_until_revoked() {
        let (tokens, dir) = store();
        let grant = TokenGrant {
            grant: Grant::scientific_base(),
            principal: "agent:a".into(),
            runner: serde_json::Value::Null,
        };
        let token = tokens.issue(&grant).expect("issue");
        assert_eq!(token.len(), "capsci_".len() + 64, "256 random bits, hex");
        assert_eq!(tokens.resolve(&token).expect("resolve"), grant);
        tokens.revoke(&token).expect("revoke");
        assert!(matches!(tokens.resolve(&token), Err(TokenError::Unknown)));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn forged_tokens_and_path_tricks_open_nothing() {
        let (tokens, dir) = store();
        for forged in ["", "capsci_00", "../../etc/passwd", "capsci_\u{0}"] {
            assert!(
                matches!(tokens.resolve(forged), Err(TokenError::Unknown)),
                "{forged:?}"
            );
        }
        let stored: Vec<_> = std::fs::read_dir(dir.join("tokens"))
            .expect("dir")
            .flatten()
            .collect();
        assert!(stored.is_empty());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_token_itself_is_never_written() {
        let (tokens, dir) = store();
        let grant = TokenGrant {
            grant: Grant::scientific_base(),
            principal: "agent:b".into(),
            runner: serde_json::Value::Null,
        };
        let token = tokens.issue(&grant).expect("issue");
        for entry in std::fs::read_dir(dir.join("tokens"))
            .expect("dir")
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).expect("read");
            assert!(!text.contains(&token) && !entry.path().to_string_lossy().contains(&token));
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
