//! What a playback token may be bound to besides its path and time: the viewer's network and
//! country. A token copied to another network or country then fails, which is what keeps a
//! leaked URL from being shared widely.
//!
//! The network is stored in the token as a canonical `address/prefix` string, so the verifier
//! needs no setting: it recomputes the viewer's network with the token's own prefix length.

use std::net::IpAddr;
use std::str::FromStr;

use crate::ids::CountryCode;

/// How strictly tokens are bound to the viewer's address (per deployment, or per video).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpBinding {
    /// Not bound.
    #[default]
    Off,
    /// The exact address (IPv4 /32, IPv6 /128).
    Exact,
    /// The viewer's network: IPv4 /24, IPv6 /64. Survives address changes inside a home or
    /// carrier network, which exact binding does not.
    Subnet,
}

impl FromStr for IpBinding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "off" => Ok(Self::Off),
            "exact" => Ok(Self::Exact),
            "subnet" => Ok(Self::Subnet),
            other => Err(format!("{other:?}: expected off, exact or subnet")),
        }
    }
}

/// What new tokens for a video are bound to: the deployment's setting, or the video's own
/// (`VideoRecord::binding`), which wins when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BindingPolicy {
    /// Address binding.
    pub ip: IpBinding,
    /// Country binding.
    pub country: bool,
}

/// What a token is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// The viewer's network, `address/prefix`.
    pub network: Option<String>,
    /// The viewer's country.
    pub country: Option<CountryCode>,
}

/// The requesting viewer, as the edge runtime reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Viewer<'a> {
    /// Client address.
    pub ip: Option<&'a str>,
    /// Country.
    pub country: Option<CountryCode>,
}

fn parse_ip(ip: &str) -> Option<IpAddr> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

fn network(ip: IpAddr, prefix: u8) -> Option<String> {
    match ip {
        IpAddr::V4(v4) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            Some(format!("{net}/{prefix}"))
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            Some(format!("{net}/{prefix}"))
        }
        _ => None,
    }
}

/// The network to bind a token to, for a viewer at `ip`. `None` when binding is off or the
/// address is unknown (an unbound token is then issued; see the edge's playback route).
pub fn network_for(ip: Option<&str>, mode: IpBinding) -> Option<String> {
    let ip = parse_ip(ip?)?;
    let prefix = match (mode, ip) {
        (IpBinding::Off, _) => return None,
        (IpBinding::Exact, IpAddr::V4(_)) => 32,
        (IpBinding::Exact, IpAddr::V6(_)) => 128,
        (IpBinding::Subnet, IpAddr::V4(_)) => 24,
        (IpBinding::Subnet, IpAddr::V6(_)) => 64,
    };
    network(ip, prefix)
}

/// Whether a viewer at `ip` is inside the bound `net`.
pub(crate) fn in_network(net: &str, ip: Option<&str>) -> bool {
    let Some((_, prefix)) = net.rsplit_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match ip.and_then(parse_ip) {
        Some(ip) => network(ip, prefix).as_deref() == Some(net),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_by_mode() {
        let v4 = Some("203.0.113.77");
        assert_eq!(network_for(v4, IpBinding::Off), None);
        assert_eq!(
            network_for(v4, IpBinding::Exact).unwrap(),
            "203.0.113.77/32"
        );
        assert_eq!(
            network_for(v4, IpBinding::Subnet).unwrap(),
            "203.0.113.0/24"
        );
        let v6 = Some("2001:db8:1:2:a:b:c:d");
        assert_eq!(
            network_for(v6, IpBinding::Subnet).unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            network_for(v6, IpBinding::Exact).unwrap(),
            "2001:db8:1:2:a:b:c:d/128"
        );
        assert_eq!(
            network_for(Some("::ffff:203.0.113.77"), IpBinding::Subnet).unwrap(),
            "203.0.113.0/24"
        );
        assert_eq!(network_for(None, IpBinding::Exact), None);
        assert_eq!(network_for(Some("garbage"), IpBinding::Exact), None);
    }

    #[test]
    fn membership() {
        assert!(in_network("203.0.113.0/24", Some("203.0.113.200")));
        assert!(!in_network("203.0.113.0/24", Some("203.0.114.1")));
        assert!(in_network("203.0.113.77/32", Some("203.0.113.77")));
        assert!(!in_network("203.0.113.77/32", Some("203.0.113.78")));
        assert!(in_network(
            "2001:db8:1:2::/64",
            Some("2001:db8:1:2:ffff::1")
        ));
        assert!(!in_network("2001:db8:1:2::/64", Some("2001:db8:1:3::1")));
        assert!(!in_network("2001:db8:1:2::/64", Some("203.0.113.1")));
        assert!(!in_network("203.0.113.0/24", None));
        assert!(!in_network("nonsense", Some("203.0.113.1")));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("subnet".parse::<IpBinding>(), Ok(IpBinding::Subnet));
        assert_eq!("".parse::<IpBinding>(), Ok(IpBinding::Off));
        assert!("strict".parse::<IpBinding>().is_err());
    }
}
