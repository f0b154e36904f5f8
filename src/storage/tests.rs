//! The reader against databases built here, shaped like the reference's.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::inventory::{Inventory, classify};
use super::scan::{Matcher, needles};
use super::*;
use crate::secret::{Secret, SecretKind};

fn key() -> Secret {
    crate::storage::cipher::new_key()
}

/// A JWT-shaped token with the given `typ` (unsigned: the reader never verifies).
fn jwt(typ: &str, marker: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS512","typ":"JWT","kid":"k1"}"#),
        b64(&format!(
            r#"{{"typ":"{typ}","sub":"u-1","marker":"{marker}","exp":4102444800}}"#
        )),
        b64(&format!("signature-bytes-for-{marker}"))
    )
}

/// A database with the reference's credential tables; `wal` leaves it in WAL mode with
/// the last insert not checkpointed. Returns its path and the connection (kept open so
/// the WAL is not folded back into the file).
fn build(dir: &Path, cipher: &Cipher, wal: bool, refresh_token: &str) -> (PathBuf, Connection) {
    let path = dir.join("tokens.db");
    let conn = Connection::open(&path).unwrap();
    if wal {
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    }
    conn.execute_batch(
        "CREATE TABLE refresh_tokens (user_id TEXT PRIMARY KEY, encrypted_token BLOB NOT NULL, \
           expires_at BIGINT, flow_type TEXT, scopes TEXT);
         CREATE TABLE app_passwords (user_id TEXT PRIMARY KEY, encrypted_password BLOB, username TEXT);
         CREATE TABLE oauth_sessions (session_id TEXT PRIMARY KEY, idp_access_token TEXT);",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO app_passwords VALUES ('u-2', ?1, 'nc-u-2')",
        [cipher.encrypt(b"app-password-0123456789").as_bytes()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO refresh_tokens VALUES ('u-1', ?1, 0, 'flow2', '[\"openid\"]')",
        [cipher.encrypt(refresh_token.as_bytes()).as_bytes()],
    )
    .unwrap();
    (path, conn)
}

#[test]
fn the_fernet_spec_vector_decrypts_with_the_key_used_as_text() {
    // https://github.com/fernet/spec/blob/master/generate.json
    let key = Secret::new(
        SecretKind::FernetKey,
        "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=",
    );
    let token = b"gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    assert_eq!(Cipher::new(&key).unwrap().decrypt(token).unwrap(), b"hello");
    assert!(Cipher::new(&Secret::new(SecretKind::FernetKey, "not-a-key-at-all")).is_err());
}

#[test]
fn stored_values_decrypt_with_the_right_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let (k, wrong) = (key(), key());
    let cipher = Cipher::new(&k).unwrap();
    let rt = jwt("Offline", "decrypt");
    let (path, _conn) = build(dir.path(), &cipher, false, &rt);
    let db = TokenDb::open(&path).unwrap();
    assert_eq!(
        db.tables().unwrap(),
        ["app_passwords", "oauth_sessions", "refresh_tokens"]
    );
    let rows = db.rows_where("refresh_tokens", "user_id", "u-1").unwrap();
    let stored = rows[0].get("encrypted_token").unwrap().bytes().unwrap();
    assert!(cipher::is_fernet_token(stored));
    assert_eq!(cipher.decrypt(stored).unwrap(), rt.as_bytes());
    assert_eq!(
        Cipher::new(&wrong).unwrap().decrypt(stored),
        Err(cipher::Undecryptable::WrongKeyOrAltered)
    );
    assert!(matches!(
        cipher.decrypt(b"plain text"),
        Err(cipher::Undecryptable::NotFernet(_))
    ));
    let encrypted: Vec<String> = db
        .columns("app_passwords")
        .unwrap()
        .into_iter()
        .filter(|c| c.is_encrypted_by_name())
        .map(|c| c.name)
        .collect();
    assert_eq!(encrypted, ["encrypted_password"]);
}

#[test]
fn the_reader_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = Cipher::new(&key()).unwrap();
    let (path, conn) = build(dir.path(), &cipher, false, "rt");
    drop(conn);
    let db = TokenDb::open(&path).unwrap();
    let err = db
        .conn
        .execute("DELETE FROM app_passwords", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("readonly"), "{err}");
    assert!(TokenDb::open(&dir.path().join("missing.db")).is_err());
}

