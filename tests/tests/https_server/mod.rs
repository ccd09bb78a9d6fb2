//! An HTTPS test server the test starts (a Python script of the tests'
//! own) with a certificate from a CA made for the test by openssl, for
//! the API server to call: admission webhooks, aggregated APIs. Stopped
//! by its PID on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::api_common::{stderr, stdout};

pub struct HttpsServer {
    child: Child,
    pub port: u16,
    /// The CA's PEM certificate, base64-encoded as a caBundle takes it.
    pub ca_b64: String,
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(kc_tests::require_program("openssl", "openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    stdout(&out)
}

impl HttpsServer {
    /// Starts `tests/<script>` with the certificate (for 127.0.0.1 and
    /// the DNS names `sans`), its key and `extra` as arguments; it must
    /// print `listening on <port>` first.
    pub fn start(script: &str, sans: &[&str], extra: &[&str]) -> Self {
        let python = kc_tests::require_program("python3", "python3");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=kc-e2e-ca"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
        openssl(d, &ca);
        let mut csr = vec!["req", "-new", "-subj", "/CN=kc-e2e-server"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(d, &csr);
        let mut names = vec!["IP:127.0.0.1".to_string()];
        names.extend(sans.iter().map(|s| format!("DNS:{s}")));
        std::fs::write(
            d.join("ext.cnf"),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
                names.join(",")
            ),
        )
        .expect("write ext.cnf");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.crt",
            ],
        );
        let ca_b64 = openssl(d, &["base64", "-A", "-in", "ca.crt"])
            .trim()
            .to_string();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(script);
        let mut child = Command::new(python)
            .arg(&script)
            .arg(d.join("server.crt"))
            .arg(d.join("server.key"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout piped"))
            .read_line(&mut line)
            .expect("the server's first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{} printed {line:?}", script.display()));
        Self {
            child,
            port,
            ca_b64,
            dir,
        }
    }

    /// A file in the server's own temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
