//! Real servers for the tests, on 127.0.0.1 and free ports, stopped when dropped: an
//! S3-compatible store (moto's server mode), a fault-injecting TCP proxy in front of it,
//! and a small static HTTP server for task artifacts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_for_port(port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// moto's S3 server. `make test-deps` installs it into target/test-venv.
pub struct S3Server {
    child: Child,
    pub port: u16,
}

impl S3Server {
    pub fn start() -> S3Server {
        S3Server::start_with_env(&[])
    }

    /// A server that appends every request it serves (method, URL with its query) to `log`
    /// as JSON lines: moto's own request recorder.
    pub fn start_recording(log: &Path) -> S3Server {
        let log = log.to_string_lossy();
        S3Server::start_with_env(&[
            ("MOTO_ENABLE_RECORDING", "True"),
            ("MOTO_RECORDER_FILEPATH", &log),
        ])
    }

    fn start_with_env(env: &[(&str, &str)]) -> S3Server {
        let bin = std::env::var("POLYMR_TEST_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/moto_server")
            });
        assert!(
            bin.exists(),
            "{} is missing: run `make test-deps` (it installs moto[server] into target/test-venv)",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server { child, port };
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "moto_server did not listen on {port}"
        );
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test-side S3 client, talking to the test server only.
pub fn s3_client(endpoint: &str) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    (rt, aws_sdk_s3::Client::from_conf(conf))
}

pub fn create_bucket(rt: &tokio::runtime::Runtime, c: &aws_sdk_s3::Client, bucket: &str) {
    rt.block_on(c.create_bucket().bucket(bucket).send())
        .expect("create bucket");
}

pub fn put(
    rt: &tokio::runtime::Runtime,
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) {
    rt.block_on(
        c.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send(),
    )
    .expect("put object");
}

pub fn get(
    rt: &tokio::runtime::Runtime,
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Vec<u8> {
    rt.block_on(async {
        let out = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get object");
        out.body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    })
}

/// What the proxy does to the connections it relays.
#[derive(Default)]
pub struct Faults {
    /// The first N connections get `503 Slow Down` without reaching the server.
    pub refuse_first: AtomicU64,
    /// The next N connections are cut after `cut_after` bytes of response.
    pub cut_next: AtomicU64,
    pub cut_after: AtomicU64,
    /// The next N connections stall for `stall_ms` after `cut_after` bytes, then go on.
    pub stall_next: AtomicU64,
    pub stall_ms: AtomicU64,
    pub connections: AtomicU64,
}

fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// A TCP proxy in front of `upstream` that injects [`Faults`].
pub struct FaultProxy {
    pub port: u16,
    pub faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let faults = Arc::new(Faults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (faults.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let f = f.clone();
                        std::thread::spawn(move || relay(client, upstream, &f));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FaultProxy { port, faults, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn relay(mut client: TcpStream, upstream: u16, faults: &Faults) {
    faults.connections.fetch_add(1, Ordering::SeqCst);
    if take(&faults.refuse_first) {
        let mut buf = [0u8; 4096];
        let _ = client.set_read_timeout(Some(Duration::from_millis(500)));
        let _ = client.read(&mut buf);
        let _ = client
            .write_all(b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let cut = take(&faults.cut_next);
    let stall = !cut && take(&faults.stall_next);
    let limit = faults.cut_after.load(Ordering::SeqCst);
    let stall_ms = faults.stall_ms.load(Ordering::SeqCst);
    let (mut c2, mut s2) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let mut sent = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    let mut stalled = false;
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if (cut || stall) && sent + n as u64 > limit && !stalled {
            let keep = (limit - sent.min(limit)) as usize;
            let _ = client.write_all(&buf[..keep]);
            if cut {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                break;
            }
            std::thread::sleep(Duration::from_millis(stall_ms));
            stalled = true;
            if client.write_all(&buf[keep..n]).is_err() {
                break;
            }
            sent += n as u64;
            continue;
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Serves the files under `root` over HTTP/1.1 GET, one connection at a time per thread.
pub struct StaticServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl StaticServer {
    pub fn start(root: PathBuf) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let root = root.clone();
                        std::thread::spawn(move || serve(conn, &root));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        StaticServer { port, stop }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut conn: TcpStream, root: &Path) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
            break;
        }
    }
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let response = match std::fs::read(root.join(&path)) {
        Ok(body) if !path.contains("..") => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend(body);
            r
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = conn.write_all(&response);
}

/// A real SMTP server (aiosmtpd, from target/test-venv) delivering into a maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(maildir: PathBuf) -> SmtpServer {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make test-deps`",
            python.display()
        );
        let port = free_port();
        let child = Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let server = SmtpServer {
            child,
            port,
            maildir,
        };
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "aiosmtpd did not listen on {port}"
        );
        server
    }

    /// The messages delivered so far, raw.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP server that records the bodies POSTed to it, answering 500 to the first
/// `fail_first` requests and 200 after.
pub struct HookServer {
    pub port: u16,
    pub bodies: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl HookServer {
    pub fn start(fail_first: u64) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, r, s) = (bodies.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let n = r.fetch_add(1, Ordering::SeqCst);
                        receive(conn, n < fail_first, &b);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HookServer {
            port,
            bodies,
            requests,
            stop,
        }
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn receive(mut conn: TcpStream, fail: bool, bodies: &std::sync::Mutex<Vec<Vec<u8>>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    let mut length = 0usize;
    let _ = reader.read_line(&mut line);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let status = if fail {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    if !fail {
        if let Ok(mut b) = bodies.lock() {
            b.push(body);
        }
    }
    let _ = conn.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}