#[test]
fn a_secret_still_in_the_wal_is_found_there() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = Cipher::new(&key()).unwrap();
    let (path, conn) = build(dir.path(), &cipher, true, "rt");
    let leaked = Secret::new(SecretKind::AccessToken, jwt("Bearer", "wal-leak"));
    conn.execute(
        "INSERT INTO oauth_sessions VALUES ('s1', ?1)",
        [leaked.expose()],
    )
    .unwrap();
    let files = files_of(&path);
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with("-wal")),
        "{files:?}"
    );
    let matcher = Matcher::new(needles(&[(
        leaked.expose().to_owned(),
        SecretKind::AccessToken,
    )]));
    let hits = matcher.scan_files(&files).unwrap();
    assert!(
        hits.iter()
            .any(|(f, _)| f.to_string_lossy().ends_with("-wal")),
        "{hits:?}"
    );
    // The reader sees the row too (it reads through the WAL).
    let db = TokenDb::open(&path).unwrap();
    assert_eq!(db.rows("oauth_sessions").unwrap().len(), 1);
}

#[test]
fn a_jwt_segment_stored_alone_is_found_and_named_without_its_value() {
    let token = jwt("Refresh", "segment");
    let payload = token.split('.').nth(1).unwrap().to_owned();
    let matcher = Matcher::new(needles(&[(token.clone(), SecretKind::RefreshToken)]));
    let hay = format!("xx{payload}yy");
    let hits = matcher.find_all(hay.as_bytes());
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].what.ends_with("JWT segment 2"), "{}", hits[0].what);
    assert!(!hits[0].what.contains(&payload));
    assert_eq!(hits[0].offset, 2);
    assert!(matcher.find_all(b"nothing to see here at all").is_empty());
    // Another token signed with the same key shares the header, and nothing else.
    let other = jwt("Refresh", "another");
    let header = token.split('.').next().unwrap();
    assert!(other.starts_with(header));
    assert_eq!(matcher.find_all(other.as_bytes()).len(), 1);
    let headless = Matcher::new(super::scan::needles_without_headers(&[(
        token.clone(),
        SecretKind::RefreshToken,
    )]));
    assert!(headless.find_all(other.as_bytes()).is_empty());
    assert_eq!(headless.find_all(token.as_bytes()).len(), 3);
}

#[test]
fn the_inventory_says_what_encrypted_columns_hold_and_flags_clear_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let cipher = Cipher::new(&k).unwrap();
    let (path, conn) = build(dir.path(), &cipher, false, &jwt("Offline", "inv"));
    conn.execute(
        "INSERT INTO oauth_sessions VALUES ('s1', ?1)",
        [jwt("Bearer", "clear")],
    )
    .unwrap();
    let db = TokenDb::open(&path).unwrap();
    let inv = Inventory::read(&db, &cipher, &Matcher::new(Vec::new()), "9.9.9").unwrap();
    let col = |t: &str, c: &str| {
        inv.tables
            .iter()
            .find(|x| x.name == t)
            .unwrap()
            .columns
            .iter()
            .find(|x| x.name == c)
            .unwrap()
            .clone()
    };
    assert_eq!(
        col("refresh_tokens", "encrypted_token").held,
        ["Fernet → JWT, typ Offline"]
    );
    assert_eq!(
        col("app_passwords", "encrypted_password").held,
        ["Fernet → opaque text, 23 chars"]
    );
    // A credential table's clear columns say what kind of value they held; other
    // tables' clear columns only when it is a credential.
    assert_eq!(col("refresh_tokens", "scopes").held, ["JSON"]);
    assert_eq!(col("refresh_tokens", "expires_at").held, ["integer"]);
    assert_eq!(
        col("oauth_sessions", "session_id").held,
        Vec::<String>::new()
    );
    assert_eq!(
        col("oauth_sessions", "idp_access_token").held,
        ["IN CLEAR: JWT, typ Bearer"]
    );
    assert_eq!(
        col("oauth_sessions", "idp_access_token").protection,
        "clear"
    );
    let md = inv.tables_markdown("###");
    assert!(md.contains("| `encrypted_token` | BLOB | fernet | Fernet → JWT, typ Offline |"));
    assert!(
        inv.summary_markdown()
            .contains("| `refresh_tokens.encrypted_token` | fernet | Fernet → JWT, typ Offline |")
    );
    let snap = format!(
        "---\nsource: x\n---\n{}",
        serde_json::to_string_pretty(&inv).unwrap()
    );
    assert_eq!(Inventory::from_snapshot(&snap).unwrap(), inv);
}

