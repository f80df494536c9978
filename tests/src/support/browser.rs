//! Headless Chromium and the pinned browser reference client, for tests.
//!
//! The browser tests need Debian's `chromium` and the npm packages pinned in
//! `tests/browser/package-lock.json` (installed with `npm ci` on first use).
//! Outside CI a missing piece skips the test loudly; with `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::cases::web::TempDir;

/// What the browser tests need, found once per test process.
#[derive(Debug)]
pub struct Kit {
    chromium: PathBuf,
    esbuild: PathBuf,
}

/// The folder of the npm project with the pinned packages.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Reports a missing test dependency: fails under CI, else skips loudly.
/// Returns `None` so callers can `?`-style return.
pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing, and CI=true requires it");
    }
    eprintln!("SKIPPED: {what} is missing; install it (see .ci/run) to run this test");
    None
}

/// Chromium and esbuild, installing the npm packages if needed.
pub fn kit() -> Option<&'static Kit> {
    static KIT: OnceLock<Result<Kit, String>> = OnceLock::new();
    match KIT.get_or_init(find_kit) {
        Ok(kit) => Some(kit),
        Err(what) => missing(what),
    }
}

fn find_kit() -> Result<Kit, String> {
    let chromium = std::env::var_os("JUGGLER_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .map(PathBuf::from)
                .into_iter()
                .find(|p| p.exists())
        })
        .ok_or("chromium (Debian package `chromium`)")?;
    let dir = browser_dir();
    let esbuild = dir.join("node_modules/.bin/esbuild");
    if !esbuild.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .map_err(|err| format!("npm ({err})"))?;
        if !status.success() || !esbuild.exists() {
            return Err(format!(
                "npm packages of {} (`npm ci` failed)",
                dir.display()
            ));
        }
    }
    Ok(Kit { chromium, esbuild })
}

impl Kit {
    /// Bundles `entry` (a path under `tests/browser`) with its npm imports
    /// into `out` as one ES module.
    pub fn bundle(&self, entry: &str, out: &Path) {
        let status = Command::new(&self.esbuild)
            .arg(browser_dir().join(entry))
            .args(["--bundle", "--format=esm", "--log-level=warning"])
            .arg(format!("--outfile={}", out.display()))
            .status()
            .expect("run esbuild");
        assert!(status.success(), "esbuild failed on {entry}");
    }

    /// Opens `url` in a fresh headless Chromium, closed on drop.
    pub fn open(&self, url: &str) -> Browser {
        let profile = TempDir::new("chromium-profile");
        let mut command = Command::new(&self.chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("start chromium");
        Browser {
            child,
            _profile: profile,
        }
    }
}

/// A running headless Chromium; killed (with its helper processes) on drop.
pub struct Browser {
    child: Child,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium forks helpers into its process group: end them all.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
