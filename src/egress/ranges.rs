//! Which IP addresses are not public unicast, after the IANA special-purpose address
//! registries (RFC 6890 and its updates). Pure: classifies addresses, never connects.
//!
//! Private ranges (RFC 1918, IPv6 unique local) are refused along with loopback and
//! link-local: the pod and service networks of most clusters live there, and so do the
//! gateways and databases next to them. DLI's public endpoints are public addresses; a private
//! gateway or VPC endpoint in front of DLI is the case `--allow-private-endpoints` exists for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not one the operator may reach for a request's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialRange {
    Unspecified,
    /// `0.0.0.0/8`: Linux connects these to the host itself.
    ThisNetwork,
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`: where cloud metadata services answer.
    LinkLocal,
    /// RFC 1918, IPv6 unique local (`fc00::/7`) and the deprecated site-local `fec0::/10`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT; some clouds serve metadata from it.
    SharedAddressSpace,
    Multicast,
    /// `192.0.0.0/24` and `2001::/23`: protocol assignments, Teredo among them.
    ProtocolAssignments,
    Documentation,
    Benchmarking,
    /// Reserved, deprecated or not globally routed: `240.0.0.0/4` (with the broadcast address),
    /// 6to4, the discard prefix, IPv6 outside `2000::/3`.
    Reserved,
}

impl std::fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpecialRange::Unspecified => "the unspecified address",
            SpecialRange::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            SpecialRange::Loopback => "a loopback address",
            SpecialRange::LinkLocal => {
                "a link-local address (where cloud metadata services answer)"
            }
            SpecialRange::Private => "a private address",
            SpecialRange::SharedAddressSpace => "a shared address (100.64.0.0/10)",
            SpecialRange::Multicast => "a multicast address",
            SpecialRange::ProtocolAssignments => "an IETF protocol address",
            SpecialRange::Documentation => "a documentation address",
            SpecialRange::Benchmarking => "a benchmarking address",
            SpecialRange::Reserved => "a reserved address",
        })
    }
}

/// IPv4 ranges that are not public unicast, as (network, prefix length, range).
const IPV4: &[(Ipv4Addr, u32, SpecialRange)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 32, SpecialRange::Unspecified),
    (Ipv4Addr::new(0, 0, 0, 0), 8, SpecialRange::ThisNetwork),
    (Ipv4Addr::new(10, 0, 0, 0), 8, SpecialRange::Private),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        SpecialRange::SharedAddressSpace,
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, SpecialRange::Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, SpecialRange::LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, SpecialRange::Private),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        SpecialRange::ProtocolAssignments,
    ),
    (Ipv4Addr::new(192, 0, 2, 0), 24, SpecialRange::Documentation),
    (Ipv4Addr::new(192, 88, 99, 0), 24, SpecialRange::Reserved),
    (Ipv4Addr::new(192, 168, 0, 0), 16, SpecialRange::Private),
    (Ipv4Addr::new(198, 18, 0, 0), 15, SpecialRange::Benchmarking),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        SpecialRange::Documentation,
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        SpecialRange::Documentation,
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, SpecialRange::Multicast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, SpecialRange::Reserved),
];

/// Special ranges inside the global unicast block `2000::/3`; everything outside that block
/// is refused as well (loopback, link-local and the like are named before it).
const IPV6_IN_GLOBAL_UNICAST: &[(Ipv6Addr, u32, SpecialRange)] = &[
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        SpecialRange::Documentation,
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        SpecialRange::ProtocolAssignments,
    ),
    (
        Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        16,
        SpecialRange::Reserved,
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        SpecialRange::Documentation,
    ),
];

/// Named IPv6 ranges outside `2000::/3`, for a precise message.
const IPV6_OUTSIDE: &[(Ipv6Addr, u32, SpecialRange)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, SpecialRange::Unspecified),
    (Ipv6Addr::LOCALHOST, 128, SpecialRange::Loopback),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        SpecialRange::LinkLocal,
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        SpecialRange::Private,
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        SpecialRange::Private,
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        SpecialRange::Multicast,
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        SpecialRange::Private,
    ),
];

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`, how dual-stack
/// sockets write IPv4 peers) and NAT64 (`64:ff9b::a.b.c.d`, translated by a gateway).
fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    const NAT64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    in_prefix_v6(address, NAT64, 96).then(|| {
        let [.., a, b, c, d] = address.octets();
        Ipv4Addr::new(a, b, c, d)
    })
}

fn in_prefix_v4(address: Ipv4Addr, network: Ipv4Addr, prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    address.to_bits() & mask == network.to_bits() & mask
}

fn in_prefix_v6(address: Ipv6Addr, network: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    address.to_bits() & mask == network.to_bits() & mask
}

fn special_v4(address: Ipv4Addr) -> Option<SpecialRange> {
    IPV4.iter()
        .find(|(network, prefix, _)| in_prefix_v4(address, *network, *prefix))
        .map(|(_, _, range)| *range)
}

