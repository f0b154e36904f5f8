//! Login Flow v2, app passwords, wrong Basic credentials, and the log's redaction.

use std::time::Duration;

use serde_json::json;

use super::super::{AuthKind, Timings, user_id_for_sub};
use super::support::*;

#[tokio::test]
async fn a_flow_hands_the_granters_app_password_to_one_poll() {
    let fx = Fixture::start().await;
    let flow = fx.start_flow().await;
    let base = fx.standin.base_url();
    assert_eq!(flow.poll_token.len(), 128);
    assert_eq!(
        flow.poll_endpoint,
        format!("{base}/index.php/login/v2/poll")
    );
    let login_token = flow
        .login
        .strip_prefix(&format!("{base}/index.php/login/v2/flow/"))
        .expect("an absolute login URL");
    assert_eq!(login_token.len(), 128);

    assert_eq!(fx.poll(&flow.poll_token).await, (404, json!([])), "pending");
    let page = fx.client.get(&flow.login).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/grant"));

    let alice = fx.idp.token("alice-sub", "Alice");
    let grant = fx
        .client
        .post(format!("{}/grant", flow.login))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 200);

    let (status, creds) = fx.poll(&flow.poll_token).await;
    assert_eq!(status, 200, "{creds}");
    let alice_uid = user_id_for_sub(1, "alice-sub");
    assert_eq!(creds["server"], json!(base));
    assert_eq!(creds["loginName"], json!(alice_uid));
    let password = creds["appPassword"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 72);
    assert_eq!(
        fx.poll(&flow.poll_token).await,
        (404, json!([])),
        "only once"
    );

    // The reference's ownership check: bearer and Basic name the same user.
    let (status, by_bearer) = fx.whoami(&Auth::Bearer(alice)).await;
    assert_eq!(status, 200);
    let (status, by_basic) = fx
        .whoami(&Auth::Basic(alice_uid.clone(), password.clone()))
        .await;
    assert_eq!(status, 200, "{by_basic}");
    assert_eq!(
        by_basic["ocs"]["data"]["id"],
        by_bearer["ocs"]["data"]["id"]
    );
    assert_eq!(by_basic["ocs"]["data"]["displayname"], "Alice");
    assert_eq!(
        fx.standin.requests().pop().unwrap().auth,
        AuthKind::Basic {
            user: alice_uid.clone()
        }
    );

    // Nextcloud's token login also takes the app password as a bearer token.
    let (status, by_app_bearer) = fx.whoami(&Auth::Bearer(password)).await;
    assert_eq!(status, 200);
    assert_eq!(by_app_bearer["ocs"]["data"]["id"], json!(alice_uid));
    assert_eq!(
        fx.standin.requests().pop().unwrap().auth,
        AuthKind::BearerAppPassword { user: alice_uid }
    );
}

/// Whoever polls gets the app password of whoever granted: a flow started for Alice and
/// granted by Bob yields Bob's credentials, which the reference must then refuse.
#[tokio::test]
async fn a_grant_by_another_user_yields_that_user_never_the_poller() {
    let fx = Fixture::start().await;
    let (login, password) = fx.provision(&fx.idp.token("bob-sub", "Bob")).await;
    let bob_uid = user_id_for_sub(1, "bob-sub");
    assert_eq!(login, bob_uid);
    let (_, by_basic) = fx.whoami(&Auth::Basic(login, password)).await;
    assert_eq!(by_basic["ocs"]["data"]["id"], json!(bob_uid));
    let (_, alice) = fx
        .whoami(&Auth::Bearer(fx.idp.token("alice-sub", "Alice")))
        .await;
    assert_ne!(alice["ocs"]["data"]["id"], by_basic["ocs"]["data"]["id"]);
}

