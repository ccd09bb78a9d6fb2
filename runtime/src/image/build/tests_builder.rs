//! Builder tests with a fake `StepRunner` (the real one runs containers and
//! lives on the container side): it records each RUN and writes into the
//! step's upper dir what a shell command would have.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;
use crate::image::base;

/// Writes `/ran-<n>` into the upper dir, and a whiteout for /etc/group.
#[derive(Default)]
struct FakeRunner {
    runs: RefCell<Vec<BuildRun>>,
}

impl StepRunner for FakeRunner {
    fn run_step(&self, step: &BuildRun) -> anyhow::Result<()> {
        let n = self.runs.borrow().len();
        if step.argv.last().is_some_and(|a| a.contains("exit 3")) {
            anyhow::bail!("RUN {:?} exited with code 3", step.argv);
        }
        fs::write(step.upper_dir.join(format!("ran-{n}")), step.argv.join(" "))?;
        fs::create_dir(step.upper_dir.join("etc"))?;
        let c = std::ffi::CString::new(
            step.upper_dir
                .join("etc/group")
                .into_os_string()
                .into_encoded_bytes(),
        )?;
        // SAFETY: a valid path; makes an overlay whiteout as a RUN `rm` would.
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
        self.runs.borrow_mut().push(step.clone());
        Ok(())
    }
}

struct Fixture {
    _data: tempfile::TempDir,
    store: ImageStore,
    context: tempfile::TempDir,
}

fn fixture(dockerfile: &str) -> Fixture {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "builder tests need root (layer ownership, whiteouts): run them as root, as CI does"
    );
    let data = tempfile::tempdir().unwrap();
    let store = ImageStore::open(data.path()).unwrap();
    base::make_base(&store, "busybox", &TaggedName::parse("busybox").unwrap()).unwrap();
    let context = tempfile::tempdir().unwrap();
    fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    fs::write(context.path().join("index.html"), "Hello, World!\n").unwrap();
    fs::create_dir(context.path().join("site")).unwrap();
    fs::write(context.path().join("site/a.txt"), "a").unwrap();
    fs::write(context.path().join("site/secret.key"), "k").unwrap();
    fs::write(context.path().join(".dockerignore"), "**/*.key\n").unwrap();
    Fixture {
        _data: data,
        store,
        context,
    }
}

fn opts(f: &Fixture, tag: &str) -> BuildOptions {
    BuildOptions {
        context: f.context.path().to_path_buf(),
        tags: vec![TaggedName::parse(tag).unwrap()],
        ..BuildOptions::default()
    }
}

fn build_ok(f: &Fixture, runner: &FakeRunner, tag: &str) -> (Built, String) {
    let mut out = Vec::new();
    let built = build(&f.store, Some(runner), &opts(f, tag), &mut out).unwrap();
    (built, String::from_utf8(out).unwrap())
}

