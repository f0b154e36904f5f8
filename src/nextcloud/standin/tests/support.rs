//! What the stand-in's tests share: RSA keys (made once per test binary: key generation
//! is slow in debug builds), a mock Keycloak serving discovery and JWKS, token minting,
//! and a small client.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::super::{StandIn, StandInConfig, Timings};

pub(super) const REALM: &str = "/realms/nextcloud-mcp";
pub(super) const JWKS_PATH: &str = "/realms/nextcloud-mcp/protocol/openid-connect/certs";
pub(super) const DISCOVERY_PATH: &str = "/realms/nextcloud-mcp/.well-known/openid-configuration";

/// An RSA key pair in the forms the tests need.
pub(super) struct TestKey {
    pub(super) encoding: EncodingKey,
    /// The public key as PKCS#8 PEM, the classic HMAC-confusion secret.
    pub(super) public_pem: String,
    /// The raw modulus, another HMAC-confusion secret.
    pub(super) modulus: Vec<u8>,
    public_jwk: Value,
}

impl TestKey {
    fn generate(bits: usize) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::traits::PublicKeyParts;
        let private =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).expect("RSA key generation");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("a JWK");
        Self {
            public_pem: private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("PEM"),
            modulus: private.n().to_bytes_be(),
            public_jwk: serde_json::to_value(jwk).expect("JWK as JSON"),
            encoding,
        }
    }

    /// The public JWK with `kid`, `use: sig`, `alg: RS256`.
    pub(super) fn jwk(&self, kid: &str) -> Value {
        let mut jwk = self.public_jwk.clone();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!("RS256");
        jwk
    }

    /// The public key as Keycloak publishes its encryption key (`use: enc`, `RSA-OAEP`).
    pub(super) fn enc_jwk(&self, kid: &str) -> Value {
        let mut jwk = self.jwk(kid);
        jwk["use"] = json!("enc");
        jwk["alg"] = json!("RSA-OAEP");
        jwk
    }
}

/// The key the mock Keycloak signs with (kid `k1`).
pub(super) fn realm_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(2048))
}

/// A key the mock Keycloak does not publish as `k1`.
pub(super) fn other_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(2048))
}

/// A 1024-bit key: too short for user_oidc.
pub(super) fn weak_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(1024))
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Signs `claims` with `key` under `alg` and `kid`.
pub(super) fn sign(claims: &Value, key: &EncodingKey, alg: Algorithm, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signing")
}

/// A mock Keycloak realm: discovery and a JWKS.
pub(super) struct Idp {
    pub(super) server: MockServer,
    pub(super) issuer: String,
}

impl Idp {
    /// A realm publishing `keys` as its JWKS.
    pub(super) async fn with_keys(keys: Vec<Value>) -> Idp {
        let idp = Self::without_jwks().await;
        Mock::given(method("GET"))
            .and(path(JWKS_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": keys})))
            .mount(&idp.server)
            .await;
        idp
    }

    /// A realm whose JWKS the test mounts itself.
    pub(super) async fn without_jwks() -> Idp {
        let server = MockServer::start().await;
        let issuer = format!("{}{REALM}", server.uri());
        Mock::given(method("GET"))
            .and(path(DISCOVERY_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "jwks_uri": format!("{}{JWKS_PATH}", server.uri()),
                "token_endpoint": format!("{issuer}/protocol/openid-connect/token"),
            })))
            .mount(&server)
            .await;
        Idp { server, issuer }
    }

    pub(super) fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.server.uri())
    }

    /// How many requests the realm received at `path`.
    pub(super) async fn hits(&self, at: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == at)
            .count()
    }

    /// Access-token claims as Keycloak issues them for the `nextcloud` audience.
    pub(super) fn claims(&self, sub: &str, name: &str) -> Value {
        json!({
            "iss": self.issuer,
            "aud": ["nextcloud", "account"],
            "azp": "nextcloud-mcp-server",
            "sub": sub,
            "exp": now() + 300,
            "iat": now(),
            "name": name,
            "preferred_username": name.to_lowercase(),
            "scope": "openid profile notes:read",
        })
    }

    /// A valid token of the realm for `sub`.
    pub(super) fn token(&self, sub: &str, name: &str) -> String {
        sign(
            &self.claims(sub, name),
            &realm_key().encoding,
            Algorithm::RS256,
            Some("k1"),
        )
    }
}

