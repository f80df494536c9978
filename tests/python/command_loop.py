"""The command loop the Python reference peers share (peer.py for 0.5,
peer07.py for 0.6/0.7): one JSON command per line on stdin, handed to the
peer's ``cmd_<name>`` method; ``exit`` or the end of input stops it, and
closes the peer's connections and servers."""

import asyncio
import json
import logging
import sys
import threading


async def run(peer, lines):
    while True:
        line = await lines.get()
        if line is None:
            break
        if not line.strip():
            continue
        cmd = json.loads(line)
        name = cmd['cmd']
        if name == 'exit':
            break
        try:
            await getattr(peer, 'cmd_' + name)(cmd)
        except Exception as e:
            logging.exception('command %s failed', name)
            peer.emit('error', cmd=name, error=f'{type(e).__name__}: {e}')
    for conn in peer.conns.values():
        conn.close()
    for server in peer.servers.values():
        server.close()


def read_stdin(loop, lines):
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line)
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def serve(peer):
    lines = asyncio.Queue()
    threading.Thread(target=read_stdin,
                     args=(asyncio.get_running_loop(), lines),
                     daemon=True).start()
    await run(peer, lines)


def main(peer_class):
    """Runs a peer of `peer_class` until its input ends."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(peer_class()))
