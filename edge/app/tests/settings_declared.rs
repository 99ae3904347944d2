//! Every setting the edge reads is one a deployment can set: declared as a variable in
//! `spin.toml` (and passed to the component), and documented in `wrangler.toml` (whose deployed
//! environments set only settings the edge reads, the required ones among them); and neither
//! file names a setting nothing reads.
//!
//! What the edge reads: the names `EdgeConfig` asks for (recorded while it reads every section of
//! a complete configuration), and the names the Spin adapter reads itself (its string literals
//! that look like setting names; the adapter builds only for Wasm, so it cannot be run here).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use edge_app::EdgeConfig;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names `EdgeConfig` asks for when every section is read, given values for the required
/// ones.
fn app_settings() -> BTreeSet<String> {
    let asked = Rc::new(RefCell::new(BTreeSet::new()));
    let noted = asked.clone();
    let key = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let config = EdgeConfig::new(move |name| {
        noted.borrow_mut().insert(name.to_owned());
        Some(match name {
            "ORIGIN_URL" => "http://127.0.0.1:1".to_owned(),
            "EDGE_ORIGIN_SECRET" | "SYNC_SECRET" => "s".repeat(32),
            "PLAYBACK_KEYS" => format!("k1:{key}"),
            "PLAYBACK_ACTIVE_KID" => "k1".to_owned(),
            "JWT_ISSUER" | "JWT_AUDIENCE" => "x".to_owned(),
            _ => return None,
        })
    });
    let checked = config.check();
    assert!(checked.is_ok(), "a complete configuration: {checked:?}");
    asked.take()
}

/// Quoted names in the Spin adapter's source shaped like settings (`UPPER_CASE`).
fn spin_adapter_settings() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("edge/spin/src")).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, quoted) in source.split('"').enumerate() {
            let setting_like = i % 2 == 1
                && quoted.contains('_')
                && quoted.starts_with(|c: char| c.is_ascii_uppercase())
                && quoted
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if setting_like {
                names.insert(quoted.to_owned());
            }
        }
    }
    names
}

fn keys(table: &toml::Value, path: &[&str]) -> BTreeSet<String> {
    let mut t = table;
    for p in path {
        t = t
            .get(p)
            .unwrap_or_else(|| panic!("no [{}]", path.join(".")));
    }
    t.as_table()
        .unwrap()
        .keys()
        .map(|k| k.to_ascii_uppercase())
        .collect()
}

#[test]
fn spin_toml_declares_every_setting_and_no_other() {
    let mut read_by_edge = app_settings();
    read_by_edge.extend(spin_adapter_settings());
    let spin: toml::Value = toml::from_str(&read("spin.toml")).unwrap();
    let declared = keys(&spin, &["variables"]);
    let passed = keys(&spin, &["component", "edge", "variables"]);
    let missing: Vec<_> = read_by_edge.difference(&declared).collect();
    let unread: Vec<_> = declared.difference(&read_by_edge).collect();
    assert!(
        missing.is_empty() && unread.is_empty(),
        "spin.toml [variables]: missing {missing:?}, read by nothing {unread:?}"
    );
    assert_eq!(
        passed, declared,
        "[component.edge.variables] passes each one"
    );
}

#[test]
fn wrangler_toml_documents_every_setting_and_sets_no_other() {
    let app = app_settings();
    let text = read("wrangler.toml");
    let wrangler: toml::Value = toml::from_str(&text).unwrap();
    // Secrets are never in the file; it names them in a comment, like every optional setting.
    let words: BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let undocumented: Vec<_> = app.iter().filter(|n| !words.contains(n.as_str())).collect();
    assert!(
        undocumented.is_empty(),
        "wrangler.toml does not mention {undocumented:?}"
    );
    let vars = keys(&wrangler, &["vars"]);
    let unread: Vec<_> = vars.difference(&app).collect();
    assert!(
        unread.is_empty(),
        "wrangler.toml [vars] read by nothing: {unread:?}"
    );
    // The Spin adapter's own settings mean nothing to the Worker.
    let spin_only = spin_adapter_settings();
    let misplaced: Vec<_> = vars.intersection(&spin_only).collect();
    assert!(
        misplaced.is_empty(),
        "Spin-only settings in wrangler.toml: {misplaced:?}"
    );
    // The deployed environments (vars are not inherited: each lists its own), read the same way.
    for env in ["staging", "production"] {
        let vars = keys(&wrangler, &["env", env, "vars"]);
        let unread: Vec<_> = vars.difference(&app).collect();
        assert!(
            unread.is_empty(),
            "wrangler.toml [env.{env}.vars] read by nothing: {unread:?}"
        );
        for required in [
            "ORIGIN_URL",
            "JWT_ISSUER",
            "JWT_AUDIENCE",
            "PLAYBACK_ACTIVE_KID",
        ] {
            assert!(
                vars.contains(required),
                "wrangler.toml [env.{env}.vars] lacks {required}"
            );
        }
    }
}
