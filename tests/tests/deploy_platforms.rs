//! Each platform's files name what exists: Heroku's Procfile and
//! RustConfig a binary of the workspace, app.json, fly.toml and render.yaml
//! variables the server reads and the health path it serves, the systemd
//! units a binary, env files and install steps that docs/deploy.md gives.
//! (The Dockerfile: `deploy.rs`; the programs that judge these files:
//! `deploy_run.rs`.)

use std::collections::BTreeSet;

use clap::Parser;
use uptun_e2e::deploy::{
    bins_of, env_lines, packages_in, read, root, unit_settings, unit_value, variables, workspace,
};

#[test]
fn heroku_builds_and_starts_a_binary_of_the_workspace() {
    let rust_config = env_lines(&read("RustConfig"), false);
    let flags = &rust_config
        .iter()
        .find(|(name, _)| name == "RUST_CARGO_BUILD_FLAGS")
        .expect("RUST_CARGO_BUILD_FLAGS in RustConfig")
        .1;
    let flags = shlex::split(flags).unwrap().join(" ");
    // The buildpack copies what `--release` left in target/release/.
    assert!(flags.starts_with("--release"), "{flags}");
    let built = bins_of(&packages_in(&flags));
    let procfile = read("Procfile");
    let web = procfile
        .lines()
        .find_map(|l| l.strip_prefix("web:"))
        .expect("a web process in the Procfile");
    let program = web.split_whitespace().next().unwrap();
    let name = program
        .strip_prefix("./target/release/")
        .unwrap_or_else(|| panic!("{program}: the buildpack leaves binaries in ./target/release/"));
    assert_eq!(name, "public-server");
    assert!(built.contains(name), "RustConfig does not build {name}");

    let app: serde_json::Value = serde_json::from_str(&read("app.json")).expect("app.json is JSON");
    assert_eq!(app["buildpacks"][0]["url"], "emk/rust");
    assert_eq!(app["formation"]["web"]["quantity"], 1, "one server process");
    let read_by_server = variables("public-server");
    for (name, spec) in app["env"].as_object().expect("app.json env") {
        assert!(
            read_by_server.contains(name),
            "app.json sets {name}, which the server does not read"
        );
        if spec.get("required") != Some(&false.into()) {
            assert_eq!(
                spec["generator"], "secret",
                "{name} must be generated, not a shared default"
            );
        }
    }
    assert!(app["env"]["UPTUN_AGENT_TOKEN"].is_object());
}

/// `/_uptun/health` from the server's own default endpoint prefix.
fn health_path() -> String {
    let prefix = public_server::Cli::try_parse_from(["public-server"])
        .unwrap()
        .endpoint_prefix;
    format!("{prefix}/health")
}

#[test]
fn fly_toml_sends_the_platform_port_to_the_server_and_checks_its_health() {
    let fly: toml::Table = read("fly.toml").parse().expect("fly.toml is TOML");
    let path = fly["build"]["dockerfile"].as_str().unwrap();
    assert!(
        root().join(path).is_file(),
        "fly.toml builds {path}, which does not exist"
    );
    let service = fly["http_service"].as_table().expect("[http_service]");
    let port = service["internal_port"].as_integer().unwrap();
    assert_eq!(
        fly["env"]["PORT"].as_str(),
        Some(port.to_string().as_str()),
        "PORT = internal_port"
    );
    assert_eq!(
        service["force_https"].as_bool(),
        Some(false),
        "plain-http agents get through"
    );
    assert_eq!(
        service["auto_stop_machines"].as_str(),
        Some("off"),
        "a stopped machine drops links"
    );
    assert!(service["min_machines_running"].as_integer() >= Some(1));
    let check = &service["checks"][0];
    assert_eq!(check["path"].as_str(), Some(health_path().as_str()));
    // Top-level keys: inside a table they would silently mean something else.
    let top = |key: &str| {
        let value = fly.get(key).and_then(|v| v.as_str());
        value.unwrap_or_else(|| panic!("fly.toml: no top-level {key} (above the first [table])"))
    };
    assert_eq!(top("kill_signal"), "SIGTERM");
    let kill = uptun_cli::parse_duration(top("kill_timeout")).unwrap();
    let grace = public_server::DEFAULT_GRACE;
    assert!(
        kill > grace,
        "Fly must wait longer ({kill:?}) than the server's grace ({grace:?})"
    );
}

#[test]
fn render_yaml_builds_the_dockerfile_with_generated_tokens() {
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&read("render.yaml")).expect("render.yaml is YAML");
    let services = docs[0]["services"].as_vec().expect("services:");
    assert_eq!(services.len(), 1);
    let web = &services[0];
    assert_eq!(web["type"].as_str(), Some("web"));
    assert_eq!(web["runtime"].as_str(), Some("docker"));
    for key in ["dockerfilePath", "dockerContext"] {
        let path = web[key].as_str().unwrap_or_else(|| panic!("{key}"));
        assert!(
            root().join(path).exists(),
            "render.yaml {key}: {path} does not exist"
        );
    }
    assert_eq!(web["numInstances"].as_i64(), Some(1), "one server process");
    assert_eq!(
        web["healthCheckPath"].as_str(),
        Some(health_path().as_str())
    );
    let read_by_server = variables("public-server");
    let vars = web["envVars"].as_vec().expect("envVars:");
    for var in vars {
        let name = var["key"].as_str().unwrap();
        assert!(
            read_by_server.contains(name),
            "render.yaml sets {name}, which the server does not read"
        );
        assert_eq!(
            var["generateValue"].as_bool(),
            Some(true),
            "{name}: generated, not a shared default"
        );
    }
    assert!(vars
        .iter()
        .any(|v| v["key"].as_str() == Some("UPTUN_AGENT_TOKEN")));
}

#[test]
fn the_systemd_units_run_workspace_binaries_with_the_env_files_the_guide_installs() {
    let guide = read("docs/deploy.md");
    let workspace_bins: BTreeSet<String> = workspace().into_values().flatten().collect();
    for (unit, program, env) in [
        ("local-agent.service", "local-agent", "agent.env"),
        ("public-server.service", "public-server", "server.env"),
    ] {
        let settings = unit_settings(&read(&format!("deploy/{unit}")));
        let exec = unit_value(&settings, "ExecStart")
            .split_whitespace()
            .next()
            .unwrap();
        let (dir, name) = exec.rsplit_once('/').unwrap();
        assert_eq!(name, program, "{unit}");
        assert!(
            workspace_bins.contains(name),
            "{unit} runs {name}, not a workspace binary"
        );
        assert_eq!(
            unit_value(&settings, "EnvironmentFile"),
            format!("/etc/uptun/{env}")
        );
        assert_eq!(unit_value(&settings, "DynamicUser"), "yes", "{unit}");
        assert_eq!(unit_value(&settings, "Restart"), "always", "{unit}");
        for step in [
            format!("sudo install -m 755 target/release/{name} {dir}/"),
            format!("sudo install -m 600 deploy/{env} /etc/uptun/{env}"),
            format!("sudo install -m 644 deploy/{unit} /etc/systemd/system/"),
            format!(
                "sudo systemctl enable --now {}",
                unit.trim_end_matches(".service")
            ),
        ] {
            assert!(guide.contains(&step), "docs/deploy.md does not say: {step}");
        }
        let reads = variables(program);
        for (var, _) in env_lines(&read(&format!("deploy/{env}")), true) {
            assert!(
                reads.contains(&var),
                "deploy/{env}: {program} does not read {var}"
            );
        }
    }
}
