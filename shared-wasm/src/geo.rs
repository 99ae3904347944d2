//! Geo routing: which origin region serves a request.
//!
//! A deployment lists its regions (`REGIONS`, JSON): name, origin base URL, the countries and
//! continents it serves, and its residency group. Reads prefer the regions serving the viewer's
//! country, then those serving the continent, then the rest in table order; regions recently
//! marked unhealthy move to the back. Writes belong to the user's home region: they may move
//! only to a healthy region of the same residency group, never across groups.

use serde::{Deserialize, Serialize};

use crate::CountryCode;

/// A continent as CDNs report it (Cloudflare's `request.cf.continent` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Continent {
    /// Africa.
    AF,
    /// Antarctica.
    AN,
    /// Asia.
    AS,
    /// Europe.
    EU,
    /// North America.
    NA,
    /// Oceania.
    OC,
    /// South America.
    SA,
}

impl Continent {
    /// Parses one of the seven two-letter codes (any case).
    pub fn parse(s: &str) -> Option<Self> {
        let all = [
            Self::AF,
            Self::AN,
            Self::AS,
            Self::EU,
            Self::NA,
            Self::OC,
            Self::SA,
        ];
        let s = s.trim().to_ascii_uppercase();
        all.into_iter().find(|c| format!("{c:?}") == s)
    }
}

/// One origin region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Name (`eu-west`), also the value of the JWT's `region` claim for users homed here.
    pub name: String,
    /// Origin base URL, no trailing slash.
    pub origin: String,
    /// Countries it is nearest to.
    #[serde(default)]
    pub countries: Vec<CountryCode>,
    /// Continents it is nearest to.
    #[serde(default)]
    pub continents: Vec<Continent>,
    /// Residency group: user data may move only between regions of one group.
    pub residency: String,
}

/// The deployment's regions, in fallback order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionTable {
    regions: Vec<Region>,
}

