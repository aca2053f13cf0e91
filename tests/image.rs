//! The container image as `make image` builds it without a container daemon:
//! tools/image/build.sh assembles it from the operator binary at hand (the runtime files are
//! the same for a debug build); this test unpacks its OCI layout the way a runtime does,
//! checks its settings against the Dockerfile's final stage, and runs the operator as user
//! 65532 in a chroot of the unpacked root filesystem, where no host file (library or
//! certificate) is reachable.
//!
//! Needs Go (the assembler), apt's Debian mirror (the runtime packages, fetched once into a
//! cache) and root: chroot fails otherwise, and the test with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const OPERATOR: &str = env!("CARGO_BIN_EXE_dli-stop-operator");
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An image unpacked from an OCI layout: its config and its root filesystem.
struct Unpacked {
    config: Value,
    rootfs: PathBuf,
}

impl Unpacked {
    fn settings(&self) -> &Value {
        &self.config["config"]
    }

    /// Runs the image's entrypoint with `args` the way a runtime would: chrooted into the
    /// image, as its user, with only its environment.
    fn run(&self, args: &[&str]) -> Output {
        let settings = self.settings();
        let entrypoint = strings(&settings["Entrypoint"]);
        let user = settings["User"].as_str().expect("the image names a user");
        let mut command = Command::new("chroot");
        command
            .arg(format!("--userspec={user}"))
            .arg(&self.rootfs)
            .args(&entrypoint)
            .args(args)
            .env_clear()
            .current_dir("/");
        for pair in strings(&settings["Env"]) {
            let (key, value) = pair.split_once('=').expect("Env holds KEY=VALUE");
            command.env(key, value);
        }
        command.output().expect("run chroot")
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list of strings, got {value}"))
        .iter()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The blob `digest` points to, after checking that its content has that digest.
fn blob(layout: &Path, digest: &Value) -> PathBuf {
    let digest = digest.as_str().expect("a digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let path = layout.join("blobs/sha256").join(hex);
    let content = fs::read(&path).unwrap_or_else(|e| panic!("read blob {digest}: {e}"));
    let actual = ring::digest::digest(&ring::digest::SHA256, &content);
    assert_eq!(
        hex::encode(actual.as_ref()),
        hex,
        "blob {digest} has another digest"
    );
    path
}

fn build_and_unpack(out: &Path) -> Unpacked {
    let status = Command::new(repo().join("tools/image/build.sh"))
        .arg(OPERATOR)
        .arg(out)
        .status()
        .expect("run tools/image/build.sh");
    assert!(status.success(), "tools/image/build.sh failed: {status}");

    let layout = out.join("oci");
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"]
        .as_array()
        .expect("index.json lists manifests");
    assert_eq!(manifests.len(), 1, "one image in the layout: {index}");
    let manifest = read_json(&blob(&layout, &manifests[0]["digest"]));
    let config = read_json(&blob(&layout, &manifest["config"]["digest"]));

    let rootfs = out.join("unpacked");
    fs::create_dir(&rootfs).expect("create the unpack directory");
    for layer in manifest["layers"]
        .as_array()
        .expect("the manifest lists layers")
    {
        assert_eq!(layer["mediaType"], LAYER_MEDIA_TYPE, "{layer}");
        let status = Command::new("tar")
            .args([
                "--extract",
                "--gzip",
                "--same-permissions",
                "--numeric-owner",
            ])
            .arg("--file")
            .arg(blob(&layout, &layer["digest"]))
            .arg("--directory")
            .arg(&rootfs)
            .status()
            .expect("run tar");
        assert!(status.success(), "unpacking {layer} failed: {status}");
    }
    Unpacked { config, rootfs }
}

/// The Dockerfile's final stage, one `(INSTRUCTION, arguments)` per instruction, continuation
/// lines joined.
fn dockerfile_final_stage() -> Vec<(String, String)> {
    let text = fs::read_to_string(repo().join("Dockerfile")).expect("read the Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            continue;
        }
        current.push_str(line);
        let (keyword, arguments) = current.split_once(' ').expect("an instruction");
        instructions.push((keyword.to_uppercase(), arguments.trim().to_owned()));
        current.clear();
    }
    let last_from = instructions
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .expect("a FROM");
    instructions.split_off(last_from + 1)
}

/// `key="value" key="value"` as a LABEL instruction writes them.
fn label_pairs(mut arguments: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    while !arguments.trim().is_empty() {
        let (key, rest) = arguments.split_once("=\"").expect("LABEL key=\"value\"");
        let (value, rest) = rest.split_once('"').expect("a closing quote");
        pairs.push((key.trim().to_owned(), value.to_owned()));
        arguments = rest;
    }
    pairs
}

#[test]
fn the_daemonless_image_runs_the_operator_with_nothing_from_the_host() {
    let out = tempfile::tempdir().expect("temporary directory");
    let image = build_and_unpack(out.path());
    let settings = image.settings();

    let mut labels_checked = 0;
    for (instruction, arguments) in dockerfile_final_stage() {
        match instruction.as_str() {
            "LABEL" => {
                for (key, value) in label_pairs(&arguments) {
                    assert_eq!(settings["Labels"][&key], value, "label {key}");
                    labels_checked += 1;
                }
            }
            "USER" => assert_eq!(settings["User"], arguments),
            "EXPOSE" => assert!(
                settings["ExposedPorts"]
                    .get(format!("{arguments}/tcp"))
                    .is_some(),
                "port {arguments} is exposed: {settings}"
            ),
            "ENTRYPOINT" | "CMD" => {
                let key = if instruction == "CMD" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                let expected: Value = serde_json::from_str(&arguments).expect("exec form");
                assert_eq!(settings[key], expected, "{instruction}");
            }
            "COPY" => {
                let destination = arguments.rsplit(' ').next().expect("a destination");
                assert_eq!(settings["Entrypoint"][0], destination, "the binary's place");
            }
            other => panic!("the image does not reproduce the Dockerfile's {other}"),
        }
    }
    assert_eq!(labels_checked, 3, "the Dockerfile's labels were compared");
    assert_eq!(settings["User"], "65532:65532");

    let version = image.run(&["--version"]);
    assert!(
        version.status.success(),
        "--version in the image: {}",
        String::from_utf8_lossy(&version.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("dli-stop-operator {}", env!("CARGO_PKG_VERSION"))
    );

    let crd = image.run(&["crd"]);
    assert!(
        crd.status.success(),
        "crd in the image: {}",
        String::from_utf8_lossy(&crd.stderr)
    );
    let checked_in =
        fs::read_to_string(repo().join("crds/jobstoprequests.yaml")).expect("read crds/");
    assert_eq!(String::from_utf8_lossy(&crd.stdout), checked_in);
}
