//! The DCR instance's log and stored client, read as the checks read them.

use super::*;

#[test]
fn the_refusal_is_read_from_the_server_log() {
    let lines: Vec<String> = [
        "ERROR [x] nextcloud_mcp_server.auth.client_registration - Failed to register client: HTTP 400",
        r#"ERROR [x] nextcloud_mcp_server.auth.client_registration - Response: {"error":"Unrecognized field \"token_type\""}"#,
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(
        refusal(&lines).as_deref(),
        Some(
            r#"Keycloak refused its registration: HTTP 400 {"error":"Unrecognized field \"token_type\""}"#
        )
    );
    assert_eq!(refusal(&lines[1..]), None);
}

#[test]
fn a_stored_client_is_read_and_decrypted_for_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::storage::cipher::new_key();
    let cipher = Cipher::new(&key).unwrap();
    let path = dir.path().join("tokens.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE oauth_clients (id INTEGER PRIMARY KEY, client_id TEXT UNIQUE, \
         encrypted_client_secret BLOB, client_secret_expires_at BIGINT, \
         encrypted_registration_access_token BLOB, registration_client_uri TEXT)",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO oauth_clients VALUES (1, 'c-1', ?1, 0, ?2, 'http://kc/reg/c-1')",
        [
            cipher.encrypt(b"client-secret-0123456789"),
            cipher
                .encrypt(b"eyJhbGciOiJIUzUxMiJ9.eyJ0eXAiOiJSZWdpc3RyYXRpb25BY2Nlc3NUb2tlbiJ9.c2ln"),
        ],
    )
    .unwrap();
    let db = TokenDb::open(&path).unwrap();
    let c = StoredClient::read(&db, &cipher).unwrap().unwrap();
    assert_eq!(c.client_id, "c-1");
    assert_eq!(c.client_secret_expires_at, Some(0));
    assert_eq!(
        c.secret.as_ref().unwrap().expose(),
        "client-secret-0123456789"
    );
    let reg = c.registration();
    assert_eq!(reg.management().unwrap().0, "http://kc/reg/c-1");
    assert_eq!(
        reg.registration_access_token.unwrap().kind(),
        SecretKind::RegistrationToken
    );
    assert!(c.describe().contains("Fernet token"));
    assert!(!c.describe().contains("client-secret-0123456789"));
    let wrong = Cipher::new(&crate::storage::cipher::new_key()).unwrap();
    assert!(
        StoredClient::read(&db, &wrong)
            .unwrap()
            .unwrap()
            .secret
            .is_err()
    );
}
