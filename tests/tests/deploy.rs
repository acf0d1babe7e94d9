//! The deployment files name only what exists: the Dockerfile copies paths
//! of this repository (not left out of Docker's build context) and runs a
//! binary it built; every variable the files name is one a binary reads;
//! the guide links to files that exist. A typo there fails on a platform minutes into a build or
//! at the first start; here it fails at once, saying which file and what.
//! (Each platform's files: `deploy_platforms.rs`; the programs that judge
//! them, hadolint and systemd-analyze, and the env files driving real
//! processes: `deploy_run.rs`.)

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use uptun_e2e::deploy::{bins_of, packages_in, read, root, uptun_names, variables};

/// The Dockerfile's instructions, continuation lines joined, comments out.
fn dockerfile() -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None if current.is_empty() && line.trim().is_empty() => {}
            None => joined.push(std::mem::take(&mut current) + line),
        }
    }
    joined
        .iter()
        .map(|l| {
            let (op, rest) = l.trim().split_once(' ').unwrap();
            (op.to_uppercase(), rest.trim().to_string())
        })
        .collect()
}

/// Whether a path of the build context is left out by `.dockerignore`.
/// Only the forms that file uses are understood; another fails the test
/// rather than being matched wrongly.
fn dockerignored(path: &str) -> bool {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let parts: Vec<&str> = path.split('/').collect();
    (1..=parts.len()).any(|n| {
        let prefix = parts[..n].join("/");
        patterns.iter().any(|p| {
            assert!(
                !p.contains(['*', '?', '!', '[']) || p.starts_with("**/") && !p[3..].contains('*'),
                ".dockerignore: teach this test the pattern {p:?}"
            );
            match p.strip_prefix("**/") {
                Some(name) => parts[n - 1] == name,
                None => prefix == p.trim_end_matches('/'),
            }
        })
    })
}

/// Copies `from` (a path of the repository) into `to`, leaving out what
/// `.dockerignore` does: what `COPY` would put in the image.
fn copy_context(from: &str, to: &Path) {
    if dockerignored(from) {
        return;
    }
    let source = root().join(from);
    if source.is_dir() {
        std::fs::create_dir_all(to.join(from)).unwrap();
        for entry in std::fs::read_dir(&source).unwrap() {
            let name = entry.unwrap().file_name();
            copy_context(&format!("{from}/{}", name.to_str().unwrap()), to);
        }
    } else {
        std::fs::copy(&source, to.join(from)).unwrap();
    }
}

#[test]
fn the_dockerfile_builds_from_paths_that_exist_and_runs_a_binary_it_built() {
    let steps = dockerfile();
    let context = uptun_e2e::tempdir_path();
    let (mut built, mut copied_out) = (BTreeSet::new(), BTreeSet::new());
    for (op, args) in &steps {
        match op.as_str() {
            "COPY" if args.starts_with("--from=") => {
                let words: Vec<&str> = args.split_whitespace().skip(1).collect();
                for source in &words[..words.len() - 1] {
                    let name = source.rsplit('/').next().unwrap();
                    assert!(built.contains(name), "COPY {args}: {name} is not built");
                    copied_out.insert(name.to_string());
                }
            }
            "COPY" => {
                let words: Vec<&str> = args.split_whitespace().collect();
                assert!(
                    !words[0].starts_with("--"),
                    "COPY {args}: a flag to teach this test"
                );
                for source in &words[..words.len() - 1] {
                    assert!(
                        root().join(source).exists(),
                        "COPY {args}: {source} does not exist"
                    );
                    assert!(
                        !dockerignored(source),
                        "COPY {args}: .dockerignore leaves out {source}"
                    );
                    copy_context(source, context.path());
                }
            }
            "RUN" if args.contains("cargo build") => {
                let command = &args[args.find("cargo build").unwrap()..];
                assert!(command.contains("--release"), "{command}");
                built = bins_of(&packages_in(command));
                for name in args.split("target/release/").skip(1) {
                    let name = name.split_whitespace().next().unwrap();
                    assert!(
                        built.contains(name),
                        "RUN copies {name}, which it does not build"
                    );
                }
            }
            _ => {}
        }
    }
    let value = |op: &str| {
        let found: Vec<&String> = steps
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a)
            .collect();
        found
            .last()
            .copied()
            .unwrap_or_else(|| panic!("no {op} in the Dockerfile"))
            .clone()
    };
    let cmd: Vec<String> = serde_json::from_str(&value("CMD")).expect("CMD in exec form");
    // examples.rs reads `docker run … uptun` without a command as this.
    assert_eq!(cmd, ["public-server"]);
    assert!(
        copied_out.contains(&cmd[0]),
        "CMD {cmd:?} is not in the final image"
    );
    assert_eq!(
        copied_out,
        BTreeSet::from(["public-server".into(), "local-agent".into()])
    );

    let user = value("USER");
    let ids: Vec<u32> = user
        .split(':')
        .map(|n| n.parse().expect("a numeric USER"))
        .collect();
    assert!(
        ids.len() == 2 && !ids.contains(&0),
        "USER {user}: numeric uid:gid, not root"
    );
    assert_eq!(
        value("ENV"),
        format!("PORT={}", value("EXPOSE")),
        "the port it says it uses"
    );

    // What COPY put in the context is a workspace cargo can load, with the
    // lock file current (the build runs with --locked).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--locked", "--format-version", "1"])
        .current_dir(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Docker build context is not a workspace:\n{stderr}"
    );
}

#[test]
fn every_variable_the_deployment_files_name_is_read_by_a_binary() {
    let read_by_either: BTreeSet<String> = variables("public-server")
        .into_iter()
        .chain(variables("local-agent"))
        .collect();
    let files = [
        "Dockerfile",
        "Procfile",
        "RustConfig",
        "app.json",
        "fly.toml",
        "render.yaml",
        "deploy/agent.env",
        "deploy/server.env",
        "deploy/local-agent.service",
        "deploy/public-server.service",
        "docs/deploy.md",
    ];
    let mut seen = 0;
    for file in files {
        for name in uptun_names(&read(file)) {
            assert!(
                read_by_either.contains(&name),
                "{file} names {name}, which no binary reads"
            );
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} names found: is the scan blind?");
}

#[test]
fn the_guide_links_only_to_files_that_exist() {
    let guide = read("docs/deploy.md");
    let mut links = 0;
    for target in guide
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
    {
        let path = target.split('#').next().unwrap();
        if path.is_empty() || target.contains("://") {
            continue;
        }
        assert!(
            root().join("docs").join(path).exists(),
            "docs/deploy.md links to {target}"
        );
        links += 1;
    }
    assert!(links >= 8, "only {links} links found");
}