const DOCKERFILE: &str = "\
FROM busybox
ARG GREETING=hi
ENV APP=/srv/app
WORKDIR $APP
COPY index.html /www/
COPY site ./site
RUN echo $GREETING > /greeting
EXPOSE 5000
LABEL owner=kc
STOPSIGNAL SIGQUIT
VOLUME /data
CMD [\"httpd\", \"-f\", \"-p\", \"5000\", \"-h\", \"/www\"]
";

#[test]
fn builds_layers_and_config_then_rebuilds_from_cache() {
    let f = fixture(DOCKERFILE);
    let runner = FakeRunner::default();
    let (built, out) = build_ok(&f, &runner, "basicserver:0.42");
    assert!(out.starts_with("Step 1/12 : FROM busybox\n"), "{out}");
    assert!(
        out.contains("Successfully tagged basicserver:0.42"),
        "{out}"
    );

    let img = f.store.resolve("basicserver:0.42").unwrap();
    assert_eq!(img.id, built.id.to_string());
    assert_eq!(img.config.cmd, ["httpd", "-f", "-p", "5000", "-h", "/www"]);
    assert_eq!(img.config.working_dir, "/srv/app");
    assert!(img.config.env.contains(&"APP=/srv/app".to_string()));
    assert_eq!(img.config.exposed_ports, ["5000/tcp"]);
    assert_eq!(img.config.labels["owner"], "kc");
    assert_eq!(img.config.stop_signal, "SIGQUIT");
    assert_eq!(img.config.volumes, ["/data"]);
    // busybox + COPY + COPY + RUN.
    assert_eq!(img.layers.len(), 4);
    assert_eq!(
        fs::read_to_string(img.layers[1].join("www/index.html")).unwrap(),
        "Hello, World!\n"
    );
    assert_eq!(
        fs::metadata(img.layers[1].join("www/index.html"))
            .unwrap()
            .uid(),
        0
    );
    assert!(img.layers[2].join("srv/app/site/a.txt").is_file());
    assert!(
        !img.layers[2].join("srv/app/site/secret.key").exists(),
        ".dockerignore'd"
    );
    assert!(
        fs::read_to_string(img.layers[3].join("ran-0"))
            .unwrap()
            .ends_with("echo $GREETING > /greeting")
    );
    let wh = fs::symlink_metadata(img.layers[3].join("etc/group")).unwrap();
    assert!(
        wh.file_type().is_char_device(),
        "the RUN's whiteout survives as a whiteout"
    );

    let runs = runner.runs.borrow().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].argv[..2], ["/bin/sh", "-c"]);
    assert_eq!(runs[0].working_dir, "/srv/app");
    assert!(
        runs[0].env.contains(&"GREETING=hi".to_string()),
        "ARGs are in RUN's env"
    );
    assert_eq!(runs[0].lower_dirs.len(), 3);

    // Nothing changed: every step from cache, no RUN, the same image.
    let (again, out) = build_ok(&f, &runner, "basicserver:0.43");
    assert_eq!(again.id, built.id);
    assert_eq!(out.matches("Using cache").count(), 11, "{out}");
    assert_eq!(runner.runs.borrow().len(), 1);

    // A changed source misses from that COPY on.
    fs::write(f.context.path().join("index.html"), "changed\n").unwrap();
    let (changed, out) = build_ok(&f, &runner, "basicserver:0.44");
    assert_ne!(changed.id, built.id);
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
    assert_eq!(runner.runs.borrow().len(), 2);
    // A change to an ignored file is not a change.
    fs::write(f.context.path().join("site/secret.key"), "other").unwrap();
    let (same, _) = build_ok(&f, &runner, "basicserver:0.45");
    assert_eq!(same.id, changed.id);
}

#[test]
fn copy_into_an_existing_directory_keeps_the_file_name() {
    let f = fixture("FROM busybox\nCOPY index.html /etc\nCOPY index.html /new/name.html\n");
    let (_, _) = build_ok(&f, &FakeRunner::default(), "t:1");
    let img = f.store.resolve("t:1").unwrap();
    assert!(img.layers[1].join("etc/index.html").is_file());
    assert!(img.layers[2].join("new/name.html").is_file());
}