fn valid_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl RegionTable {
    /// One region serving everything (a deployment without `REGIONS`).
    pub fn single(origin: &str) -> Self {
        Self {
            regions: vec![Region {
                name: "default".into(),
                origin: origin.trim_end_matches('/').to_owned(),
                countries: Vec::new(),
                continents: Vec::new(),
                residency: "default".into(),
            }],
        }
    }

    /// Parses and checks the JSON list: at least one region, unique names of `a-z0-9-`, http(s)
    /// origins.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let mut regions: Vec<Region> =
            serde_json::from_str(json).map_err(|e| format!("not a region list: {e}"))?;
        if regions.is_empty() {
            return Err("no regions".into());
        }
        for (i, r) in regions.iter_mut().enumerate() {
            if !valid_name(&r.name) || !valid_name(&r.residency) {
                return Err(format!(
                    "region {i}: name and residency are 1 to 32 of a-z, 0-9, '-'"
                ));
            }
            if !(r.origin.starts_with("http://") || r.origin.starts_with("https://")) {
                return Err(format!("region {}: origin must be an http(s) URL", r.name));
            }
            r.origin = r.origin.trim_end_matches('/').to_owned();
        }
        for (i, r) in regions.iter().enumerate() {
            if regions[..i].iter().any(|o| o.name == r.name) {
                return Err(format!("region {} listed twice", r.name));
            }
        }
        Ok(Self { regions })
    }

    /// The region called `name`.
    pub fn get(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// All regions in table order.
    pub fn all(&self) -> &[Region] {
        &self.regions
    }

    /// Regions for a read, best first: serving the country, then the continent, then the
    /// rest; within each group, table order. Unhealthy regions go last (still tried when
    /// nothing else is left).
    pub fn for_read(
        &self,
        country: Option<CountryCode>,
        continent: Option<Continent>,
        unhealthy: impl Fn(&str) -> bool,
    ) -> Vec<&Region> {
        let rank = |r: &Region| {
            let closeness = if country.is_some_and(|c| r.countries.contains(&c)) {
                0
            } else if continent.is_some_and(|c| r.continents.contains(&c)) {
                1
            } else {
                2
            };
            (unhealthy(&r.name), closeness)
        };
        let mut out: Vec<&Region> = self.regions.iter().collect();
        // Stable: ties keep table order.
        out.sort_by_key(|r| rank(r));
        out
    }

    /// The region a write of a user homed in `home` goes to: the home region if healthy, else
    /// the first healthy region of its residency group, else the home region anyway (and it
    /// fails there). `None` when `home` is not in the table.
    pub fn for_write(&self, home: &str, unhealthy: impl Fn(&str) -> bool) -> Option<&Region> {
        let home = self.get(home)?;
        if !unhealthy(&home.name) {
            return Some(home);
        }
        Some(
            self.regions
                .iter()
                .find(|r| r.residency == home.residency && !unhealthy(&r.name))
                .unwrap_or(home),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"[
        {"name": "eu-west", "origin": "https://eu-west.example/", "countries": ["FR", "ES"],
         "continents": ["EU"], "residency": "eu"},
        {"name": "eu-central", "origin": "https://eu-central.example", "countries": ["DE"],
         "residency": "eu"},
        {"name": "us-east", "origin": "https://us-east.example", "continents": ["NA", "SA"],
         "residency": "us"}
    ]"#;

    fn names(v: Vec<&Region>) -> Vec<&str> {
        v.into_iter().map(|r| r.name.as_str()).collect()
    }

    fn cc(s: &str) -> Option<CountryCode> {
        CountryCode::parse(s).ok()
    }

    #[test]
    fn reads_prefer_country_then_continent_then_table_order() {
        let t = RegionTable::from_json(TABLE).unwrap();
        let healthy = |_: &str| false;
        assert_eq!(
            names(t.for_read(cc("DE"), Some(Continent::EU), healthy)),
            ["eu-central", "eu-west", "us-east"]
        );
        assert_eq!(
            names(t.for_read(cc("IT"), Some(Continent::EU), healthy)),
            ["eu-west", "eu-central", "us-east"]
        );
        assert_eq!(
            names(t.for_read(cc("BR"), Some(Continent::SA), healthy)),
            ["us-east", "eu-west", "eu-central"]
        );
        assert_eq!(
            names(t.for_read(None, None, healthy)),
            ["eu-west", "eu-central", "us-east"]
        );
        assert_eq!(t.get("eu-west").unwrap().origin, "https://eu-west.example");
    }

    #[test]
    fn unhealthy_regions_go_last_but_stay_in_the_list() {
        let t = RegionTable::from_json(TABLE).unwrap();
        let sick = |n: &str| n == "eu-central";
        assert_eq!(
            names(t.for_read(cc("DE"), Some(Continent::EU), sick)),
            ["eu-west", "us-east", "eu-central"]
        );
    }

    #[test]
    fn writes_stay_in_the_residency_group() {
        let t = RegionTable::from_json(TABLE).unwrap();
        assert_eq!(
            t.for_write("eu-central", |_| false).unwrap().name,
            "eu-central"
        );
        assert_eq!(
            t.for_write("eu-central", |n| n == "eu-central")
                .unwrap()
                .name,
            "eu-west"
        );
        // The whole group down: the home region anyway, never us-east.
        assert_eq!(
            t.for_write("eu-central", |n| n.starts_with("eu"))
                .unwrap()
                .name,
            "eu-central"
        );
        assert_eq!(
            t.for_write("us-east", |n| n == "us-east").unwrap().name,
            "us-east"
        );
        assert!(t.for_write("mars", |_| false).is_none());
    }

    #[test]
    fn bad_tables_are_refused_with_a_reason() {
        for (bad, why) in [
            ("[]", "no regions"),
            ("{}", "not a region list"),
            (
                r#"[{"name":"A","origin":"http://x","residency":"r"}]"#,
                "a-z",
            ),
            (
                r#"[{"name":"a","origin":"ftp://x","residency":"r"}]"#,
                "http(s)",
            ),
            (
                r#"[{"name":"a","origin":"http://x","residency":"r"},{"name":"a","origin":"http://y","residency":"r"}]"#,
                "twice",
            ),
            (
                r#"[{"name":"a","origin":"http://x","residency":"r","continents":["XX"]}]"#,
                "not a region list",
            ),
            (
                r#"[{"name":"a","origin":"http://x","residency":"r","weight":1}]"#,
                "not a region list",
            ),
        ] {
            let e = RegionTable::from_json(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(Continent::parse("eu"), Some(Continent::EU));
        assert_eq!(Continent::parse("XX"), None);
    }
}
