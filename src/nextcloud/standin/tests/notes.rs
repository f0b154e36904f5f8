//! Notes API v1, with the reference's Basic app-password login, and the CORS rule.

use serde_json::{Value, json};

use super::support::*;

const NOTES: &str = "/index.php/apps/notes/api/v1/notes";

struct NotesClient<'a> {
    fx: &'a Fixture,
    auth: Auth,
    ocs_header: bool,
}

impl NotesClient<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .fx
            .client
            .request(method, self.fx.url(path))
            .headers(self.auth.headers(self.ocs_header));
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(etag) = if_match {
            req = req.header("If-Match", format!("\"{etag}\""));
        }
        read(req.send().await.unwrap()).await
    }
}

async fn alice_by_basic(fx: &Fixture) -> NotesClient<'_> {
    let (login, password) = fx.provision(&fx.idp.token("alice-sub", "Alice")).await;
    NotesClient {
        fx,
        auth: Auth::Basic(login, password),
        // The reference sends it, but Basic with an app password works without.
        ocs_header: false,
    }
}

#[tokio::test]
async fn notes_can_be_created_listed_read_updated_and_deleted() {
    use reqwest::Method;
    let fx = Fixture::start().await;
    let alice = alice_by_basic(&fx).await;

    let (status, note) = alice
        .send(
            Method::POST,
            NOTES,
            Some(json!({"title": "Groceries", "content": "milk", "category": "home"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "create is 200, not 201: {note}");
    for field in [
        "id",
        "title",
        "modified",
        "category",
        "favorite",
        "readonly",
        "internalPath",
        "shareTypes",
        "isShared",
        "error",
        "errorType",
        "content",
        "etag",
    ] {
        assert!(note.get(field).is_some(), "{field} missing from {note}");
    }
    assert_eq!(
        (&note["title"], &note["content"], &note["category"]),
        (&json!("Groceries"), &json!("milk"), &json!("home"))
    );
    let id = note["id"].as_u64().unwrap();
    let one = format!("{NOTES}/{id}");

    let (status, list) = alice
        .send(Method::GET, &format!("{NOTES}?chunkSize=100"), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([note.clone()]), "a bare array");
    assert_eq!(
        alice.send(Method::GET, &one, None, None).await,
        (200, note.clone())
    );

    let etag = note["etag"].as_str().unwrap().to_owned();
    let (status, updated) = alice
        .send(
            Method::PUT,
            &one,
            Some(json!({"content": "milk\n---\neggs"})),
            Some(&etag),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["content"], "milk\n---\neggs");
    assert_ne!(updated["etag"], note["etag"]);

    let (status, current) = alice
        .send(
            Method::PUT,
            &one,
            Some(json!({"content": "lost update"})),
            Some(&etag),
        )
        .await;
    assert_eq!(status, 412, "a stale If-Match");
    assert_eq!(current["content"], "milk\n---\neggs");

    assert_eq!(
        alice.send(Method::DELETE, &one, None, None).await,
        (200, json!([]))
    );
    assert_eq!(alice.send(Method::GET, &one, None, None).await.0, 404);
    assert_eq!(alice.send(Method::DELETE, &one, None, None).await.0, 404);
    assert_eq!(
        alice.send(Method::PUT, &one, Some(json!({})), None).await.0,
        404
    );
    assert_eq!(
        alice.send(Method::GET, NOTES, None, None).await,
        (200, json!([]))
    );
}

#[tokio::test]
async fn ids_must_be_numbers_and_notes_belong_to_their_user() {
    use reqwest::Method;
    let fx = Fixture::start().await;
    let alice = alice_by_basic(&fx).await;
    let (_, note) = alice
        .send(
            Method::POST,
            NOTES,
            Some(json!({"content": "# Secret plan\nstep 1"})),
            None,
        )
        .await;
    assert_eq!(
        note["title"], "Secret plan",
        "untitled notes take their first line"
    );
    for path in [format!("{NOTES}/abc"), format!("{NOTES}/-1")] {
        assert_eq!(
            alice.send(Method::GET, &path, None, None).await.0,
            400,
            "{path}"
        );
    }

    let (login, password) = fx.provision(&fx.idp.token("bob-sub", "Bob")).await;
    let bob = NotesClient {
        fx: &fx,
        auth: Auth::Basic(login, password),
        ocs_header: true,
    };
    let alices = format!("{NOTES}/{}", note["id"]);
    assert_eq!(bob.send(Method::GET, &alices, None, None).await.0, 404);
    assert_eq!(bob.send(Method::DELETE, &alices, None, None).await.0, 404);
    assert_eq!(
        bob.send(Method::GET, NOTES, None, None).await,
        (200, json!([]))
    );
}

/// CORSMiddleware: a logged-in request without `OCS-APIRequest: true` must be Basic.
#[tokio::test]
async fn bearer_without_the_api_header_is_refused_by_the_cors_rule() {
    use reqwest::Method;
    let fx = Fixture::start().await;
    let token = fx.idp.token("alice-sub", "Alice");
    let (_, app_password) = fx.provision(&token).await;
    let cors = (401, json!({"message": "CORS requires basic auth"}));
    for bearer in [token.clone(), app_password] {
        let without = NotesClient {
            fx: &fx,
            auth: Auth::Bearer(bearer.clone()),
            ocs_header: false,
        };
        assert_eq!(without.send(Method::GET, NOTES, None, None).await, cors);
        let with = NotesClient {
            ocs_header: true,
            ..without
        };
        assert_eq!(with.send(Method::GET, NOTES, None, None).await.0, 200);
    }
    let anonymous = NotesClient {
        fx: &fx,
        auth: Auth::None,
        ocs_header: true,
    };
    assert_eq!(
        anonymous.send(Method::GET, NOTES, None, None).await,
        (401, json!({"message": "Current user is not logged in"}))
    );
}
