//! `images build`: the local images the containers backend can run instead of the
//! official ones (see `images/` and [`crate::stack::containers::build`]).

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::{DEFAULT_KEYCLOAK_VERSION, DEFAULT_MCP_SERVER_VERSION, version_arg};
use crate::progress::Progress;
use crate::stack::containers::build::{self, NAMESPACE, Request};

/// `images`' subcommands.
#[derive(Subcommand)]
pub enum ImagesCommand {
    /// Build mcp-authz-harness/debian:bookworm (debootstrap, as root), Keycloak, the MCP
    /// server and the Nextcloud stand-in from the recipes in images/, reusing what the
    /// engine already holds.
    Build(BuildArgs),
}

/// `images build`'s flags.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// A Keycloak version to build (repeat for several; default: the harness's default).
    #[arg(long = "keycloak-version", value_name = "V", value_parser = version_arg)]
    pub keycloak_versions: Vec<String>,
    /// An MCP server release to build (repeat for several; default: the harness's default).
    #[arg(long = "mcp-server-version", value_name = "V", value_parser = version_arg)]
    pub mcp_server_versions: Vec<String>,
    /// Build even the images the engine already holds (the base included).
    #[arg(long)]
    pub rebuild: bool,
    /// The directory holding the recipes.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_IMAGES_RECIPES", value_name = "DIR",
          default_value_os_t = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("images"))]
    pub recipes: PathBuf,
    /// Repository namespace of the images, for trial builds next to the real ones.
    #[arg(long, hide = true, env = "MCP_AUTHZ_HARNESS_IMAGES_NAMESPACE", default_value = NAMESPACE, value_parser = namespace_arg)]
    pub namespace: String,
}

/// A repository namespace: lowercase letters, digits, `.`, `_`, `-` and `/`.
fn namespace_arg(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && !s.starts_with(['/', '.', '-', '_'])
        && !s.ends_with('/');
    match ok {
        true => Ok(s.to_owned()),
        false => Err(format!(
            "{s:?}: give a repository namespace like {NAMESPACE}"
        )),
    }
}

/// The request `args` make, with the harness's default versions where none is given.
pub fn request(args: BuildArgs) -> Request {
    let or_default = |v: Vec<String>, default: &str| {
        if v.is_empty() {
            vec![default.to_owned()]
        } else {
            v
        }
    };
    Request {
        keycloak_versions: or_default(args.keycloak_versions, DEFAULT_KEYCLOAK_VERSION),
        mcp_server_versions: or_default(args.mcp_server_versions, DEFAULT_MCP_SERVER_VERSION),
        rebuild: args.rebuild,
        recipes: args.recipes,
        namespace: args.namespace,
    }
}

pub async fn images(command: ImagesCommand) -> u8 {
    match command {
        ImagesCommand::Build(args) => build(args).await,
    }
}

async fn build(args: BuildArgs) -> u8 {
    let req = request(args);
    let progress = Progress::new();
    let started = std::time::Instant::now();
    let result = build::build(&req, &progress).await;
    progress.finish();
    match result {
        Ok(_) => {
            println!(
                "images ready in {:.0}s; to run with them: {}",
                started.elapsed().as_secs_f64(),
                build::run_flags(&req.namespace)
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use rstest::rstest;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ImagesCommand,
    }

    fn parse(args: &[&str]) -> Request {
        let cli =
            Cli::try_parse_from(std::iter::once("images").chain(args.iter().copied())).unwrap();
        let ImagesCommand::Build(args) = cli.command;
        request(args)
    }

    #[test]
    fn without_versions_the_harness_defaults_are_built() {
        let req = parse(&["build"]);
        assert_eq!(req.keycloak_versions, [DEFAULT_KEYCLOAK_VERSION]);
        assert_eq!(req.mcp_server_versions, [DEFAULT_MCP_SERVER_VERSION]);
        assert!(!req.rebuild);
        assert!(req.recipes.ends_with("images"));
    }

    #[test]
    fn versions_repeat() {
        let req = parse(&[
            "build",
            "--keycloak-version",
            "26.7.3",
            "--keycloak-version",
            "26.4.7",
            "--mcp-server-version",
            "0.147.2",
            "--rebuild",
        ]);
        assert_eq!(req.keycloak_versions, ["26.7.3", "26.4.7"]);
        assert_eq!(req.mcp_server_versions, ["0.147.2"]);
        assert!(req.rebuild);
    }

    #[rstest]
    #[case("mcp-authz-harness", true)]
    #[case("mcp-authz-harness-test/x", true)]
    #[case("Upper", false)]
    #[case("/abs", false)]
    #[case("a b", false)]
    #[case("", false)]
    fn namespaces(#[case] ns: &str, #[case] ok: bool) {
        assert_eq!(namespace_arg(ns).is_ok(), ok, "{ns}");
    }

    #[test]
    fn a_version_that_is_not_a_release_is_refused() {
        assert!(Cli::try_parse_from(["images", "build", "--keycloak-version", "../x"]).is_err());
    }
}
