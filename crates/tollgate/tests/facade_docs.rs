//! The facade's docs are the whole manual: every layer crate is re-exported with
//! `#[doc(inline)]` (so `cargo doc -p tollgate` shows its docs, not a bare `pub use` line),
//! and the crate docs link to other crates by URL, not by intra-doc path. (An intra-doc link
//! into a dependency resolves, so `-D warnings` passes, but under `cargo doc --no-deps`, as
//! CI runs it, the dependency's docs are not built and rustdoc writes the path itself as the
//! `href`: `href="tower::ServiceBuilder"`, a dead link no lint reports.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

const LIB: &str = include_str!("../src/lib.rs");
const TRANZILA: &str = include_str!("../src/tranzila.rs");

#[test]
fn every_layer_crate_is_inlined() {
    let lines: Vec<&str> = LIB.lines().map(str::trim).collect();
    let mut reexports = 0;
    for (index, line) in lines.iter().enumerate() {
        if !(line.starts_with("pub use tollgate_") && line.contains(" as ")) {
            continue;
        }
        reexports += 1;
        let attributes = lines[..index]
            .iter()
            .rev()
            .take_while(|line| line.starts_with("#[") || line.starts_with("///"));
        assert!(
            attributes.into_iter().any(|line| *line == "#[doc(inline)]"),
            "`{line}` is not `#[doc(inline)]`"
        );
    }
    assert_eq!(
        reexports, 9,
        "core, five layer crates, https, client and reqwest (tranzila is a module: see below)"
    );
    // `tollgate::tranzila` is a module (the crate, glob re-exported, and its ready client).
    let tranzila: Vec<&str> = TRANZILA.lines().map(str::trim).collect();
    let glob = tranzila
        .iter()
        .position(|line| *line == "pub use tollgate_tranzila::*;")
        .expect("tranzila re-exports its crate");
    assert_eq!(tranzila[glob - 1], "#[doc(inline)]");
}

#[test]
fn crate_docs_link_to_dependencies_by_url() {
    for line in LIB
        .lines()
        .filter(|line| line.trim_start().starts_with("//!"))
    {
        for dependency in [
            "tower::", "http::", "axum::", "tonic::", "hyper::", "tower_",
        ] {
            assert!(
                !line.contains(&format!("]({dependency}"))
                    && !line.contains(&format!("[`{dependency}")),
                "an intra-doc link into a dependency (dead under `cargo doc --no-deps`): {line}"
            );
        }
    }
}
