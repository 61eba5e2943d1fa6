//! Which redirects a registry request may follow, and the pinned resolution that makes the check hold.
//!
//! Registries redirect blob (and sometimes manifest) GETs to storage: S3 or GCS signed URLs, a CDN.
//! A hostile or compromised registry can use the same answer to make this service send requests
//! into the network it runs in (cloud metadata at 169.254.169.254, admin ports on loopback, other
//! services in the private ranges). So a target is followed only when every address its host
//! resolves to is public, or of the same kind as the registry's own addresses (a loopback registry
//! may redirect to loopback, one in 10.0.0.0/8 to another private address). The check resolves
//! the name itself, and the request then connects to exactly the checked addresses: the client
//! for redirected requests resolves through `PinnedResolver`, so a DNS answer that changes between
//! check and connect (rebinding) cannot slip a private address in.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use url::Url;

/// Pinned names kept at most (storage hosts are few); beyond that one is evicted per new name.
const MAX_PINNED_NAMES: usize = 1024;

/// The kind of network an address belongs to, as far as redirects are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AddressClass {
    /// Routable on the internet.
    Public,
    /// RFC 1918, shared address space (100.64/10), IPv6 unique local (fc00::/7).
    Private,
    /// 127/8, ::1.
    Loopback,
    /// 169.254/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// Unspecified, broadcast, multicast, documentation and other special ranges: never a target.
    Special,
}

impl AddressClass {
    pub(crate) fn of(address: IpAddr) -> AddressClass {
        match address {
            IpAddr::V4(address) => Self::of_v4(address),
            IpAddr::V6(address) => match address.to_ipv4_mapped() {
                Some(mapped) => Self::of_v4(mapped),
                None => Self::of_v6(address),
            },
        }
    }

    fn of_v4(address: Ipv4Addr) -> AddressClass {
        let [first, second, ..] = address.octets();
        if address.is_loopback() {
            AddressClass::Loopback
        } else if address.is_link_local() {
            AddressClass::LinkLocal
        } else if address.is_private() || (first == 100 && (64..128).contains(&second)) {
            AddressClass::Private
        } else if address.is_unspecified()
            || address.is_broadcast()
            || address.is_multicast()
            || address.is_documentation()
            || first == 0
            || first >= 240
            || (first == 192 && second == 0 && address.octets()[2] == 0)
            || (first == 198 && (18..20).contains(&second))
        {
            AddressClass::Special
        } else {
            AddressClass::Public
        }
    }

    fn of_v6(address: Ipv6Addr) -> AddressClass {
        let first = address.segments()[0];
        if address.is_loopback() {
            AddressClass::Loopback
        } else if first & 0xffc0 == 0xfe80 {
            AddressClass::LinkLocal
        } else if first & 0xfe00 == 0xfc00 {
            AddressClass::Private
        } else if address.is_unspecified()
            || address.is_multicast()
            || first == 0x2001 && matches!(address.segments()[1], 0x0000 | 0x0db8)
            || first == 0x2002
            || first == 0x0064 && address.segments()[1] == 0xff9b
            || first == 0x0100
            || first == 0
        {
            // NAT64, 6to4, Teredo and IPv4-compatible forms embed an IPv4 address that could be
            // private: treated as special rather than decoded.
            AddressClass::Special
        } else {
            AddressClass::Public
        }
    }

    fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Private => "a private address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Special => "a special-purpose address",
        }
    }
}

/// The addresses a redirect target was checked against, so the request connects to exactly those.
#[derive(Debug, Default)]
pub(crate) struct PinnedResolver {
    pins: Mutex<HashMap<String, Vec<IpAddr>>>,
}

impl PinnedResolver {
    fn pin(&self, name: &str, addresses: Vec<IpAddr>) {
        let name = name.to_ascii_lowercase();
        let mut pins = self
            .pins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pins.len() >= MAX_PINNED_NAMES && !pins.contains_key(&name) {
            // One other name makes room; a request to it in flight right now would fall back to
            // plain resolution (see `resolve`), a window needing over a thousand storage hosts.
            if let Some(evicted) = pins.keys().next().cloned() {
                pins.remove(&evicted);
            }
        }
        pins.insert(name, addresses);
    }

