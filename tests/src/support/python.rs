//! The pinned Python reference peer (hat-juggler), for interop tests.
//!
//! [`start_peer`] makes sure a virtual environment with the pinned packages
//! exists under `target/python-venv` (created once, then reused) and starts
//! `tests/python/peer.py` in it: a small program that drives hat-juggler
//! through newline-delimited JSON commands on its stdin and reports what
//! happens as newline-delimited JSON events on its stdout (the protocol is
//! documented at the top of that script).
//!
//! Nothing here depends on an async runtime: the child is a
//! `std::process::Child`, and a plain thread forwards its stdout into a
//! runtime-agnostic channel, so the same cases run on every [`Backend`](crate::Backend).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc;

/// The pinned 0.5 reference peer; newer hat-util breaks hat-juggler's import.
pub const REQUIREMENTS: [&str; 4] = [
    "hat-juggler==0.5.14",
    "hat-util==0.6.8",
    "hat-aio==0.7.5",
    "hat-json==0.5.16",
];

/// One pinned Python reference peer: its packages, the exact versions of
/// what they pull in, the venv it lives in and the script it runs.
#[derive(Debug)]
pub struct PeerKind {
    /// The pinned packages (`pip install` arguments).
    pub requirements: &'static [&'static str],
    /// The constraints file under `tests/python`.
    constraints: &'static str,
    /// The venv's directory name under the target directory.
    venv: &'static str,
    /// The script under `tests/python`.
    script: &'static str,
    /// A Python statement that must run once the packages are in.
    import_check: &'static str,
    /// Its venv once set up in this process, or why it could not be.
    ready: OnceLock<Result<PathBuf, String>>,
}

/// hat-juggler 0.5.14 (the 0.5 generation), driven by `peer.py`.
pub static PEER_0_5: PeerKind = PeerKind {
    requirements: &REQUIREMENTS,
    constraints: "constraints.txt",
    venv: "python-venv",
    script: "peer.py",
    import_check: "from hat import juggler",
    ready: OnceLock::new(),
};

/// hat-juggler 0.6.26 (the 0.6 generation), driven by `peer07.py`.
pub static PEER_0_6: PeerKind = PeerKind {
    requirements: &[
        "hat-juggler==0.6.26",
        "hat-aio==0.7.13",
        "hat-json==0.6.8",
        "hat-util==0.6.22",
    ],
    constraints: "constraints-0.6.txt",
    venv: "python-venv-0.6",
    script: "peer07.py",
    import_check: "from hat import juggler",
    ready: OnceLock::new(),
};

/// hat-juggler 0.7.6 (the 0.7 generation), driven by `peer07.py`.
pub static PEER_0_7: PeerKind = PeerKind {
    requirements: &[
        "hat-juggler==0.7.6",
        "hat-aio==0.7.13",
        "hat-json==0.6.8",
        "hat-util==0.6.22",
    ],
    constraints: "constraints-0.7.txt",
    venv: "python-venv-0.7",
    script: "peer07.py",
    import_check: "from hat import juggler",
    ready: OnceLock::new(),
};

/// Python `websockets` 17.4 (client and server, permessage-deflate on by
/// default) and an `aiohttp` 3.13.5 client, driven by `deflate_peer.py`.
pub static PEER_DEFLATE: PeerKind = PeerKind {
    requirements: &["websockets==17.4", "aiohttp==3.13.5"],
    constraints: "constraints-deflate.txt",
    venv: "python-venv-deflate",
    script: "deflate_peer.py",
    import_check: "import aiohttp, websockets",
    ready: OnceLock::new(),
};

/// The file in the venv whose content says which requirements it holds.
const MARKER: &str = "juggler-tests-requirements.txt";

