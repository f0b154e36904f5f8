fn main() -> std::process::ExitCode {
    mcp_authz_harness::cli::main()
}
