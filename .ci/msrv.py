#!/usr/bin/env python3
"""The MSRV of the published library crates, derived from what they build:
the newest `rust-version` among their normal and build dependencies, all
features on, for the host platform (dev-dependencies left out: they build
only our tests).

Prints the derived version and the crate that sets it; `--print`, the
version alone. With `--check`, fails unless it equals the workspace's
declared `rust-version`.
"""

import json
import subprocess
import sys

LIBRARIES = ["juggler-core", "juggler-deflate", "juggler-driver", "juggler-tokio", "juggler-smol", "juggler-rpc", "juggler-redis"]


def version_key(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    host = next(
        line.split(": ", 1)[1]
        for line in subprocess.run(
            ["rustc", "-vV"], check=True, capture_output=True, text=True
        ).stdout.splitlines()
        if line.startswith("host: ")
    )
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features",
             "--filter-platform", host],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    roots = [id for id, package in packages.items()
             if package["name"] in LIBRARIES and package["source"] is None]
    seen, stack = set(), list(roots)
    while stack:
        id = stack.pop()
        if id in seen:
            continue
        seen.add(id)
        for dep in nodes[id]["deps"]:
            if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    declared = {packages[id]["rust_version"] for id in roots}
    newest, by = "1.0", None
    for id in seen - set(roots):
        version = packages[id].get("rust_version")
        if version and version_key(version) > version_key(newest):
            newest, by = version, f'{packages[id]["name"]} {packages[id]["version"]}'
    if "--print" in sys.argv:
        print(newest)
        return
    print(f"derived MSRV {newest} (set by {by}); declared {', '.join(sorted(declared))}")
    if "--check" in sys.argv and {version_key(v) for v in declared} != {version_key(newest)}:
        print("the declared rust-version must be the derived one", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