fn build_err(dockerfile: &str) -> String {
    let f = fixture(dockerfile);
    let mut out = Vec::new();
    build(
        &f.store,
        Some(&FakeRunner::default()),
        &opts(&f, "bad:1"),
        &mut out,
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn bad_dockerfiles_fail_with_the_line() {
    let e = build_err("FROM busybox\nRUN true\nCOPPY a b\n");
    assert!(
        e.contains("line 3") && e.contains("unknown instruction \"COPPY\""),
        "{e}"
    );
    let e = build_err("FROM busybox\n\nCOPY nothere.txt /\n");
    assert!(
        e.contains("line 3") && e.contains("nothere.txt: file not found in build context"),
        "{e}"
    );
    let e = build_err("FROM busybox\nCOPY site/secret.key /\n");
    assert!(e.contains("excluded by .dockerignore"), "{e}");
    let e = build_err("FROM nosuchimage:1\n");
    assert!(
        e.contains("line 1") && e.contains("\"nosuchimage:1\" not found"),
        "{e}"
    );
    let e = build_err("FROM busybox\nRUN exit 3\n");
    assert!(
        e.contains("line 2") && e.contains("exited with code 3"),
        "{e}"
    );
    let e = build_err("FROM busybox\nCOPY ../../etc/passwd /\n");
    assert!(e.contains("outside the build context"), "{e}");
}

#[test]
fn add_extracts_local_tar_archives_and_copy_does_not() {
    let f = fixture("FROM busybox\nADD bundle.tar.gz /opt/\nCOPY bundle.tar.gz /raw/\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut b = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "pkg/file.txt", &b"abc"[..]).unwrap();
        b.finish().unwrap();
    }
    fs::write(f.context.path().join("bundle.tar.gz"), gz.finish().unwrap()).unwrap();
    build_ok(&f, &FakeRunner::default(), "t:2");
    let img = f.store.resolve("t:2").unwrap();
    assert_eq!(
        fs::read_to_string(img.layers[1].join("opt/pkg/file.txt")).unwrap(),
        "abc"
    );
    assert!(img.layers[2].join("raw/bundle.tar.gz").is_file());
}

#[test]
fn chown_entrypoint_and_cmd_forms() {
    let f = fixture(
        "FROM busybox\nCOPY --chown=nobody:nogroup index.html /a/\nCOPY --chown=123:456 index.html /b/\nENTRYPOINT [\"/bin/echo\"]\nCMD hello world\n",
    );
    build_ok(&f, &FakeRunner::default(), "t:3");
    let img = f.store.resolve("t:3").unwrap();
    let a = fs::metadata(img.layers[1].join("a/index.html")).unwrap();
    assert_eq!((a.uid(), a.gid()), (65534, 65534));
    let b = fs::metadata(img.layers[2].join("b/index.html")).unwrap();
    assert_eq!((b.uid(), b.gid()), (123, 456));
    assert_eq!(img.config.entrypoint, ["/bin/echo"]);
    assert_eq!(img.config.cmd, ["/bin/sh", "-c", "hello world"]);

    let e = build_err("FROM busybox\nCOPY --chown=nosuchuser index.html /\n");
    assert!(e.contains("line 2") && e.contains("nosuchuser"), "{e}");
}

#[test]
fn multi_stage_copies_from_stages_and_images() {
    let f = fixture(
        "FROM busybox AS builder\nRUN make\nFROM busybox\nCOPY --from=builder /ran-0 /out/\nCOPY --from=0 /etc /etc-copy/\nCOPY --from=busybox /bin/sh /bb\n",
    );
    let runner = FakeRunner::default();
    let (built, _) = build_ok(&f, &runner, "t:4");
    let img = f.store.resolve("t:4").unwrap();
    assert_eq!(
        img.layers.len(),
        4,
        "busybox + three COPYs, not the builder's RUN layer"
    );
    assert_eq!(
        fs::read_to_string(img.layers[1].join("out/ran-0")).unwrap(),
        "/bin/sh -c make"
    );
    assert!(img.layers[2].join("etc-copy/passwd").is_file());
    assert!(
        !img.layers[2].join("etc-copy/group").exists(),
        "whited out in the builder stage"
    );
    // /bin/sh is a link to /bin/busybox in the image: COPY takes the link.
    assert!(
        fs::symlink_metadata(img.layers[3].join("bb"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let (again, out) = build_ok(&f, &runner, "t:4");
    assert_eq!(again.id, built.id);
    assert_eq!(out.matches("Using cache").count(), 4, "{out}");

    let e = build_err("FROM busybox\nCOPY --from=nostage /x /y\n");
    assert!(
        e.contains("line 2") && e.contains("neither an earlier stage nor an image"),
        "{e}"
    );
    let e = build_err("FROM busybox AS a\nFROM busybox\nCOPY --from=a /nothing /y\n");
    assert!(
        e.contains("line 3") && e.contains("/nothing: not found"),
        "{e}"
    );
}

#[test]
fn scratch_images_resolve_to_a_root() {
    let f = fixture("FROM scratch\nENV A=1\n");
    build_ok(&f, &FakeRunner::default(), "meta:1");
    let img = f.store.resolve("meta:1").unwrap();
    assert_eq!(img.config.env, ["A=1"]);
    assert_eq!(img.layers.len(), 1, "an empty root for overlayfs");
    assert_eq!(fs::read_dir(&img.layers[0]).unwrap().count(), 0);

    let e = build_err("FROM scratch\n");
    assert!(e.contains("nothing to make an image of"), "{e}");
}

#[test]
fn chmod_sets_the_mode_of_what_is_copied() {
    let f = fixture("FROM busybox\nCOPY --chmod=0750 index.html /c/\nCOPY --chmod=600 site /s\n");
    build_ok(&f, &FakeRunner::default(), "t:5");
    let img = f.store.resolve("t:5").unwrap();
    let mode =
        |p: &str, layer: usize| fs::metadata(img.layers[layer].join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("c/index.html", 1), 0o750);
    assert_eq!(
        mode("c", 1),
        0o755,
        "the created destination keeps its mode"
    );
    assert_eq!(mode("s/a.txt", 2), 0o600);

    let e = build_err("FROM busybox\nCOPY --chmod=rwx index.html /\n");
    assert!(e.contains("line 2") && e.contains("octal"), "{e}");
}
