//! The JS shell holds no policy: its only string literals are the driver's command names and a
//! few names of the runtime's own (module specifiers, KV's binary read type, the Durable
//! Object's storage key), and it has exactly one function per command the driver can issue.

use std::collections::BTreeSet;

use edge_cloudflare::driver::{self, Command};

const SHELL: &str = include_str!("../shell.js");

/// Names of the runtime's, not decisions: the modules the shell imports, the type KV reads
/// bytes as, and where the rate limiter keeps its state.
const RUNTIME_NAMES: &[&str] = &["cloudflare:workers", "./index.js", "arrayBuffer", "tat"];

/// One of each command, so a new one cannot be missed (the match below must name them all).
fn every_command() -> Vec<Command> {
    let all = [
        Command::Body { t: 0, max: 0 },
        Command::KvGet {
            t: 0,
            key: String::new(),
        },
        Command::KvPut {
            t: 0,
            key: String::new(),
            b: [0, 0],
            ttl: None,
        },
        Command::CacheMatch {
            t: 0,
            key: String::new(),
            headers: Vec::new(),
        },
        Command::CachePut {
            t: 0,
            key: String::new(),
            status: 200,
            headers: Vec::new(),
            h: None,
            b: None,
        },
        Command::Limit {
            t: 0,
            key: String::new(),
            q: [1, 1],
        },
        Command::Fetch {
            t: 0,
            url: String::new(),
            method: String::new(),
            headers: Vec::new(),
            b: None,
            ms: 0,
            pass: false,
        },
        Command::Read { t: 0, h: 0 },
        Command::Asset {
            t: 0,
            url: String::new(),
        },
        Command::ImportKey {
            t: 0,
            format: "raw",
            alg: driver::ED25519,
            usages: ["verify"],
            b: [0, 0],
        },
        Command::Verify {
            t: 0,
            alg: driver::ED25519,
            k: 0,
            sig: [0, 0],
            msg: [0, 0],
        },
        Command::Sleep { t: 0, ms: 0 },
        Command::Respond {
            status: 200,
            headers: Vec::new(),
            h: None,
            s: None,
            b: None,
        },
        Command::End,
    ];
    for c in &all {
        // Exhaustive: a command added to the driver fails to compile here until listed above.
        match c {
            Command::Body { .. }
            | Command::KvGet { .. }
            | Command::KvPut { .. }
            | Command::CacheMatch { .. }
            | Command::CachePut { .. }
            | Command::Limit { .. }
            | Command::Fetch { .. }
            | Command::Read { .. }
            | Command::Asset { .. }
            | Command::ImportKey { .. }
            | Command::Verify { .. }
            | Command::Sleep { .. }
            | Command::Respond { .. }
            | Command::End => {}
        }
    }
    all.into()
}

fn name(c: &Command) -> String {
    serde_json::to_value(c).unwrap()["c"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The shell without its comments (which may hold apostrophes).
fn code() -> String {
    SHELL
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('\'') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every string literal ('…', "…" or `…`) in the code.
fn literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        if matches!(c, '\'' | '"' | '`') {
            let mut lit = String::new();
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
                lit.push(d);
            }
            out.push(lit);
        }
    }
    out
}

#[test]
fn the_shells_string_literals_are_command_names_and_runtime_names_only() {
    let commands: BTreeSet<String> = every_command().iter().map(name).collect();
    let found = literals(&code());
    assert!(!found.is_empty(), "the scan found the shell's literals");
    let stray: Vec<&String> = found
        .iter()
        .filter(|l| !commands.contains(*l) && !RUNTIME_NAMES.contains(&l.as_str()))
        .collect();
    assert!(stray.is_empty(), "literals that are neither: {stray:?}");
}

/// Each operation of the shell's `ops` table: its name and its code.
fn ops(code: &str) -> Vec<(String, String)> {
    let start = code.find("const ops = {").expect("the ops table");
    let end = start + code[start..].find("\n};").expect("its end");
    let mut ops: Vec<(String, String)> = Vec::new();
    for line in code[start..end].lines() {
        match line.strip_prefix("  async ") {
            Some(l) => ops.push((l[..l.find('(').unwrap()].to_owned(), String::new())),
            None => {
                if let Some((_, body)) = ops.last_mut() {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    ops
}

#[test]
fn the_shell_has_one_operation_per_command() {
    let ops: BTreeSet<String> = ops(&code()).into_iter().map(|(name, _)| name).collect();
    let mut expected: BTreeSet<String> = every_command().iter().map(name).collect();
    // These two are the exchange's own steps, not operations.
    expected.remove("respond");
    expected.remove("end");
    assert_eq!(ops, expected);
}

#[test]
fn each_operation_reads_only_fields_its_command_has() {
    let commands: Vec<serde_json::Value> = every_command()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    let ops = ops(&code());
    assert!(ops.len() > 10);
    for (name, body) in ops {
        let command = commands
            .iter()
            .find(|c| c["c"] == name.as_str())
            .unwrap_or_else(|| panic!("no command {name}"));
        let reads: BTreeSet<&str> = body
            .match_indices("c.")
            .filter(|(i, _)| !body[..*i].ends_with(|ch: char| ch.is_alphanumeric() || ch == '.'))
            .map(|(i, _)| {
                let rest = &body[i + 2..];
                &rest[..rest
                    .find(|ch: char| !ch.is_alphanumeric() && ch != '_')
                    .unwrap()]
            })
            .collect();
        for field in reads {
            assert!(
                command.get(field).is_some(),
                "the shell's {name} reads c.{field}, which the command does not have"
            );
        }
    }
}