    fn pinned(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.pins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let pinned = self.pinned(name.as_str());
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: reqwest::dns::Addrs = match pinned {
                Some(addresses) => Box::new(
                    addresses
                        .into_iter()
                        .map(|address| SocketAddr::new(address, 0)),
                ),
                // Names never checked get here: a proxy's host from the environment (the only
                // other name this client connects to), or a pin just evicted.
                None => Box::new(
                    tokio::net::lookup_host((name.as_str(), 0))
                        .await?
                        .collect::<Vec<_>>()
                        .into_iter(),
                ),
            };
            Ok(addresses)
        })
    }
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedirectError {
    /// Never allowed (scheme, downgrade, address class): the same answer will be refused again.
    Refused(String),
    /// The target's name did not resolve now; DNS may answer on a later attempt.
    Unresolved(String),
}

/// Decides on redirect targets of one client and pins the addresses it allowed.
#[derive(Debug, Default)]
pub(crate) struct RedirectGuard {
    resolver: Arc<PinnedResolver>,
}

impl RedirectGuard {
    /// The resolver the client for redirected requests must use.
    pub(crate) fn resolver(&self) -> Arc<PinnedResolver> {
        self.resolver.clone()
    }

    /// `Ok` when a request to `registry` may follow a redirect to `target`; the error says why not
    /// (naming hosts, never paths or queries: signed URLs carry credentials there).
    pub(crate) async fn check(&self, registry: &Url, target: &Url) -> Result<(), RedirectError> {
        let target_host = target.host_str().unwrap_or_default();
        match target.scheme() {
            "https" => {}
            "http" if registry.scheme() == "http" => {}
            "http" => {
                return Err(RedirectError::Refused(format!(
                    "{target_host}: from https down to plain http"
                )))
            }
            other => {
                return Err(RedirectError::Refused(format!(
                    "{target_host}: scheme {other:?}"
                )))
            }
        }
        let target_addresses = resolve(target).await.map_err(|error| {
            RedirectError::Unresolved(format!("{target_host}: cannot resolve: {error}"))
        })?;
        let non_public_classes = target_addresses
            .iter()
            .map(|address| AddressClass::of(*address))
            .filter(|class| *class != AddressClass::Public)
            .collect::<BTreeSet<_>>();
        if !non_public_classes.is_empty() {
            // Resolved only now: most redirects go to public storage and never need it.
            let registry_classes = resolve(registry)
                .await
                .map(|addresses| {
                    addresses
                        .into_iter()
                        .map(AddressClass::of)
                        .collect::<BTreeSet<_>>()
                })
                .unwrap_or_default();
            if let Some(refused) = non_public_classes
                .iter()
                .find(|class| **class == AddressClass::Special || !registry_classes.contains(class))
            {
                return Err(RedirectError::Refused(format!(
                    "{target_host} is {}, and the registry is not",
                    refused.describe()
                )));
            }
        }
        if target
            .host()
            .is_some_and(|host| matches!(host, url::Host::Domain(_)))
        {
            self.resolver.pin(target_host, target_addresses);
        }
        Ok(())
    }
}

