//! Loopback ports for the components, taken below the kernel's ephemeral range.
//!
//! A port is found free and then handed to a child that binds it later (Keycloak binds its
//! management port only at the end of a boot that can last a minute). A port from the
//! ephemeral range (what binding port 0 gives) can meanwhile become the source port of any
//! outgoing connection on the machine, and the component then fails with "Address already
//! in use". Below that range only another listener can take it.

use std::net::TcpListener;
use std::ops::Range;

use anyhow::Context;

/// Where the ports are drawn when the ephemeral range starts above it.
const BELOW_EPHEMERAL: Range<u16> = 20_000..32_768;
const ATTEMPTS: usize = 64;

/// A port that was free on 127.0.0.1 a moment ago, outside the ephemeral range where the
/// kernel allows it. A component that still fails to bind says so in its log, which the
/// readiness error shows.
pub fn free_port() -> anyhow::Result<u16> {
    if let Some(range) = candidate_range(ephemeral_start()) {
        for _ in 0..ATTEMPTS {
            let port = rand::random_range(range.clone());
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).context("binding an ephemeral port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The first port of the kernel's ephemeral range (Linux; 32768 where it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Ports below the ephemeral range: [`BELOW_EPHEMERAL`] cut at its start; none when that
/// leaves fewer than 1000 (then only the ephemeral range is left).
fn candidate_range(ephemeral_start: u16) -> Option<Range<u16>> {
    let end = BELOW_EPHEMERAL.end.min(ephemeral_start);
    (end >= BELOW_EPHEMERAL.start + 1_000).then_some(BELOW_EPHEMERAL.start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stay_below_the_ephemeral_range() {
        assert_eq!(candidate_range(32_768), Some(20_000..32_768));
        assert_eq!(candidate_range(49_152), Some(20_000..32_768));
        assert_eq!(candidate_range(25_000), Some(20_000..25_000));
        assert_eq!(candidate_range(20_500), None);
    }

    #[test]
    fn a_free_port_is_bindable_and_not_ephemeral() {
        let port = free_port().unwrap();
        if candidate_range(ephemeral_start()).is_some() {
            assert!(port < ephemeral_start(), "{port}");
        }
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
