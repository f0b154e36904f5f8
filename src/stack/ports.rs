//! Ephemeral loopback ports.

use anyhow::Context;

/// A port that was free on 127.0.0.1 a moment ago. The listener is closed before the
/// port is handed to a child, so another process could take it in between; a component
/// that then fails to bind says so in its log, which the readiness error shows.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("binding an ephemeral port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