/// The Python that creates the venv: `$JUGGLER_TEST_PYTHON` or `python3`.
fn base_python() -> OsString {
    std::env::var_os("JUGGLER_TEST_PYTHON").unwrap_or_else(|| "python3".into())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the
/// workspace root if relative) or the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().unwrap_or(manifest_dir);
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

/// Where the 0.5 peer's venv lives.
pub fn venv_dir() -> PathBuf {
    PEER_0_5.venv_dir()
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The 0.5 peer's script.
pub fn peer_script() -> PathBuf {
    PEER_0_5.script()
}

impl PeerKind {
    /// Where its venv lives.
    pub fn venv_dir(&self) -> PathBuf {
        target_dir().join(self.venv)
    }

    /// The script it runs.
    pub fn script(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join(self.script)
    }

    /// Exact versions of everything its pinned packages pull in.
    fn constraints_file(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join(self.constraints)
    }

    fn marker_text(&self) -> String {
        let constraints = std::fs::read_to_string(self.constraints_file()).unwrap_or_default();
        format!("{}\n{constraints}", self.requirements.join(" "))
    }

    fn is_ready(&self, venv: &Path) -> bool {
        venv_python(venv).exists()
            && std::fs::read_to_string(venv.join(MARKER))
                .is_ok_and(|text| text == self.marker_text())
    }

    /// Its venv, set up on the first call of the process; an error says
    /// why it could not be.
    pub fn venv(&'static self) -> Result<&'static Path, String> {
        self.ready
            .get_or_init(|| setup_venv(self))
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Starts a peer of this kind, or says loudly why there is none and
    /// returns `None`.
    ///
    /// # Panics
    ///
    /// When the peer cannot be had and `CI=true`: CI must run the interop
    /// tests.
    pub fn start(&'static self) -> Option<PythonPeer> {
        match self
            .venv()
            .and_then(|venv| PythonPeer::spawn_script(venv, &self.script()))
        {
            Ok(peer) => Some(peer),
            Err(err) if in_ci() => {
                panic!("the Python reference peer is missing and CI=true: {err}")
            }
            Err(err) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: Python interop test: the reference peer ({}) is not available: {err}",
                    self.requirements.join(" ")
                );
                None
            }
        }
    }
}

/// The venv holding the pinned 0.5 peer, set up on the first call of the
/// process; an error says why it could not be.
pub fn venv() -> Result<&'static Path, String> {
    PEER_0_5.venv()
}

/// Builds the venv in a directory of its own, then renames it into place:
/// test processes running at the same time never see a half-built venv,
/// and the one that loses the race uses the winner's.
fn setup_venv(kind: &PeerKind) -> Result<PathBuf, String> {
    let venv = kind.venv_dir();
    if kind.is_ready(&venv) {
        return Ok(venv);
    }
    let started = Instant::now();
    let parent = venv.parent().expect("the venv has a parent");
    std::fs::create_dir_all(parent)
        .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    let building = parent.join(format!("{}.building-{}", kind.venv, std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    if let Err(err) = build_venv(kind, &building) {
        let _ = std::fs::remove_dir_all(&building);
        return Err(err);
    }
    if venv.exists() && !kind.is_ready(&venv) {
        // An outdated or broken venv: replace it.
        let _ = std::fs::remove_dir_all(&venv);
    }
    let renamed = std::fs::rename(&building, &venv);
    if renamed.is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    match renamed {
        Ok(()) => {}
        Err(_) if kind.is_ready(&venv) => {} // Another process was faster.
        Err(err) => return Err(format!("cannot move the venv into place: {err}")),
    }
    // Not captured by the test harness on purpose: a one-time cost worth
    // seeing.
    let _ = writeln!(
        std::io::stderr(),
        "juggler-tests: set up the Python reference peer in {} ({:.1?})",
        venv.display(),
        started.elapsed()
    );
    Ok(venv)
}

fn build_venv(kind: &PeerKind, dir: &Path) -> Result<(), String> {
    run(
        Command::new(base_python()).args(["-m", "venv"]).arg(dir),
        "create a Python venv",
    )?;
    let python = venv_python(dir);
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--constraint",
            ])
            .arg(kind.constraints_file())
            .args(kind.requirements),
        "pip install the pinned peer",
    )?;
    run(
        Command::new(&python).args(["-c", kind.import_check]),
        kind.import_check,
    )?;
    std::fs::write(dir.join(MARKER), kind.marker_text())
        .map_err(|err| format!("cannot write the venv marker: {err}"))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot {what}: {command:?} failed to start: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    Err(format!(
        "cannot {what}: {command:?} exited with {}:\n{tail}",
        output.status
    ))
}

