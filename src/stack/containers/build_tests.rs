//! Unit tests of `build`: argument building, tags and cache decisions.
use rstest::rstest;

use super::*;

fn request(keycloak: &[&str], mcp: &[&str]) -> Request {
    Request {
        keycloak_versions: keycloak.iter().map(|s| s.to_string()).collect(),
        mcp_server_versions: mcp.iter().map(|s| s.to_string()).collect(),
        rebuild: false,
        recipes: PathBuf::from("images"),
        namespace: NAMESPACE.to_owned(),
    }
}

#[test]
fn targets_are_the_base_first_then_each_version_once() {
    let got: Vec<String> = targets(
        &request(&["26.7.3", "26.4.7", "26.7.3"], &["0.202.1"]),
        true,
    )
    .into_iter()
    .map(|t| t.reference)
    .collect();
    assert_eq!(
        got,
        [
            crate::stack::containers::images::LOCAL_BASE.to_owned(),
            "mcp-authz-harness/keycloak:26.7.3".to_owned(),
            "mcp-authz-harness/keycloak:26.4.7".to_owned(),
            "mcp-authz-harness/nextcloud-mcp-server:0.202.1".to_owned(),
            format!(
                "mcp-authz-harness/nextcloud-stand-in:{}",
                env!("CARGO_PKG_VERSION")
            ),
        ]
    );
}

#[test]
fn the_local_names_are_the_ones_the_backend_knows() {
    use crate::stack::containers::images::{
        KEYCLOAK_LOCAL, LOCAL_BASE, MCP_SERVER_LOCAL, STAND_IN_LOCAL,
    };
    let t = targets(&request(&["1"], &["2"]), true);
    assert_eq!(t[0].reference, LOCAL_BASE);
    assert_eq!(t[1].reference, format!("{KEYCLOAK_LOCAL}:1"));
    assert_eq!(t[2].reference, format!("{MCP_SERVER_LOCAL}:2"));
    assert!(t[3].reference.starts_with(&format!("{STAND_IN_LOCAL}:")));
}

#[test]
fn without_its_recipe_the_stand_in_is_not_a_target() {
    assert!(
        targets(&request(&["1"], &["2"]), false)
            .iter()
            .all(|t| t.kind != Kind::StandIn)
    );
}

#[rstest]
#[case::present_is_reused(Some("sha256:ab"), false, false, Action::Reuse("sha256:ab".into()))]
#[case::missing_is_built(None, false, false, Action::Build)]
#[case::rebuild_builds(Some("sha256:ab"), true, false, Action::Build)]
#[case::a_new_base_rebuilds(Some("sha256:ab"), false, true, Action::Build)]
fn reuse_or_build(
    #[case] present: Option<&str>,
    #[case] rebuild: bool,
    #[case] base_built: bool,
    #[case] expected: Action,
) {
    assert_eq!(
        decide(present.map(str::to_owned), rebuild, base_built),
        expected
    );
}

#[rstest]
#[case("sha256:4931fff6f2c3aaaaaaaa", "4931fff6f2c3")]
#[case("4931fff6f2c3aaaaaaaa", "4931fff6f2c3")]
#[case("sha256:abc", "abc")]
fn ids_are_shown_short(#[case] id: &str, #[case] short: &str) {
    assert_eq!(short_id(id), short);
}

#[test]
fn the_mirror_comes_from_deb822_sources() {
    let debian = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                      URIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n\
                      Suites: bookworm-security\nComponents: main\n";
    let node = "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n";
    let google = "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n";
    let got = apt_mirrors(&[String::new(), google.into(), debian.into(), node.into()]);
    assert_eq!(
        got,
        (
            "http://deb.debian.org/debian".to_owned(),
            "http://deb.debian.org/debian-security".to_owned()
        )
    );
}

#[test]
fn the_mirror_comes_from_one_line_sources() {
    let list = "# deb http://old/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian/ bookworm main\n\
                    deb http://security.debian.org/debian-security bookworm-security main\n";
    assert_eq!(
        apt_mirrors(&[list.into()]),
        (
            "http://ftp.de.debian.org/debian".to_owned(),
            "http://security.debian.org/debian-security".to_owned()
        )
    );
}

#[test]
fn without_a_bookworm_source_debians_own_mirrors_are_used() {
    assert_eq!(
        apt_mirrors(&["deb http://x/ubuntu jammy main\n".into()]),
        (
            DEFAULT_MIRROR.to_owned(),
            DEFAULT_SECURITY_MIRROR.to_owned()
        )
    );
}

