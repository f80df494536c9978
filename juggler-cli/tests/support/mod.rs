//! Running the built `juggler` binary and the Python reference peers.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use juggler_tests::support::python::{PeerKind, PythonPeer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Catches a hang; never a speed assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// `future`, or a panic naming `what` after [`HANG_GUARD`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// The binary under test, with its output piped.
pub fn juggler<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_juggler"));
    command
        .args(args)
        .env("RUST_LOG", "juggler=debug,warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// How a finished run of the binary went.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary to its end.
pub async fn run<I, S>(args: I) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = within("juggler to exit", juggler(args).output())
        .await
        .expect("the binary runs");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `juggler` whose stdout is read line by line.
pub struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Starts the binary.
    pub fn start<I, S>(args: I) -> Running
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = juggler(args).spawn().expect("the binary starts");
        let stdout = child.stdout.take().expect("piped");
        Running {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Its next line of stdout.
    pub async fn next_text(&mut self) -> String {
        match within("a line from juggler", self.lines.next_line()).await {
            Ok(Some(line)) => line,
            other => panic!(
                "no line from juggler ({other:?}); stderr:\n{}",
                self.stderr().await
            ),
        }
    }

    /// Its next line of stdout, as JSON.
    pub async fn next_line(&mut self) -> Value {
        let text = self.next_text().await;
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
    }

    /// Reads its stderr until a line contains `needle`; that line.
    pub async fn stderr_line_with(&mut self, needle: &str) -> String {
        let stderr = self.child.stderr.as_mut().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        within(&format!("a log line with {needle}"), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("juggler's stderr ended with no line containing {needle}");
        })
        .await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill");
    }

    /// Waits for it to exit: its status, and that stdout has no more lines.
    pub async fn wait(&mut self) -> ExitStatus {
        let rest = within("juggler's stdout to end", self.lines.next_line()).await;
        assert!(matches!(rest, Ok(None)), "unexpected output: {rest:?}");
        within("juggler to exit", self.child.wait())
            .await
            .expect("wait")
    }

    /// What it said on stderr (once it has exited or been killed).
    pub async fn stderr(&mut self) -> String {
        let _ = self.child.start_kill();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = within("juggler's stderr", stderr.read_to_string(&mut text)).await;
        }
        text
    }
}

/// A `juggler serve` of `file` and the URL it printed.
pub async fn serve(file: &Path, extra: &[&str]) -> (Running, String) {
    let mut args = vec!["serve".to_owned(), file.display().to_string()];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let mut server = Running::start(args);
    let url = server.next_text().await;
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/ws"),
        "{url}"
    );
    (server, url)
}

/// A fresh folder for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("juggler-cli")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Replaces `path`'s content as editors do: a new file renamed over it.
pub fn replace_file(path: &Path, value: &Value) {
    let next = path.with_extension("json.new");
    std::fs::write(&next, value.to_string()).expect("write");
    std::fs::rename(&next, path).expect("rename");
}

/// A started peer of `kind`, or `None` (said as SKIPPED) where Python is
/// missing outside CI.
pub fn peer(kind: &'static PeerKind) -> Option<PythonPeer> {
    kind.start()
}

/// The peer's next event named `name`, skipping others.
pub async fn event(peer: &mut PythonPeer, name: &str) -> Value {
    within(&format!("the peer's {name} event"), async {
        loop {
            let event = peer.next_event().await;
            if event["event"] == name {
                return event;
            }
            assert_ne!(event["event"], "error", "the peer failed: {event}");
        }
    })
    .await
}

/// A Python server of the peer's generation listening with no autoflush
/// delay; its URL.
pub async fn python_server(peer: &mut PythonPeer, listen: Value) -> String {
    let mut command = json!({"cmd": "listen", "autoflush_delay": 0});
    if let (Some(command), Value::Object(extra)) = (command.as_object_mut(), listen) {
        command.extend(extra);
    }
    peer.command(&command);
    let port = event(peer, "listening").await["port"].clone();
    format!("ws://127.0.0.1:{port}/ws")
}
