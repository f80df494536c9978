//! Following the served file: each change to it becomes the group's state,
//! diffed to every client; a version that does not parse is logged and
//! the last good state stays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use juggler_tokio::Group;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::exit::CliError;

/// An editor writes a file in several steps (truncate, write, rename):
/// events this close together are taken as one change.
const SETTLE: Duration = Duration::from_millis(50);

/// How often the fallback watcher looks, where the system's file events
/// are not available.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Reads a file of JSON; the error says why it can't.
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    serde_json::from_slice(&text).map_err(|err| format!("{}: not JSON: {err}", path.display()))
}

/// Follows the file while it lives.
pub struct Follow {
    _watcher: Box<dyn Watcher + Send>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts following `path` into `group`'s state.
pub fn follow(path: PathBuf, group: Group) -> Result<Follow, CliError> {
    let (changed, mut changes) = mpsc::unbounded_channel();
    let name = path.file_name().map(ToOwned::to_owned);
    let on_event = move |event: notify::Result<Event>| match event {
        Ok(event) if touches_content(&event.kind) => {
            if event
                .paths
                .iter()
                .any(|changed| changed.file_name() == name.as_deref())
            {
                let _ = changed.send(());
            }
        }
        Ok(_) => {}
        Err(err) => warn!("watching the file: {err}"),
    };
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
        _ => PathBuf::from("."),
    };
    let watcher = watch_folder(&folder, on_event).map_err(|err| {
        CliError::Usage(format!(
            "invalid value for '<FILE.json>': cannot watch {}: {err}",
            folder.display()
        ))
    })?;
    let task = tokio::spawn(async move {
        while changes.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while changes.try_recv().is_ok() {}
            reload(&path, &group);
        }
    });
    Ok(Follow {
        _watcher: watcher,
        task,
    })
}

/// The system's file events on `folder`, or polling where they fail.
fn watch_folder(
    folder: &Path,
    on_event: impl notify::EventHandler + Clone,
) -> notify::Result<Box<dyn Watcher + Send>> {
    let native = notify::recommended_watcher(on_event.clone()).and_then(|mut watcher| {
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match native {
        Ok(watcher) => Ok(Box::new(watcher)),
        Err(err) => {
            warn!("file events unavailable ({err}); polling every {POLL_INTERVAL:?}");
            let config = notify::Config::default()
                .with_poll_interval(POLL_INTERVAL)
                .with_compare_contents(true);
            let mut watcher = notify::PollWatcher::new(on_event, config)?;
            watcher.watch(folder, RecursiveMode::NonRecursive)?;
            Ok(Box::new(watcher))
        }
    }
}

/// Whether an event can mean new content: not a mere read, which our own
/// reload makes.
fn touches_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(access) => *access == AccessKind::Close(AccessMode::Write),
        EventKind::Other => false,
        _ => true,
    }
}

fn reload(path: &Path, group: &Group) {
    match read_json(path) {
        Ok(state) if *group.state() == state => {}
        Ok(state) => {
            info!(file = %path.display(), "reloaded");
            group.set_state(state);
        }
        Err(err) => error!("{err}; keeping the last good state"),
    }
}
