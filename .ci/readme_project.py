#!/usr/bin/env python3
"""Builds and runs the README's examples as a new project would: a fresh
crate whose Cargo.toml is the README's dependency block, and whose
main.rs is each `rust` block of the README in turn. The juggler crates
come from this workspace (a `[patch.crates-io]`, since they may not be
published yet) and every other crate at the versions of the workspace's
lock file, so the build reuses the workspace's target directory.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["juggler-core", "juggler-driver", "juggler-tokio", "juggler-smol", "juggler-rpc"]


def blocks(text, language):
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def main():
    readme = (ROOT / "README.md").read_text()
    dependencies = next(block for block in blocks(readme, "toml") if "[dependencies]" in block)
    examples = blocks(readme, "rust")
    if not examples:
        sys.exit("the README has no rust example")
    project = ROOT / "target" / "readme-project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "src").mkdir(parents=True)
    patch = "\n".join(f'{crate} = {{ path = "{ROOT / crate}" }}' for crate in CRATES)
    (project / "Cargo.toml").write_text(
        '[package]\nname = "readme-project"\nversion = "0.0.0"\nedition = "2021"\n'
        f"publish = false\n\n[workspace]\n\n{dependencies}\n[patch.crates-io]\n{patch}\n"
    )
    shutil.copy(ROOT / "Cargo.lock", project / "Cargo.lock")
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    for number, example in enumerate(examples, 1):
        (project / "src" / "main.rs").write_text(example)
        print(f"README example {number} of {len(examples)}: cargo run in a new project", flush=True)
        subprocess.run(["cargo", "run", "--quiet", "--manifest-path", str(project / "Cargo.toml")],
                       check=True, env=env, timeout=900)


if __name__ == "__main__":
    main()
