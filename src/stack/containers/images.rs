//! Which images the containers backend runs: the official ones by default, each a flag and
//! an environment variable; `images build` makes local equivalents under
//! `mcp-authz-harness/`, with the same paths, entrypoints and configuration surface.

/// The official Keycloak image (tag: the Keycloak version).
pub const KEYCLOAK_OFFICIAL: &str = "quay.io/keycloak/keycloak";
/// The reference MCP server's image (tag: the release).
pub const MCP_SERVER_OFFICIAL: &str = "ghcr.io/cbcoutinho/nextcloud-mcp-server";
/// The namespace of the local equivalents `images build` makes (the names below).
pub const NAMESPACE: &str = "mcp-authz-harness";
pub const LOCAL_BASE: &str = "mcp-authz-harness/debian:bookworm";
pub const KEYCLOAK_LOCAL: &str = "mcp-authz-harness/keycloak";
pub const MCP_SERVER_LOCAL: &str = "mcp-authz-harness/nextcloud-mcp-server";
pub const STAND_IN_LOCAL: &str = "mcp-authz-harness/nextcloud-stand-in";

/// Where the Keycloak images prepared with `kc.sh build` go, one tag per base image and
/// build-option set (never under the official image's name).
pub const KEYCLOAK_BUILT: &str = "mcp-authz-harness/keycloak-built";

/// `repository:tag`: `image` as given when it names a tag, else tagged with `version`.
pub fn reference(image: &str, version: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:{version}")
    }
}

/// The image to run for `image` (a repository or a full reference) at `version`, and its
/// ID: as given when the engine holds it; the local equivalent when the official default
/// is missing and `images build` made that one (said on `progress`); else an error naming
/// both fixes. `what` names the component (`Keycloak`).
pub async fn resolve(
    engine: &super::engine::Engine,
    image: &str,
    version: &str,
    (official, local): (&str, &str),
    what: &str,
    progress: &crate::progress::Progress,
) -> anyhow::Result<(String, String)> {
    let wanted = reference(image, version);
    if let Some(id) = engine.image_id(&wanted).await? {
        return Ok((wanted, id));
    }
    let fallback = reference(local, version);
    if image == official
        && let Some(id) = engine.image_id(&fallback).await?
    {
        progress.println(&format!(
            "{wanted} is not on the engine; running the local equivalent {fallback} \
             (`images build`)"
        ));
        return Ok((fallback, id));
    }
    anyhow::bail!(
        "the {what} image {wanted} is not on the Docker engine at {}: `mcp-authz-harness \
         images build` builds a local equivalent ({fallback}), or `docker pull {wanted}` where a \
         registry is reachable",
        engine.socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_without_a_tag_is_tagged_with_the_version() {
        assert_eq!(
            reference(KEYCLOAK_OFFICIAL, "26.7.3"),
            "quay.io/keycloak/keycloak:26.7.3"
        );
        assert_eq!(reference("localhost:5000/kc", "1"), "localhost:5000/kc:1");
        assert_eq!(reference("kc:mine", "1"), "kc:mine");
    }
}
