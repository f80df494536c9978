"""Reference bytes for the compression rows of docs/performance.md: what
hat-juggler 0.5's aiohttp server (``compress=True``) puts on the wire for
the same state and changes as juggler-bench's ``compression-wire``.

aiohttp compresses each message with ``zlib.compressobj(level=-1,
wbits=-15)`` and a sync flush, the trailer removed (RFC 7692); against a
browser's offer (``permessage-deflate; client_max_window_bits``) it keeps
its context between messages. The frames are hat-juggler 0.5's: its
``json.encode`` is ``json.dumps`` with the default separators. Run with
any Python 3 (standard library only)::

    python3 bench/deflate_reference.py [--keys N] [--changes N]

It prints one line per figure: the frame bytes (WebSocket payload, no
frame header) plain, deflated per message (no context takeover), and
deflated with context takeover.
"""

import argparse
import json
import zlib


def key(index):
    return f"k{index:06}"


def entry(index, version):
    return {"id": index, "name": f"item {index}", "v": version}


def changed_index(round_, keys):
    return (round_ * 7919) % keys


def deflate(compressor, text):
    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return len(data) - 4


def fresh():
    return zlib.compressobj(-1, zlib.DEFLATED, -15)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000)
    args = parser.parse_args()
    state = {key(i): entry(i, 0) for i in range(args.keys)}
    sync = json.dumps({"type": "DATA", "payload": [
        {"op": "replace", "path": "", "value": state}]})
    print(f"sync plain {len(sync)} B")
    print(f"sync deflate {deflate(fresh(), sync)} B")
    patches = []
    for round_ in range(1, args.changes + 1):
        index = changed_index(round_, args.keys)
        patches.append(json.dumps({"type": "DATA", "payload": [
            {"op": "replace", "path": f"/{key(index)}/v", "value": round_}]}))
    plain = sum(len(p) for p in patches)
    per_message = sum(deflate(fresh(), p) for p in patches)
    takeover = fresh()
    with_context = sum(deflate(takeover, p) for p in patches)
    n = args.changes
    print(f"change plain {plain / n:.1f} B")
    print(f"change deflate, no context takeover {per_message / n:.1f} B")
    print(f"change deflate, context takeover (aiohttp's default) {with_context / n:.1f} B")


if __name__ == "__main__":
    main()
