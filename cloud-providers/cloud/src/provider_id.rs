//! Provider IDs: the `spec.providerID` of a Node, naming the instance behind it.
//!
//! The formats are the ones Kubernetes' own cloud providers write, so tools that read them keep
//! working: `aws:///<zone>/<instance-id>` and `gce://<project>/<zone>/<name>`. The fake provider
//! uses `fake:///<zone>/<name>`.

use std::fmt;
use std::str::FromStr;

/// The cloud-side identity of one instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderId {
    /// An EC2 instance.
    Aws {
        /// The availability zone, such as `us-east-1a`.
        zone: String,
        /// The instance ID, such as `i-0123456789abcdef0`.
        instance_id: String,
    },
    /// A Compute Engine instance.
    Gce {
        /// The project ID.
        project: String,
        /// The zone, such as `europe-west1-b`.
        zone: String,
        /// The instance name.
        name: String,
    },
    /// An instance of the in-memory fake cloud.
    Fake {
        /// The zone.
        zone: String,
        /// The instance name.
        name: String,
    },
}

/// A provider ID string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid provider ID {input:?}: {reason}")]
pub struct ParseProviderIdError {
    /// The rejected string.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ProviderId {
    /// The zone the instance runs in.
    pub fn zone(&self) -> &str {
        match self {
            ProviderId::Aws { zone, .. }
            | ProviderId::Gce { zone, .. }
            | ProviderId::Fake { zone, .. } => zone,
        }
    }

    /// The cloud's own identifier of the instance: the EC2 instance ID or the instance name.
    pub fn instance_id(&self) -> &str {
        match self {
            ProviderId::Aws { instance_id, .. } => instance_id,
            ProviderId::Gce { name, .. } | ProviderId::Fake { name, .. } => name,
        }
    }

    /// The scheme, which names the provider: `aws`, `gce` or `fake`.
    pub fn scheme(&self) -> &'static str {
        match self {
            ProviderId::Aws { .. } => "aws",
            ProviderId::Gce { .. } => "gce",
            ProviderId::Fake { .. } => "fake",
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderId::Aws { zone, instance_id } => write!(f, "aws:///{zone}/{instance_id}"),
            ProviderId::Gce {
                project,
                zone,
                name,
            } => write!(f, "gce://{project}/{zone}/{name}"),
            ProviderId::Fake { zone, name } => write!(f, "fake:///{zone}/{name}"),
        }
    }
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b':')
}

impl FromStr for ProviderId {
    type Err = ParseProviderIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseProviderIdError {
            input: input.to_owned(),
            reason,
        };
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| err("missing scheme"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        match scheme {
            "aws" | "fake" => {
                let [host, zone, id] = parts[..] else {
                    return Err(err("expected <scheme>:///<zone>/<instance>"));
                };
                if !host.is_empty() {
                    return Err(err(
                        "expected an empty host, as in aws:///<zone>/<instance-id>",
                    ));
                }
                if !segment_ok(zone) || !segment_ok(id) {
                    return Err(err(
                        "zone and instance must be non-empty and contain no special characters",
                    ));
                }
                if scheme == "aws" {
                    if !id.starts_with("i-") {
                        return Err(err("an EC2 instance ID starts with i-"));
                    }
                    Ok(ProviderId::Aws {
                        zone: zone.to_owned(),
                        instance_id: id.to_owned(),
                    })
                } else {
                    Ok(ProviderId::Fake {
                        zone: zone.to_owned(),
                        name: id.to_owned(),
                    })
                }
            }
            "gce" => {
                let [project, zone, name] = parts[..] else {
                    return Err(err("expected gce://<project>/<zone>/<name>"));
                };
                if !segment_ok(project) || !segment_ok(zone) || !segment_ok(name) {
                    return Err(err(
                        "project, zone and name must be non-empty and contain no special characters",
                    ));
                }
                Ok(ProviderId::Gce {
                    project: project.to_owned(),
                    zone: zone.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(err("unknown scheme (expected aws, gce or fake)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let cases = [
            (
                "aws:///us-east-1a/i-0123456789abcdef0",
                "us-east-1a",
                "i-0123456789abcdef0",
            ),
            (
                "gce://my-project/europe-west1-b/node-1",
                "europe-west1-b",
                "node-1",
            ),
            (
                "gce://example.com:proj/us-central1-a/n",
                "us-central1-a",
                "n",
            ),
            ("fake:///zone-a/web-1", "zone-a", "web-1"),
        ];
        for (s, zone, id) in cases {
            let p: ProviderId = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(p.to_string(), s);
            assert_eq!(p.zone(), zone, "{s}");
            assert_eq!(p.instance_id(), id, "{s}");
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        let cases = [
            ("", "missing scheme"),
            ("i-0123", "missing scheme"),
            (
                "azure:///z/i-1",
                "unknown scheme (expected aws, gce or fake)",
            ),
            (
                "aws://us-east-1a/i-1",
                "expected <scheme>:///<zone>/<instance>",
            ),
            (
                "aws://host/us-east-1a/i-1",
                "expected an empty host, as in aws:///<zone>/<instance-id>",
            ),
            (
                "aws:///us-east-1a/vol-1",
                "an EC2 instance ID starts with i-",
            ),
            (
                "aws:////i-1",
                "zone and instance must be non-empty and contain no special characters",
            ),
            (
                "aws:///us-east-1a/i-1/extra",
                "expected <scheme>:///<zone>/<instance>",
            ),
            ("gce://p/z", "expected gce://<project>/<zone>/<name>"),
            (
                "gce://p//n",
                "project, zone and name must be non-empty and contain no special characters",
            ),
            (
                "gce://p/z/n?x",
                "project, zone and name must be non-empty and contain no special characters",
            ),
        ];
        for (s, reason) in cases {
            let e = s.parse::<ProviderId>().expect_err(s);
            assert_eq!(e.reason, reason, "{s}");
        }
    }
}