/// A realm with the usual JWKS (an encryption key first, then the signing key `k1`), a
/// stand-in trusting it, and a client.
pub(super) struct Fixture {
    pub(super) idp: Idp,
    pub(super) standin: StandIn,
    pub(super) client: reqwest::Client,
}

impl Fixture {
    pub(super) async fn start() -> Fixture {
        let idp = Idp::with_keys(vec![other_key().enc_jwk("enc"), realm_key().jwk("k1")]).await;
        Self::against(idp, Timings::default()).await
    }

    pub(super) async fn against(idp: Idp, timings: Timings) -> Fixture {
        let standin = StandIn::start_with(StandInConfig::new(idp.discovery_url()), timings)
            .await
            .expect("the stand-in starts");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("a client");
        Fixture {
            idp,
            standin,
            client,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.standin.base_url())
    }

    /// `GET /ocs/v2.php/cloud/user?format=json` as the reference sends it.
    pub(super) async fn whoami(&self, auth: &Auth) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url("/ocs/v2.php/cloud/user?format=json"))
            .headers(auth.headers(true))
            .send()
            .await
            .expect("cloud/user answers");
        read(resp).await
    }

    /// Runs Login Flow v2 to the end, granted with `grant_token`; returns the poll answer.
    pub(super) async fn provision(&self, grant_token: &str) -> (String, String) {
        let flow = self.start_flow().await;
        let resp = self
            .client
            .post(format!("{}/grant", flow.login))
            .bearer_auth(grant_token)
            .send()
            .await
            .expect("grant answers");
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
        let (status, creds) = self.poll(&flow.poll_token).await;
        assert_eq!(status, 200, "{creds}");
        (
            creds["loginName"].as_str().expect("loginName").to_owned(),
            creds["appPassword"]
                .as_str()
                .expect("appPassword")
                .to_owned(),
        )
    }

    pub(super) async fn start_flow(&self) -> Flow {
        let resp = self
            .client
            .post(self.url("/index.php/login/v2"))
            .header("OCS-APIRequest", "true")
            .header("User-Agent", "nextcloud-mcp-server")
            .send()
            .await
            .expect("login/v2 answers");
        let (status, body) = read(resp).await;
        assert_eq!(status, 200, "{body}");
        Flow {
            poll_token: body["poll"]["token"]
                .as_str()
                .expect("poll token")
                .to_owned(),
            poll_endpoint: body["poll"]["endpoint"]
                .as_str()
                .expect("endpoint")
                .to_owned(),
            login: body["login"].as_str().expect("login").to_owned(),
        }
    }

    pub(super) async fn poll(&self, token: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/index.php/login/v2/poll"))
            .header("OCS-APIRequest", "true")
            .form(&[("token", token)])
            .send()
            .await
            .expect("poll answers");
        read(resp).await
    }
}

pub(super) struct Flow {
    pub(super) poll_token: String,
    pub(super) poll_endpoint: String,
    pub(super) login: String,
}

/// Credentials of a test request.
pub(super) enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl Auth {
    /// The headers, with `OCS-APIRequest: true` when `ocs_header`.
    pub(super) fn headers(&self, ocs_header: bool) -> HeaderMap {
        use base64::Engine;
        let mut headers = HeaderMap::new();
        if ocs_header {
            headers.insert("OCS-APIRequest", HeaderValue::from_static("true"));
        }
        let value = match self {
            Auth::None => return headers,
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic(user, password) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        };
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&value).expect("a header value"),
        );
        headers
    }
}

/// Status and JSON body (`null` when the body is not JSON).
pub(super) async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The OCS answer of a request that logged no one in.
pub(super) fn assert_not_logged_in((status, body): &(u16, Value)) {
    assert_eq!(*status, 401, "{body}");
    assert_eq!(
        body["ocs"],
        json!({"meta": {"status": "failure", "statuscode": 997, "message": "Current user is not logged in"}, "data": []}),
    );
}