/// The addresses of a URL's host: the literal itself, or what the system resolver answers.
async fn resolve(url: &Url) -> std::io::Result<Vec<IpAddr>> {
    let port = url.port_or_known_default().unwrap_or(0);
    match url.host() {
        Some(url::Host::Ipv4(address)) => Ok(vec![IpAddr::V4(address)]),
        Some(url::Host::Ipv6(address)) => Ok(vec![IpAddr::V6(address)]),
        Some(url::Host::Domain(name)) => {
            let addresses: Vec<IpAddr> = tokio::net::lookup_host((name, port))
                .await?
                .map(|address| address.ip())
                .collect();
            if addresses.is_empty() {
                return Err(std::io::Error::other("no addresses"));
            }
            Ok(addresses)
        }
        None => Err(std::io::Error::other("no host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> AddressClass {
        AddressClass::of(text.parse().unwrap())
    }

    #[test]
    fn address_classes() {
        for public in ["8.8.8.8", "52.216.0.1", "2a00:1450::1", "100.128.0.1"] {
            assert_eq!(class(public), AddressClass::Public, "{public}");
        }
        for private in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert_eq!(class(private), AddressClass::Private, "{private}");
        }
        for loopback in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(class(loopback), AddressClass::Loopback, "{loopback}");
        }
        for link_local in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"] {
            assert_eq!(class(link_local), AddressClass::LinkLocal, "{link_local}");
        }
        for special in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::",
            "ff02::1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:0:a00:1::1",
            "2001:db8::1",
        ] {
            assert_eq!(class(special), AddressClass::Special, "{special}");
        }
    }

    async fn check(registry: &str, target: &str) -> Result<(), String> {
        RedirectGuard::default()
            .check(&Url::parse(registry).unwrap(), &Url::parse(target).unwrap())
            .await
            .map_err(|error| match error {
                RedirectError::Refused(reason) => reason,
                RedirectError::Unresolved(reason) => panic!("unexpected: {reason}"),
            })
    }

    #[tokio::test]
    async fn unresolvable_names_may_resolve_later() {
        // A label over 63 characters fails inside the resolver library: no DNS query leaves.
        let unresolvable = format!("http://{}.example/x", "a".repeat(64));
        let error = RedirectGuard::default()
            .check(
                &Url::parse("http://127.0.0.1:5000/").unwrap(),
                &Url::parse(&unresolvable).unwrap(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, RedirectError::Unresolved(_)), "{error:?}");
    }

    // Only literals and `localhost` (hosts file): these tests resolve but never connect.
    #[tokio::test]
    async fn private_targets_need_a_registry_of_the_same_kind() {
        let public = "https://93.184.216.34/v2/a/blobs/x";
        assert!(check(public, "https://52.216.0.1/bucket/x?sig=1")
            .await
            .is_ok());
        for target in [
            "http://10.0.0.1/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:8080/x",
            "http://localhost:8080/x",
            "http://[::1]/x",
            "http://0.0.0.0/x",
        ] {
            let public_http = "http://93.184.216.34/v2/a/blobs/x";
            let error = check(public_http, target).await.unwrap_err();
            assert!(
                error.contains("and the registry is not"),
                "{target}: {error}"
            );
            assert!(!error.contains("/x"), "no path in {error}");
        }
        let loopback = "http://127.0.0.1:5000/v2/a/blobs/x";
        assert!(check(loopback, "http://127.0.0.1:5001/x").await.is_ok());
        assert!(check(loopback, "http://localhost:5001/x").await.is_ok());
        assert!(check(loopback, "http://10.0.0.1/x").await.is_err());
        assert!(check(loopback, "http://169.254.169.254/x").await.is_err());
        let private = "http://10.1.2.3/v2/a/blobs/x";
        assert!(check(private, "http://192.168.0.9/x").await.is_ok());
        assert!(check(private, "http://127.0.0.1/x").await.is_err());
    }

    #[tokio::test]
    async fn schemes_and_downgrades() {
        assert!(check("https://93.184.216.34/", "http://52.216.0.1/x")
            .await
            .unwrap_err()
            .contains("down to plain http"));
        assert!(check("https://93.184.216.34/", "ftp://52.216.0.1/x")
            .await
            .is_err());
        assert!(check("http://93.184.216.34/", "http://52.216.0.1/x")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn checked_names_are_pinned() {
        let guard = RedirectGuard::default();
        let registry = Url::parse("http://127.0.0.1:5000/").unwrap();
        guard
            .check(&registry, &Url::parse("http://LOCALHOST:5001/x").unwrap())
            .await
            .unwrap();
        let pinned = guard.resolver.pinned("localhost").unwrap();
        assert!(pinned.iter().all(|address| address.is_loopback()));
        assert!(guard.resolver.pinned("example.org").is_none());
    }
}