fn now() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp() as u64
}

fn audit_of(path: &Path, cipher: Cipher) -> super::keying::KeyingAudit {
    let keyed = super::keying::Keyed {
        label: "lab",
        db: TokenDb::open(path).unwrap(),
        cipher,
    };
    super::keying::audit(&[keyed], now() - 60..=now() + 60).unwrap()
}

#[test]
fn values_made_now_with_the_instance_key_and_their_own_ivs_pass_the_keying_audit() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let (path, conn) = build(dir.path(), &Cipher::new(&k).unwrap(), false, "rt");
    drop(conn);
    let found = audit_of(&path, Cipher::new(&k).unwrap());
    assert_eq!(
        found,
        super::keying::KeyingAudit {
            values: 2,
            repeated_plaintexts: 0,
            problems: vec![],
        }
    );
}

#[test]
fn the_keying_audit_finds_another_key_a_shared_iv_and_a_token_made_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let cipher = Cipher::new(&k).unwrap();
    let (path, conn) = build(dir.path(), &cipher, false, "rt");
    // One secret stored for two users as the same token: one IV twice, equal ciphertexts.
    let same = cipher.encrypt(b"shared-app-password");
    for user in ["u-3", "u-4"] {
        conn.execute(
            "INSERT INTO app_passwords VALUES (?1, ?2, 'nc')",
            [user.as_bytes(), same.as_bytes()],
        )
        .unwrap();
    }
    // Encrypted with a key the server was not given (a built-in default, say).
    let built_in = Cipher::new(&key()).unwrap();
    let stale = cipher.encrypt_at(b"rt-old", 1_000_000);
    for (user, token) in [("u-5", built_in.encrypt(b"rt-5")), ("u-6", stale)] {
        conn.execute(
            "INSERT INTO refresh_tokens VALUES (?1, ?2, 0, 'flow2', '[]')",
            [user.as_bytes(), token.as_bytes()],
        )
        .unwrap();
    }
    drop(conn);
    let found = audit_of(&path, cipher);
    assert_eq!(found.values, 6);
    assert_eq!(found.repeated_plaintexts, 2);
    let problems = found.problems.join("\n");
    assert_eq!(found.problems.len(), 3, "{problems}");
    assert!(
        problems.contains(
            "lab refresh_tokens.encrypted_token (row 2) does not open with the instance's \
             TOKEN_ENCRYPTION_KEY: the HMAC does not verify with this key"
        ),
        "{problems}"
    );
    assert!(
        problems.contains(
            "lab refresh_tokens.encrypted_token (row 3) was made at 1970-01-12T13:46:40Z \
             (its Fernet timestamp), outside the run"
        ),
        "{problems}"
    );
    assert!(
        problems.contains(
            "2 values share one IV: lab app_passwords.encrypted_password (row 2), \
             lab app_passwords.encrypted_password (row 3)"
        ),
        "{problems}"
    );
    // The finding names places, never values.
    assert!(!problems.contains("shared-app-password") && !problems.contains(&same));
}

#[test]
fn kinds_of_plaintext() {
    assert_eq!(classify(br#"{"a":1}"#), "JSON");
    assert_eq!(classify(b"https://x/y"), "URL");
    assert_eq!(classify(b"abc"), "opaque text, 3 chars");
    assert_eq!(classify(&[0xff, 0xfe]), "2 bytes of binary");
}

#[test]
fn file_modes_are_read_as_permission_bits() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "x").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(mode_of(&f).unwrap(), 0o600);
}
