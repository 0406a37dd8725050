//! Dependency policy: crates we measured as defective never reach users' builds.

/// The names declared in one `[section]` of Cargo.toml (a table, not dotted sub-tables).
fn section_names(manifest: &str, section: &str) -> Vec<String> {
    let mut inside = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == section;
            continue;
        }
        if let Some((name, _)) = line
            .split_once('=')
            .filter(|_| inside && !line.starts_with('#'))
        {
            names.push(name.trim().to_string());
        }
    }
    names
}

#[test]
fn defective_crates_are_not_dependencies() {
    let manifest = include_str!("../Cargo.toml");
    let deps = section_names(manifest, "[dependencies]");
    assert!(
        deps.iter().any(|d| d == "postcard"),
        "parser sanity: {deps:?}"
    );
    for banned in ["bincode", "hyperloglogplus", "tdigest"] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "{banned} must not be a dependency"
        );
    }
}
