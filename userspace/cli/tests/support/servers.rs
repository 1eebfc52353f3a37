//! Real servers for the HTTP tests: nginx (TLS, HTTP/2, redirects) with a throw-away CA made by
//! openssl, and Squid as a forward proxy. Each is killed on drop; each start waits (bounded)
//! for its port.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, tool};

/// Waits until something accepts on `port`, at most `secs` seconds.
pub fn wait_port_for(port: u16, secs: u64, child: &mut Child, what: &str, log: &Path) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on {port} within {secs} s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A CA and server certificates made by openssl for this test only.
pub struct TestCa {
    pub dir: PathBuf,
    /// The CA certificate (PEM).
    pub ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// None (with the reason printed) when openssl is missing.
    pub fn new(dir: &Path) -> Option<TestCa> {
        if tool("openssl").is_none() {
            crate::common::skip("openssl is not installed (tests/setup.sh installs it)");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=httpblk test CA",
            ],
        );
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nserial = serial\nunique_subject = no\n\
             new_certs_dir = .\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
        )
        .unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "10\n").unwrap();
        Some(TestCa {
            ca: dir.join("ca.pem"),
            dir: dir.to_path_buf(),
        })
    }

    /// A server certificate NAME.pem (key NAME.key) for `san` (e.g.
    /// "DNS:localhost,IP:127.0.0.1"), valid from `start` to `end` (openssl's YYMMDDHHMMSSZ),
    /// or for two days from now.
    pub fn issue(&self, name: &str, san: &str, dates: Option<(&str, &str)>) -> (PathBuf, PathBuf) {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=httpblk test server",
            ],
        );
        std::fs::write(self.dir.join(&ext), format!("subjectAltName={san}\n")).unwrap();
        let mut args = vec![
            "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in",
            &csr, "-out", &pem, "-extfile", &ext,
        ];
        match dates {
            Some((s, e)) => args.extend(["-startdate", s, "-enddate", e]),
            None => args.extend(["-days", "2"]),
        }
        openssl(&self.dir, &args);
        (self.dir.join(pem), self.dir.join(key))
    }
}

/// nginx running `servers` (the `server { ... }` blocks) from a config in `dir`.
pub struct Nginx {
    child: Child,
    pub dir: PathBuf,
}

impl Nginx {
    /// None (with the reason printed) when nginx is missing. `ports` are waited for.
    pub fn start(dir: &Path, servers: &str, ports: &[u16]) -> Option<Nginx> {
        let Some(nginx) = tool("nginx") else {
            crate::common::skip("nginx is not installed (tests/setup.sh installs it)");
            return None;
        };
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log; \
                 events {{}} http {{ \
                 log_format t '$request_uri $status $server_protocol $connection'; \
                 access_log {d}/access.log t; keepalive_requests 100000; \
                 client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; \
                 uwsgi_temp_path {d}; scgi_temp_path {d}; {servers} }}"
            ),
        )
        .unwrap();
        let mut child = Command::new(nginx)
            .args([
                "-e",
                &format!("{d}/error.log"),
                "-c",
                conf.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for &p in ports {
            wait_port_for(p, 10, &mut child, "nginx", &dir.join("error.log"));
        }
        Some(Nginx {
            child,
            dir: dir.to_path_buf(),
        })
    }

    /// Access log lines: `URI STATUS PROTOCOL CONNECTION`.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Squid as a forward proxy with a memory cache, on a free loopback port.
pub struct Squid {
    child: Child,
    service: String,
    pub port: u16,
    pub dir: PathBuf,
}

impl Squid {
    /// None (with the reason printed) when squid is missing.
    pub fn start(dir: &Path) -> Option<Squid> {
        let Some(squid) = tool("squid") else {
            crate::common::skip("squid is not installed (tests/setup.sh installs it)");
            return None;
        };
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        // Squid drops root for its own user, which must reach and write its directory.
        for a in dir
            .ancestors()
            .take_while(|a| a.starts_with(std::env::temp_dir()))
        {
            let mode = if a == dir { 0o777 } else { 0o755 };
            let _ = std::fs::set_permissions(a, std::fs::Permissions::from_mode(mode));
        }
        let port = free_port();
        let d = dir.display();
        let conf = dir.join("squid.conf");
        std::fs::write(
            &conf,
            format!(
                "http_port 127.0.0.1:{port}\n\
                 pid_filename {d}/squid.pid\n\
                 cache_log {d}/cache.log\n\
                 access_log stdio:{d}/access.log squid\n\
                 cache_store_log none\n\
                 coredump_dir {d}\n\
                 cache_mem 64 MB\n\
                 maximum_object_size_in_memory 8 MB\n\
                 memory_cache_mode always\n\
                 http_access allow all\n\
                 icp_port 0\n\
                 htcp_port 0\n\
                 shutdown_lifetime 0 seconds\n\
                 dns_nameservers 127.0.0.1\n\
                 refresh_pattern . 0 20% 4320\n"
            ),
        )
        .unwrap();
        // Squid names its shared memory after its service name: two squids
        // under one name (parallel tests, a killed run's leftovers) collide.
        let service = format!("httpblk{}x{port}", std::process::id());
        let mut child = Command::new(squid)
            .args(["-N", "-n", &service, "-f", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        wait_port_for(port, 20, &mut child, "squid", &dir.join("cache.log"));
        Some(Squid {
            child,
            service,
            port,
            dir: dir.to_path_buf(),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Access log lines (squid's native format: ... RESULT/STATUS BYTES METHOD URL ...).
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits (bounded) until the access log has at least `n` lines: squid writes it
    /// after each transaction, buffered.
    pub fn wait_log(&self, n: usize) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let l = self.log();
            if l.len() >= n || t0.elapsed() > Duration::from_secs(10) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed squid leaves its segments in /dev/shm.
        let prefix = format!("{}-", self.service);
        if let Ok(entries) = std::fs::read_dir("/dev/shm") {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}