#[tokio::test]
async fn only_a_valid_keycloak_token_grants_and_only_once() {
    let fx = Fixture::start().await;
    let alice = fx.idp.token("alice-sub", "Alice");
    let (_, app_password) = fx.provision(&alice).await;
    let flow = fx.start_flow().await;
    let grant = |token: Option<String>| {
        let req = fx.client.post(format!("{}/grant", flow.login));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
        .send()
    };
    assert_eq!(grant(None).await.unwrap().status(), 401);
    assert_eq!(grant(Some(app_password)).await.unwrap().status(), 401);
    let mut expired = fx.idp.claims("alice-sub", "Alice");
    expired["exp"] = json!(now() - 5);
    let expired = sign(
        &expired,
        &realm_key().encoding,
        jsonwebtoken::Algorithm::RS256,
        Some("k1"),
    );
    assert_eq!(grant(Some(expired)).await.unwrap().status(), 401);
    assert_eq!(fx.poll(&flow.poll_token).await.0, 404, "still pending");

    assert_eq!(grant(Some(alice.clone())).await.unwrap().status(), 200);
    assert_eq!(grant(Some(alice.clone())).await.unwrap().status(), 403);
    let unknown = fx
        .client
        .post(fx.url("/index.php/login/v2/flow/not-a-login-token/grant"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 403);
}

#[tokio::test]
async fn unknown_missing_and_expired_poll_tokens_are_404() {
    let fx = Fixture::start().await;
    assert_eq!(fx.poll(&"x".repeat(128)).await, (404, json!([])));
    let no_token = fx
        .client
        .post(fx.url("/index.php/login/v2/poll"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 404);

    let idp = Idp::with_keys(vec![realm_key().jwk("k1")]).await;
    let timings = Timings {
        flow_ttl: Duration::ZERO,
        ..Timings::default()
    };
    let fx = Fixture::against(idp, timings).await;
    let flow = fx.start_flow().await;
    let grant = fx
        .client
        .post(format!("{}/grant", flow.login))
        .bearer_auth(fx.idp.token("alice-sub", "Alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 403, "an expired flow cannot be granted");
    assert_eq!(fx.poll(&flow.poll_token).await, (404, json!([])));
}

#[tokio::test]
async fn wrong_basic_credentials_are_401_before_routing() {
    let fx = Fixture::start().await;
    let (login, password) = fx.provision(&fx.idp.token("alice-sub", "Alice")).await;
    for auth in [
        Auth::Basic(login.clone(), "not-the-app-password".into()),
        Auth::Basic("someone-else".into(), password.clone()),
    ] {
        let resp = fx
            .client
            .get(fx.url("/ocs/v2.php/cloud/user?format=json"))
            .headers(auth.headers(true))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["WWW-Authenticate"],
            "Basic realm=\"Authorisation Required\""
        );
        let (status, body) = read(resp).await;
        assert_eq!(status, 401);
        assert_eq!(
            body["ocs"]["meta"],
            json!({"status": "failure", "statuscode": 997, "message": "Unauthorised"})
        );
    }
    // Also where no route exists, and outside OCS.
    let resp = fx
        .client
        .get(fx.url("/no/such/route"))
        .headers(Auth::Basic(login, "wrong-password".into()).headers(true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn deleting_the_app_password_in_use_revokes_it() {
    let fx = Fixture::start().await;
    let alice = fx.idp.token("alice-sub", "Alice");
    let delete = |auth: Auth, query: &str| {
        fx.client
            .delete(fx.url(&format!("/ocs/v2.php/core/apppassword{query}")))
            .headers(auth.headers(true))
            .send()
    };
    let (status, body) = read(
        delete(Auth::Bearer(alice.clone()), "?format=json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["ocs"]["meta"]["statuscode"]),
        (403, &json!(403))
    );

    let (login, password) = fx.provision(&alice).await;
    let (status, body) = read(
        delete(Auth::Basic(login.clone(), password.clone()), "?format=json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ocs"]["data"], json!([]));
    assert_eq!(fx.whoami(&Auth::Basic(login, password)).await.0, 401);

    // The reference revokes without asking for JSON: the XML envelope still says 200.
    let (login, password) = fx.provision(&alice).await;
    let resp = delete(Auth::Basic(login.clone(), password.clone()), "")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<statuscode>200</statuscode>")
    );
    assert_eq!(fx.whoami(&Auth::Basic(login, password)).await.0, 401);
}

/// The log holds no token, password or login-flow secret, in any form.
#[tokio::test]
async fn the_request_log_holds_no_secret() {
    let fx = Fixture::start().await;
    let alice = fx.idp.token("alice-sub", "Alice");
    let flow = fx.start_flow().await;
    fx.client.get(&flow.login).send().await.unwrap();
    fx.client
        .post(format!("{}/grant", flow.login))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let (_, creds) = fx.poll(&flow.poll_token).await;
    let password = creds["appPassword"].as_str().unwrap().to_owned();
    let login = creds["loginName"].as_str().unwrap().to_owned();
    fx.whoami(&Auth::Basic(login, password.clone())).await;
    fx.whoami(&Auth::Bearer(password.clone())).await;

    let log = serde_json::to_string(&fx.standin.requests()).unwrap();
    let login_token = flow.login.rsplit('/').next().unwrap();
    for secret in [alice.as_str(), &password, &flow.poll_token, login_token] {
        assert!(!log.contains(secret), "a secret in the log: {log}");
    }
    assert!(log.contains("REDACTED token"), "{log}");
}
