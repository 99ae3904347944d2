//! Where a webhook may be sent. Trust boundary: the URL is a creator's input, and the origin
//! will call it from inside its network, so an endpoint must not reach anything the public
//! cannot (no SSRF through webhooks). Checked when it is registered and again before every
//! attempt:
//! - `https` only, no user name or password, no fragment, at most [`MAX_URL`] bytes;
//! - an address literal must be a public unicast address ([`is_public`]); a name must not be
//!   `localhost` or under it;
//! - a name is resolved by [`PublicResolver`] at each attempt, and every address it resolves
//!   to must be public (no DNS rebinding to a private address after registration); the client
//!   connects only to the addresses it checked, uses no proxy and follows no redirect.
//!
//! `webhooks.allow_private` (a development setting, off by default) lifts the address rules
//! and allows `http`, so a local stack can deliver to a receiver on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Longest endpoint URL.
pub const MAX_URL: usize = 2048;

/// Why a URL is refused (the message of a 400).
pub fn check(url: &str, allow_private: bool) -> Result<Url, &'static str> {
    if url.len() > MAX_URL {
        return Err("the URL is longer than 2048 bytes");
    }
    let parsed = Url::parse(url).map_err(|_| "not a URL")?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("the URL must be https"),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not hold a user name or password");
    }
    if parsed.fragment().is_some() {
        return Err("the URL must not have a fragment");
    }
    let host = parsed.host();
    if allow_private {
        return match host {
            Some(_) => Ok(parsed.clone()),
            None => Err("the URL has no host"),
        };
    }
    match host {
        Some(Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => Err(PRIVATE),
        Some(Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => Err(PRIVATE),
        Some(Host::Domain(name)) if is_local_name(name) => Err(PRIVATE),
        Some(_) => Ok(parsed.clone()),
        None => Err("the URL has no host"),
    }
}

pub(super) const PRIVATE: &str =
    "the URL must name a public host, not a loopback, private or reserved address";

/// `localhost` and the names under it, which resolvers answer with loopback addresses.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `ip` is a public unicast address: not unspecified, loopback, private, shared (CGNAT),
/// link-local, documentation, benchmarking, multicast or reserved, and, for IPv6, not an
/// IPv4-mapped, NAT64 or 6to4 address of one that is not.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata services
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s[0] {
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48): the IPv4 address it reaches.
        0x0064 if s[1] == 0xff9b => is_public_v4(embedded(s[6], s[7])) && s[2..6] == [0; 4],
        // 6to4: the IPv4 address of the relay it goes through.
        0x2002 => is_public_v4(embedded(s[1], s[2])),
        // IETF protocol assignments (Teredo, benchmarking, ORCHID) and documentation.
        0x2001 if s[1] < 0x0200 || s[1] == 0x0db8 => false,
        0x3fff if s[1] < 0x1000 => false,
        // Global unicast is 2000::/3; everything else (unspecified, loopback, IPv4-compatible,
        // unique local fc00::/7, link-local fe80::/10, site-local, multicast ff00::/8, the
        // discard prefix 100::/64) is not public.
        first => (0x2000..0x4000).contains(&first),
    }
}

/// A resolver for [`reqwest`] that answers only with public addresses: a name that resolves
/// to none is an error, so the request is never sent.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(PRIVATE.into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "2002:c0a8:0101::1",  // 6to4 through 192.168.1.1
            "2001:db8::1",
            "2001::1",    // Teredo
            "2001:2::1",  // benchmarking
            "2001:10::1", // ORCHID
            "3fff::1",    // documentation (2024)
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public(ip), "{private} taken for public");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "2606:4700::1111",
            "2a00:1450::1",
            "2001:200::1",
            "3fff:1000::1",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public(ip), "{public} taken for private");
        }
    }

    /// What a name resolves to is judged too: `localhost` (in `/etc/hosts`, no DNS needed)
    /// resolves only to loopback, so the resolver gives the client no address at all.
    #[tokio::test]
    async fn the_resolver_gives_no_private_address() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = PublicResolver.resolve(name).await.err().expect("an error");
        assert_eq!(refused.to_string(), PRIVATE);
    }

    #[test]
    fn endpoint_urls_are_https_to_a_public_host() {
        for ok in [
            "https://hooks.example.com/edge-video",
            "https://hooks.example.com:8443/in?source=edge",
            "https://8.8.8.8/hook",
            "https://[2606:4700::1111]/hook",
        ] {
            assert!(check(ok, false).is_ok(), "{ok} refused");
        }
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "hooks.example.com/x",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://127.0.0.1/",
            "https://0x7f000001/", // the URL parser reads it as 127.0.0.1
            "https://2130706433/",
            "https://[::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
        ] {
            assert!(check(bad, false).is_err(), "{bad} accepted");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL));
        assert!(check(&long, false).is_err());
        assert!(check("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check("https://user@127.0.0.1/", true).is_err());
    }
}
