//! The seed guide's "Containers - Practical" chapter, end to end with real
//! processes: make the busybox base, `kcnode build -t basicserver:0.42 .`
//! (a hello server: busybox httpd serving `Hello, World!`), `kcnode run -d
//! -p 5000:5000 basicserver:0.42`, `curl localhost:5000` -> `Hello, World!`.
//!
//! kcnode runs inside a network namespace the test creates (entered with
//! `nsenter --net`, which unlike `ip netns exec` keeps the host's /sys and
//! so its cgroup mount); the namespace and the container are removed after,
//! also when the test fails.

mod image_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use image_support::Node;
use kc_tests::{bin, require_program, require_root};

/// A network namespace of this test, deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new(tag: &str) -> NetNs {
        let name = format!("kc-test-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name} failed");
        let ns = NetNs { name };
        let ok = Command::new("ip")
            .args(["-n", &ns.name, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot bring lo up in {}", ns.name);
        ns
    }

    /// A command that runs inside this namespace.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name))
            .arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A running container, stopped and removed on drop.
struct Container<'a> {
    ns: &'a NetNs,
    node: &'a Node,
    id: String,
}

impl Container<'_> {
    fn kcnode(&self, args: &[&str]) -> Output {
        self.ns
            .command(&bin("kcnode"))
            .arg("--data-dir")
            .arg(self.node.data_dir())
            .env("KC_NODE_NAME", self.node.name())
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // httpd as PID 1 ignores SIGTERM: `rm -f` kills it at once.
        let _ = self.kcnode(&["rm", "-f", &self.id]);
    }
}

const DOCKERFILE: &str = r#"FROM busybox

RUN mkdir -p /www && \
    echo "built by RUN" > /www/run.txt && \
    rm /etc/group

COPY index.html /www/

EXPOSE 5000/tcp

CMD ["httpd", "-f", "-p", "5000", "-h", "/www"]
"#;

#[test]
fn basicserver_builds_runs_and_answers_hello_world() {
    require_root();
    require_program("busybox", "busybox-static");
    require_program("curl", "curl");
    require_program("nsenter", "util-linux");
    let node = Node::new();
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.path().join("index.html"), "Hello, World!\n").unwrap();
    let context = ctx.path().to_str().unwrap();

    node.ok(&["image", "base", "busybox"]);
    let out = node.ok(&["build", "-t", "basicserver:0.42", context]);
    assert!(out.contains("Step 1/5 : FROM busybox"), "{out}");
    assert!(
        out.contains("Successfully tagged basicserver:0.42"),
        "{out}"
    );
    let images = node.images();
    assert!(
        images.iter().any(|(n, _)| n == "basicserver:0.42"),
        "{images:?}"
    );

    // Rebuild: every step after FROM from the cache, same image.
    let again = node.ok(&["build", "-t", "basicserver:0.42", context]);
    assert_eq!(again.matches("---> Using cache").count(), 4, "{again}");
    assert_eq!(node.images(), images);

    let ns = NetNs::new("basicserver");
    let run = ns
        .command(&bin("kcnode"))
        .arg("--data-dir")
        .arg(node.data_dir())
        .env("KC_NODE_NAME", node.name())
        .args(["run", "-d", "-p", "5000:5000", "basicserver:0.42"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "kcnode run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let container = Container {
        ns: &ns,
        node: &node,
        id: String::from_utf8_lossy(&run.stdout).trim().to_string(),
    };
    assert!(!container.id.is_empty());

    // httpd needs a moment to listen: retry for up to 10 s.
    let mut body = String::new();
    for _ in 0..50 {
        let out = ns
            .command(Path::new("curl"))
            .args(["-s", "-m", "2", "http://localhost:5000/"])
            .output()
            .unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && !body.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(body, "Hello, World!\n");
    let run_txt = ns
        .command(Path::new("curl"))
        .args(["-s", "-m", "2", "http://localhost:5000/run.txt"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run_txt.stdout), "built by RUN\n");

    // RUN's `rm` is a whiteout in its layer: the file is gone in containers.
    let out = node.ok(&[
        "run",
        "--rm",
        "basicserver:0.42",
        "sh",
        "-c",
        "test -e /etc/group || echo gone",
    ]);
    assert_eq!(out, "gone\n");

    let ps = container.kcnode(&["ps"]);
    assert!(String::from_utf8_lossy(&ps.stdout).contains("basicserver:0.42"));
    let err = node.fails(&["rmi", "basicserver:0.42"]);
    assert!(err.contains("used by container"), "{err}");
    drop(container);

    // rmi keeps what the build cache uses; prune drops the cache too.
    node.ok(&["rmi", "basicserver:0.42"]);
    node.ok(&["image", "prune"]);
    node.ok(&["rmi", "busybox"]);
    assert!(node.store_files().is_empty(), "{:?}", node.store_files());
}

#[test]
fn build_errors_name_the_line_and_the_problem() {
    let node = Node::new();
    let ctx = tempfile::tempdir().unwrap();
    let context = ctx.path().to_str().unwrap();
    let dockerfile = ctx.path().join("Dockerfile");

    fs::write(&dockerfile, "FROM busybox\n\nFROBNICATE now\n").unwrap();
    let err = node.fails(&["build", "-t", "x:1", context]);
    assert!(
        err.contains("Dockerfile line 3: unknown instruction \"FROBNICATE\""),
        "{err}"
    );

    fs::write(&dockerfile, "FROM nosuch:1\n").unwrap();
    let err = node.fails(&["build", "-t", "x:1", context]);
    assert!(
        err.contains("line 1") && err.contains("\"nosuch:1\" not found"),
        "{err}"
    );

    require_root();
    node.ok(&["image", "base", "busybox"]);
    fs::write(&dockerfile, "FROM busybox\nCOPY missing.txt /\n").unwrap();
    let err = node.fails(&["build", "-t", "x:1", context]);
    assert!(
        err.contains("line 2") && err.contains("missing.txt: file not found in build context"),
        "{err}"
    );
    assert!(!node.images().iter().any(|(n, _)| n == "x:1"));
}

#[test]
fn build_args_reach_run_steps_and_heredoc_scripts() {
    require_root();
    require_program("busybox", "busybox-static");
    let node = Node::new();
    node.ok(&["image", "base", "busybox"]);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nARG GREETING=hi\nRUN <<EOF\nset -e\n# a here-document script\necho $GREETING > /greeting\nEOF\nCMD [\"cat\", \"/greeting\"]\n",
    )
    .unwrap();
    let context = ctx.path().to_str().unwrap();

    node.ok(&["build", "-t", "greet:default", context]);
    assert_eq!(node.ok(&["run", "--rm", "greet:default"]), "hi\n");
    node.ok(&[
        "build",
        "-t",
        "greet:arg",
        "--build-arg",
        "GREETING=hello",
        context,
    ]);
    assert_eq!(node.ok(&["run", "--rm", "greet:arg"]), "hello\n");
    // `--build-arg NAME` takes the value from kcnode's environment.
    let out = Command::new(bin("kcnode"))
        .arg("--data-dir")
        .arg(node.data_dir())
        .env("KC_NODE_NAME", node.name())
        .args([
            "build",
            "-t",
            "greet:env",
            "--build-arg",
            "GREETING",
            context,
        ])
        .env("GREETING", "from env")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(node.ok(&["run", "--rm", "greet:env"]), "from env\n");
}