/// Whether the run is CI's, where a missing peer is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Starts a 0.5 peer, or says loudly why there is none and returns
/// `None`.
///
/// # Panics
///
/// When the peer cannot be had and `CI=true`: CI must run the interop tests.
pub fn start_peer() -> Option<PythonPeer> {
    PEER_0_5.start()
}

/// A running `peer.py`; killed when dropped.
pub struct PythonPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Value>,
    stderr: Option<JoinHandle<String>>,
}

impl std::fmt::Debug for PythonPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonPeer")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl PythonPeer {
    /// Starts `peer.py` with the venv's Python.
    pub fn spawn(venv: &Path) -> Result<PythonPeer, String> {
        Self::spawn_script(venv, &peer_script())
    }

    /// Starts `script` with the venv's Python.
    pub fn spawn_script(venv: &Path, script: &Path) -> Result<PythonPeer, String> {
        let mut child = Command::new(venv_python(venv))
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", script.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (events_tx, events) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("python-peer-stdout".into())
            .spawn(move || forward_events(stdout, events_tx))
            .map_err(|err| format!("cannot start a thread: {err}"))?;
        let stderr = std::thread::Builder::new()
            .name("python-peer-stderr".into())
            .spawn(move || {
                let mut text = Vec::new();
                let _ = stderr.read_to_end(&mut text);
                String::from_utf8_lossy(&text).into_owned()
            })
            .map_err(|err| format!("cannot start a thread: {err}"))?;
        Ok(PythonPeer {
            stdin: child.stdin.take(),
            child,
            events,
            stderr: Some(stderr),
        })
    }

    /// Sends one command (a JSON object with a `cmd` field).
    ///
    /// # Panics
    ///
    /// When the peer is gone.
    pub fn command(&mut self, command: &Value) {
        let mut line = command.to_string();
        line.push('\n');
        let written = match &mut self.stdin {
            Some(stdin) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Ok(()),
        };
        if let Err(err) = written {
            let why = self.exit_report();
            panic!("cannot send a command to the Python peer ({err}); {why}");
        }
    }

    /// The next event (a JSON object with an `event` field). Use a hang
    /// guard such as [`within`](crate::support::backend::within) around it.
    ///
    /// # Panics
    ///
    /// When the peer has exited.
    pub async fn next_event(&mut self) -> Value {
        match self.events.recv().await {
            Some(event) => event,
            None => {
                let why = self.exit_report();
                panic!("the Python peer ended before the awaited event; {why}")
            }
        }
    }

    /// Waits for the peer to exit and says how it did, stderr included.
    fn exit_report(&mut self) -> String {
        self.stdin = None;
        // It has closed its stdout or stdin, so it is on its way out; give
        // it a moment to finish writing its stderr before making sure.
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let status = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        format!("it exited with {status:?}; its stderr:\n{stderr}")
    }
}

fn forward_events(stdout: impl Read, events: mpsc::UnboundedSender<Value>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let event = serde_json::from_str(&line).unwrap_or_else(|err| {
            let mut shown = String::new();
            let _ = write!(shown, "{:.200}", line.trim_end());
            serde_json::json!({"event": "unparsable", "line": shown, "error": err.to_string()})
        });
        if events.send(event).is_err() {
            return;
        }
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(stderr) = self.stderr.take().and_then(|thread| thread.join().ok()) {
                eprintln!("the Python peer's stderr:\n{stderr}");
            }
        }
    }
}
