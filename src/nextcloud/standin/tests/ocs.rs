//! status.php, the OCS envelope and its format rules, capabilities, the CSRF rule.

use serde_json::json;

use super::super::AuthKind;
use super::support::*;

#[tokio::test]
async fn status_php_says_installed_nextcloud_32() {
    let fx = Fixture::start().await;
    let resp = fx.client.get(fx.url("/status.php")).send().await.unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "installed": true, "maintenance": false, "needsDbUpgrade": false,
            "version": "32.0.0.0", "versionstring": "32.0.0", "edition": "",
            "productname": "Nextcloud (mcp-authz-harness stand-in)", "extendedSupport": false,
        })
    );
    let log = fx.standin.requests();
    assert_eq!(
        (log[0].auth.clone(), log[0].user.clone()),
        (AuthKind::None, None)
    );

    let url = fx.url("/status.php");
    fx.standin.stop().await;
    assert!(fx.client.get(url).send().await.is_err(), "stopped");
}

/// The notes entry appears only for a logged-in user; the reference asks with
/// `Accept: application/json` and no `format`.
#[tokio::test]
async fn capabilities_show_notes_only_to_a_logged_in_user() {
    let fx = Fixture::start().await;
    let ask = |auth: Auth| {
        fx.client
            .get(fx.url("/ocs/v2.php/cloud/capabilities"))
            .header("Accept", "application/json")
            .headers(auth.headers(true))
            .send()
    };
    let (status, anonymous) = read(ask(Auth::None).await.unwrap()).await;
    assert_eq!(status, 200, "{anonymous}");
    let data = &anonymous["ocs"]["data"];
    assert_eq!(
        data["version"],
        json!({"major": 32, "minor": 0, "micro": 0, "string": "32.0.0", "edition": "", "extendedSupport": false})
    );
    assert!(data["capabilities"]["core"].is_object());
    assert!(data["capabilities"].get("notes").is_none(), "{data}");

    let token = fx.idp.token("alice-sub", "Alice");
    let (status, logged_in) = read(ask(Auth::Bearer(token)).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        logged_in["ocs"]["data"]["capabilities"]["notes"],
        json!({"api_version": ["0.2", "1.3"], "version": "4.12.0", "notes_path": "Notes"})
    );
}

#[tokio::test]
async fn ocs_data_asked_as_xml_gets_406_and_empty_envelopes_render_as_xml() {
    let fx = Fixture::start().await;
    let token = fx.idp.token("alice-sub", "Alice");
    let resp = fx
        .client
        .get(fx.url("/ocs/v2.php/cloud/user"))
        .headers(Auth::Bearer(token).headers(true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    assert!(resp.text().await.unwrap().contains("JSON only"));

    let resp = fx
        .client
        .get(fx.url("/ocs/v2.php/cloud/user"))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let xml = resp.text().await.unwrap();
    assert!(xml.contains("<statuscode>997</statuscode>"), "{xml}");
    assert!(xml.contains("<data/>"), "{xml}");
}

/// OCS needs `OCS-APIRequest: true` or a bearer header; without, the stand-in answers as
/// for a caller that is not logged in (Nextcloud's exact answer is unresolved).
#[tokio::test]
async fn ocs_without_the_api_header_is_not_logged_in_unless_bearer() {
    let fx = Fixture::start().await;
    let token = fx.idp.token("alice-sub", "Alice");
    let (login, password) = fx.provision(&token).await;

    let no_header = |auth: Auth| {
        fx.client
            .get(fx.url("/ocs/v2.php/cloud/user?format=json"))
            .headers(auth.headers(false))
            .send()
    };
    let basic = read(
        no_header(Auth::Basic(login.clone(), password))
            .await
            .unwrap(),
    )
    .await;
    assert_not_logged_in(&basic);
    let last = fx.standin.requests().pop().unwrap();
    assert!(!last.ocs_api_request);
    assert_eq!(
        last.user.as_deref(),
        Some(login.as_str()),
        "resolved, then refused"
    );

    let (status, body) = read(no_header(Auth::Bearer(token)).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn anything_else_is_404() {
    let fx = Fixture::start().await;
    for path in [
        "/",
        "/index.php/apps/files",
        "/ocs/v1.php/cloud/user",
        "/remote.php/dav/",
    ] {
        let resp = fx.client.get(fx.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    assert_eq!(fx.standin.requests().len(), 4);
}