#[test]
fn the_base_is_a_minbase_bookworm_imported_with_debians_configuration() {
    assert_eq!(
        debootstrap_args(Path::new("/w/rootfs"), "http://m/debian"),
        [
            "--variant=minbase",
            "--components=main",
            "bookworm",
            "/w/rootfs",
            "http://m/debian"
        ]
    );
    assert_eq!(
        base_sources_list("http://m/debian", "http://m/debian-security"),
        "deb http://m/debian bookworm main\ndeb http://m/debian bookworm-updates main\n\
             deb http://m/debian-security bookworm-security main\n"
    );
    let args = import_args(
        Path::new("/w/rootfs.tar"),
        "ns/debian:bookworm",
        "http://m/debian",
    );
    assert_eq!(args.first().map(String::as_str), Some("import"));
    assert_eq!(
        &args[args.len() - 2..],
        ["/w/rootfs.tar", "ns/debian:bookworm"]
    );
    assert!(args.contains(&r#"CMD ["bash"]"#.to_owned()));
    assert!(args.contains(&"ENV LANG=C.UTF-8".to_owned()));
    assert!(
        args.iter()
            .any(|a| a.starts_with("ENV PATH=/usr/local/sbin:"))
    );
    assert!(args.contains(
            &r#"LABEL org.mcp-authz-harness.base="debootstrap --variant=minbase bookworm http://m/debian""#.to_owned()
        ));
}

#[test]
fn the_base_keeps_no_package_caches_and_installs_no_recommends() {
    let [(clean, clean_text), (ours, ours_text)] = base_apt_config();
    assert_eq!(clean, "docker-clean");
    assert_eq!(clean_text.lines().count(), 4);
    assert!(clean_text.contains("rm -f /var/cache/apt/archives/*.deb"));
    assert!(clean_text.contains("Dir::Cache::pkgcache \"\";"));
    assert_eq!(ours, "90mcp-authz-harness");
    assert!(ours_text.contains("APT::Install-Recommends \"false\";"));
}

#[test]
fn builds_use_the_host_network_and_name_the_base() {
    let target = Target {
        kind: Kind::Keycloak,
        version: "26.7.3".into(),
        reference: "t/keycloak:26.7.3".into(),
    };
    let args = docker_build_args(
        &target.reference,
        Path::new("/ctx"),
        &build_args_of(&target, "t"),
        false,
    );
    assert_eq!(
        args,
        [
            "build",
            "--network",
            "host",
            "--force-rm",
            "--tag",
            "t/keycloak:26.7.3",
            "--build-arg",
            "BASE=t/debian:bookworm",
            "--build-arg",
            "KEYCLOAK_VERSION=26.7.3",
            "/ctx"
        ]
    );
    let mcp = Target {
        kind: Kind::McpServer,
        version: "0.202.1".into(),
        reference: "t/nextcloud-mcp-server:0.202.1".into(),
    };
    assert!(build_args_of(&mcp, "t").contains(&("MCP_SERVER_VERSION", "0.202.1".into())));
    let rebuild = docker_build_args("r:1", Path::new("/ctx"), &[], true);
    assert_eq!(rebuild[6], "--no-cache", "{rebuild:?}");
}

#[rstest]
#[case::file(0o644, false, 0o664)]
#[case::script(0o755, false, 0o775)]
#[case::directory(0o755, true, 0o775)]
#[case::private_dir(0o700, true, 0o770)]
fn the_distribution_is_made_group_writable(
    #[case] mode: u32,
    #[case] dir: bool,
    #[case] expected: u32,
) {
    assert_eq!(group_writable(mode, dir), expected);
}

#[test]
fn the_run_flags_name_the_local_repositories() {
    assert_eq!(
        run_flags(NAMESPACE),
        "--keycloak-image mcp-authz-harness/keycloak --mcp-server-image mcp-authz-harness/nextcloud-mcp-server"
    );
}

#[test]
fn work_directories_a_killed_build_left_are_swept_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["base-abc/rootfs/etc", "context-x1/keycloak", "logs"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(dir.path().join("images.tar"), "").unwrap();
    std::fs::write(dir.path().join("build.lock"), "").unwrap();
    sweep_stale_work(dir.path());
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["build.lock", "images.tar", "logs"]);
    assert!(!is_work_dir("images.tar"));
}

#[test]
fn a_failed_steps_log_tail_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.log");
    let text: String = (0..40).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let tail = tail_of(&log);
    assert!(tail.starts_with(", last lines:\nline 15\n"), "{tail}");
    assert!(tail.ends_with("line 39"), "{tail}");
    assert_eq!(tail_of(&dir.path().join("none")), "");
}
