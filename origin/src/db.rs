//! How enums are stored in text columns: the same lower-case names they have in JSON and CBOR
//! (`"members"`, `"creator"`), so the database, the API and the KV records agree.

/// The stored name of a unit enum value.
pub fn enum_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("unit enum serializes to a string")
}

/// A unit enum value from its stored name.
pub fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| anyhow::anyhow!("unexpected value {s:?} in the database"))
}