fn special_v6(address: Ipv6Addr) -> Option<SpecialRange> {
    if let Some(ipv4) = embedded_ipv4(address) {
        return special_v4(ipv4);
    }
    let named = |table: &[(Ipv6Addr, u32, SpecialRange)]| {
        table
            .iter()
            .find(|(network, prefix, _)| in_prefix_v6(address, *network, *prefix))
            .map(|(_, _, range)| *range)
    };
    const GLOBAL_UNICAST: Ipv6Addr = Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0);
    if in_prefix_v6(address, GLOBAL_UNICAST, 3) {
        named(IPV6_IN_GLOBAL_UNICAST)
    } else {
        named(IPV6_OUTSIDE).or(Some(SpecialRange::Reserved))
    }
}

/// The special range `address` lies in, or `None` for a public unicast address.
pub fn special_range(address: IpAddr) -> Option<SpecialRange> {
    match address {
        IpAddr::V4(address) => special_v4(address),
        IpAddr::V6(address) => special_v6(address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_of(text: &str) -> Option<SpecialRange> {
        special_range(text.parse().expect("an IP address"))
    }

    #[test]
    fn the_addresses_an_endpoint_could_abuse_are_special() {
        let cases = [
            ("127.0.0.1", SpecialRange::Loopback),
            ("127.255.255.254", SpecialRange::Loopback),
            ("::1", SpecialRange::Loopback),
            ("0.0.0.0", SpecialRange::Unspecified),
            ("::", SpecialRange::Unspecified),
            ("0.1.2.3", SpecialRange::ThisNetwork),
            // Cloud metadata: Huawei Cloud, OTC, AWS, GCP, Azure; AWS over IPv6; Alibaba.
            ("169.254.169.254", SpecialRange::LinkLocal),
            ("fd00:ec2::254", SpecialRange::Private),
            ("100.100.100.200", SpecialRange::SharedAddressSpace),
            ("fe80::1", SpecialRange::LinkLocal),
            ("10.96.0.1", SpecialRange::Private),
            ("172.16.0.1", SpecialRange::Private),
            ("172.31.255.255", SpecialRange::Private),
            ("192.168.1.1", SpecialRange::Private),
            ("fec0::1", SpecialRange::Private),
            ("224.0.0.1", SpecialRange::Multicast),
            ("ff02::1", SpecialRange::Multicast),
            ("255.255.255.255", SpecialRange::Reserved),
            ("240.0.0.1", SpecialRange::Reserved),
            ("192.0.0.8", SpecialRange::ProtocolAssignments),
            ("2001::1", SpecialRange::ProtocolAssignments),
            ("192.0.2.1", SpecialRange::Documentation),
            ("198.51.100.7", SpecialRange::Documentation),
            ("203.0.113.9", SpecialRange::Documentation),
            ("2001:db8::1", SpecialRange::Documentation),
            ("3fff::1", SpecialRange::Documentation),
            ("198.18.0.1", SpecialRange::Benchmarking),
            ("198.19.255.255", SpecialRange::Benchmarking),
            ("2002:7f00:1::", SpecialRange::Reserved),
            ("100::1", SpecialRange::Reserved),
            ("::7f00:1", SpecialRange::Reserved),
            ("64:ff9b:1::a00:1", SpecialRange::Private),
        ];
        for (address, expected) in cases {
            assert_eq!(range_of(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn ipv4_written_as_ipv6_is_judged_as_the_ipv4_it_reaches() {
        assert_eq!(range_of("::ffff:127.0.0.1"), Some(SpecialRange::Loopback));
        assert_eq!(
            range_of("::ffff:169.254.169.254"),
            Some(SpecialRange::LinkLocal)
        );
        assert_eq!(range_of("64:ff9b::10.0.0.1"), Some(SpecialRange::Private));
        assert_eq!(range_of("::ffff:80.158.1.1"), None);
        assert_eq!(range_of("64:ff9b::80.158.1.1"), None);
    }

    #[test]
    fn public_unicast_passes() {
        for address in [
            "80.158.1.1",
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2a01:4f8::1",
            "2600::1",
            "2001:200::1",
        ] {
            assert_eq!(range_of(address), None, "{address}");
        }
    }

    #[test]
    fn prefixes_of_every_length_match_only_their_network() {
        let host = Ipv4Addr::new(10, 1, 2, 3);
        assert!(in_prefix_v4(host, Ipv4Addr::new(10, 1, 2, 3), 32));
        assert!(!in_prefix_v4(host, Ipv4Addr::new(10, 1, 2, 4), 32));
        assert!(in_prefix_v4(host, Ipv4Addr::new(200, 0, 0, 0), 0));
        let v6 = Ipv6Addr::LOCALHOST;
        assert!(in_prefix_v6(v6, Ipv6Addr::LOCALHOST, 128));
        assert!(in_prefix_v6(v6, Ipv6Addr::UNSPECIFIED, 0));
        assert!(!in_prefix_v6(v6, Ipv6Addr::UNSPECIFIED, 128));
    }
}
