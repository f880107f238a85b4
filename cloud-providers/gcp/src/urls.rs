//! Compute resource URLs and the small encodings the provider needs.
//!
//! Compute names resources by URL (`selfLink`), always under
//! `https://www.googleapis.com/compute/v1/`, whatever endpoint the client talks to; requests accept
//! the full URL or the part from `projects/` (or a zone- or region-relative part) on.

/// The prefix of every Compute resource URL.
pub const BASE: &str = "https://www.googleapis.com/compute/v1/";

/// The full URL of an instance.
pub fn instance_url(project: &str, zone: &str, name: &str) -> String {
    format!("{BASE}projects/{project}/zones/{zone}/instances/{name}")
}

/// Project, zone and name of an instance URL (full or from `projects/` on).
pub fn parse_instance_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = &url[url.find("projects/")?..];
    let parts: Vec<&str> = rest.split('/').collect();
    match parts[..] {
        ["projects", project, "zones", zone, "instances", name]
            if !project.is_empty() && !zone.is_empty() && !name.is_empty() =>
        {
            Some((project, zone, name))
        }
        _ => None,
    }
}

/// The last path segment of a resource URL: the name of a zone, region or machine type.
pub fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The region of a zone name: `us-central1-a` is in `us-central1`.
pub fn zone_region(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}

/// The machine type of an instance insert, relative to the project.
pub fn machine_type(zone: &str, machine_type: &str) -> String {
    if machine_type.contains('/') {
        machine_type.to_owned()
    } else {
        format!("zones/{zone}/machineTypes/{machine_type}")
    }
}

/// A boot image: a URL or path is used as it is, a bare name is an image of the project.
pub fn source_image(image: &str) -> String {
    if image.contains('/') {
        image.to_owned()
    } else {
        format!("global/images/{image}")
    }
}

/// A subnetwork: a URL or path is used as it is, a bare name is a subnetwork of the region.
pub fn subnetwork(region: &str, subnet: &str) -> String {
    if subnet.contains('/') {
        subnet.to_owned()
    } else {
        format!("regions/{region}/subnetworks/{subnet}")
    }
}

/// The `portRange` of one port.
pub fn port_range(port: u16) -> String {
    format!("{port}-{port}")
}

/// The port of a single-port `portRange` (`80-80` or `80`).
pub fn parse_port_range(range: &str) -> Option<u16> {
    match range.split_once('-') {
        Some((lo, hi)) if lo == hi => lo.parse().ok(),
        Some(_) => None,
        None => range.parse().ok(),
    }
}

/// Standard base64 with padding (RFC 4648), for binary user-data in instance metadata.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_urls() {
        let url = instance_url("p-1", "us-central1-a", "node-1");
        assert_eq!(
            url,
            "https://www.googleapis.com/compute/v1/projects/p-1/zones/us-central1-a/instances/node-1"
        );
        let cases = [
            (url.as_str(), Some(("p-1", "us-central1-a", "node-1"))),
            ("projects/p/zones/z/instances/n", Some(("p", "z", "n"))),
            (
                "http://127.0.0.1:1/compute/v1/projects/p/zones/z/instances/n",
                Some(("p", "z", "n")),
            ),
            ("projects/p/zones/z/instances/", None),
            ("projects/p/regions/r/addresses/a", None),
            ("zones/z/instances/n", None),
        ];
        for (url, want) in cases {
            assert_eq!(parse_instance_url(url), want, "{url}");
        }
    }

    #[test]
    fn relative_names() {
        assert_eq!(last_segment("https://x/zones/us-east1-b"), "us-east1-b");
        assert_eq!(last_segment("e2-small"), "e2-small");
        assert_eq!(zone_region("us-central1-a"), "us-central1");
        assert_eq!(zone_region("europe-west1-b"), "europe-west1");
        assert_eq!(
            machine_type("z", "e2-small"),
            "zones/z/machineTypes/e2-small"
        );
        assert_eq!(
            machine_type("z", "zones/y/machineTypes/n"),
            "zones/y/machineTypes/n"
        );
        assert_eq!(source_image("my-image"), "global/images/my-image");
        assert_eq!(
            source_image("projects/debian-cloud/global/images/family/debian-12"),
            "projects/debian-cloud/global/images/family/debian-12"
        );
        assert_eq!(subnetwork("r", "nodes"), "regions/r/subnetworks/nodes");
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range(443), "443-443");
        for (range, want) in [
            ("443-443", Some(443)),
            ("80", Some(80)),
            ("80-81", None),
            ("", None),
            ("x-x", None),
        ] {
            assert_eq!(parse_port_range(range), want, "{range}");
        }
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
