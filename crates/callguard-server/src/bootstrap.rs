//! First start: the data directory (owner-only), the key-encryption key file, the database.

use callguard_core::kek::KeyEncryptionKey;
use std::io::Write;
use std::path::Path;

/// Creates a directory readable by its owner only (0700), or tightens an existing one.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a new file readable by its owner only (0600); refuses to overwrite.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Why the key-encryption key could not be had. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("cannot read the key-encryption key file {0}: {1}")]
    Read(String, String),
    #[error("cannot create the key-encryption key file {0}: {1}")]
    Write(String, String),
    #[error("the key-encryption key in {0} is not 32 bytes of base64")]
    Invalid(String),
}

/// Loads the key-encryption key from `path`, creating it (0600) when it does not exist.
pub fn load_or_create_kek(path: &Path) -> Result<KeyEncryptionKey, KekError> {
    let shown = path.display().to_string();
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KekError::Read(shown.clone(), e.to_string()))?;
        return KeyEncryptionKey::from_text(&text).ok_or(KekError::Invalid(shown));
    }
    if let Some(parent) = path.parent() {
        create_private_dir(parent).map_err(|e| KekError::Write(shown.clone(), e.to_string()))?;
    }
    let kek = KeyEncryptionKey::generate();
    write_private_file(path, format!("{}\n", kek.to_text().expose()).as_bytes())
        .map_err(|e| KekError::Write(shown.clone(), e.to_string()))?;
    tracing::info!(path = %shown, "created the key-encryption key file");
    Ok(kek)
}

/// Where the keys being rotated away from are kept beside the key file: `KEK_FILE.previous`,
/// one base64 key per line. It exists only while `callguard keys rotate` runs.
#[must_use]
pub fn previous_keys_path(kek_file: &Path) -> std::path::PathBuf {
    let mut name = kek_file.as_os_str().to_owned();
    name.push(".previous");
    std::path::PathBuf::from(name)
}

/// The keys in `KEK_FILE.previous` (none when it does not exist).
pub fn load_previous_keys(kek_file: &Path) -> Result<Vec<KeyEncryptionKey>, KekError> {
    let path = previous_keys_path(kek_file);
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| KeyEncryptionKey::from_text(l).ok_or_else(|| KekError::Invalid(shown.clone())))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(KekError::Read(shown, e.to_string())),
    }
}

/// Replaces a file atomically with owner-only contents: a temporary file, fsync, rename, fsync
/// of the directory.
pub fn replace_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    write_private_file(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Parses a key given directly (environment or secret file).
pub fn kek_from_text(text: &str, origin: &str) -> Result<KeyEncryptionKey, KekError> {
    KeyEncryptionKey::from_text(text).ok_or_else(|| KekError::Invalid(origin.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_owner_only_and_reloads() {
        let dir = std::env::temp_dir().join(format!("cg-kek-{}", uuid::Uuid::new_v4()));
        let path = dir.join("keys").join("kek");
        let a = load_or_create_kek(&path).unwrap();
        let b = load_or_create_kek(&path).unwrap();
        let sealed = a.seal(b"x", "t");
        assert!(b.open(&sealed, "t").is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(path.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
