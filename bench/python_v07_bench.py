"""The juggler-bench 0.7 scenarios against the pinned hat-juggler 0.7.6.

Runs ``v07-requests-sequential``, ``v07-requests-64``, ``v07-notify``,
``v07-state-100k`` and ``v07-fanout-1000`` as ``juggler-bench`` does
(same payloads, states and checks; ``bench/src/scenarios/v07.rs``), with a
hat-juggler 0.7.6 server and hat-juggler 0.7.6 clients **in two
processes** (the server in a child process, the clients here: their real
layout), and prints one JSON object per measured number in juggler-bench's
``--json`` format (``"impl": "python"``) for ``bench/table.py``.

Run it with the Python of the venv the interop tests create
(``target/python-venv-0.7``); ``compare.sh`` does::

    target/python-venv-0.7/bin/python bench/python_v07_bench.py [--quick]
        [--scenario NAME ...]

The server's requests: ``add([a, b])``; ``notify_burst({count, size})``
(that many notifications, in order); ``init_state({keys})`` and
``change({index, version})`` (one entry changed with ``state.set(path,
value)``, which copies the path and shares every other entry: the
reference's sync loop then diffs the whole state); ``build_whole({index,
version})`` and ``set_whole`` (the same change as a whole new state, a deep
copy built by the first request, set by the second: as juggler-bench's
``set_state`` row, the build is outside the timed window); ``fanout_join`` and
``fanout_set({version})`` (every joined connection's state changed).
"""

import argparse
import asyncio
import copy
import resource
import sys
import time

from hat import juggler

# The data (as in bench/src/data.rs), the sizes (`pick`, by the 0.5 script's
# QUICK), the samples and the output: the 0.5 script's (this folder).
import python_peer_bench as peer  # noqa: E402
from python_peer_bench import (  # noqa: E402
    FANOUT_INDEX, Failed, Samples, changed_index, key, measure,
    median_of_runs, message, padding, pick, state, version_of)


# ---- the server process -------------------------------------------------------

async def serve():
    members = []
    built = []

    async def on_request(conn, name, data):
        if name == 'add':
            return data[0] + data[1]
        if name == 'notify_burst':
            fill = padding(data['size'])
            for seq in range(data['count']):
                await conn.notify('m', message(seq, fill))
            return data['count']
        if name == 'init_state':
            conn.state.set([], state(data['keys']))
            return None
        if name == 'change':
            conn.state.set([key(data['index']), 'v'], data['version'])
            return None
        if name == 'build_whole':
            whole = copy.deepcopy(conn.state.data)
            whole[key(data['index'])]['v'] = data['version']
            built.append(whole)
            return None
        if name == 'set_whole':
            conn.state.set([], built.pop())
            return None
        if name == 'fanout_join':
            members.append(conn)
            conn.state.set([], state(1_000))
            return None
        if name == 'fanout_set':
            for member in members:
                member.state.set([key(FANOUT_INDEX), 'v'], data['version'])
            return None
        raise Exception(f'no request {name}')

    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    await peer.serve_until_stdin_closes(
        lambda port: juggler.listen('127.0.0.1', port, None, on_request,
                                    autoflush_delay=0))


class Watched:
    """A client whose state changes and notifications can be awaited."""

    def __init__(self, client):
        self.client = client
        self.changed = asyncio.Event()
        client.state.register_change_cb(lambda _: self.changed.set())

    async def reaches(self, index, version):
        while True:
            got = version_of(self.client.state.data, index)
            if got == version:
                return
            if got is not None and got > version:
                raise Failed(f'round {version} saw version {got}')
            self.changed.clear()
            await self.changed.wait()


# ---- the scenarios --------------------------------------------------------------

async def requests(concurrency):
    calls = pick(5_000 if concurrency == 1 else 20_000, 200)
    per_task = calls // concurrency
    calls = per_task * concurrency
    async with peer.ServerProcess(__file__) as server:
        client = await juggler.connect(server.url)

        async def task(number):
            for i in range(per_task):
                x = number * per_task + i
                result = await client.send('add', [x, 1])
                if result != x + 1:
                    raise Failed(f'add({x}, 1) returned {result}')

        start = time.perf_counter()
        await asyncio.gather(*(task(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
        await client.async_close()
    return [measure('requests', calls / elapsed, 'requests/s',
                    f'{calls} requests, {concurrency} outstanding, in '
                    f'{elapsed:.3f} s; server and client in two processes')]


async def notify():
    count = pick(50_000, 1_000)
    async with peer.ServerProcess(__file__) as server:
        received = 0
        done = asyncio.Event()
        failure = []

        def on_notify(client, name, data):
            nonlocal received
            if data['seq'] != received:
                failure.append(f'notification {received} came as {data["seq"]}')
                done.set()
            received += 1
            if received == count:
                done.set()

        client = await juggler.connect(server.url, on_notify)
        start = time.perf_counter()
        await client.send('notify_burst', {'count': count, 'size': 100})
        await done.wait()
        elapsed = time.perf_counter() - start
        if failure:
            raise Failed(failure[0])
        await client.async_close()
    return [measure('notifications', count / elapsed, 'msgs/s',
                    f'{count} notifications of 100 bytes in {elapsed:.3f} s; '
                    f'server and client in two processes')]


async def state_change():
    keys = pick(100_000, 10_000)
    rounds = pick(5, 2)
    async with peer.ServerProcess(__file__) as server:
        client = Watched(await juggler.connect(server.url))
        start = time.perf_counter()
        await client.client.send('init_state', {'keys': keys})
        await client.reaches(0, 0)
        first_sync = time.perf_counter() - start
        latencies = Samples()
        whole_latencies = Samples()
        for round_ in range(1, 2 * rounds + 1):
            index = changed_index(round_, keys)
            whole = round_ > rounds
            if whole:
                await client.client.send('build_whole', {'index': index,
                                                         'version': round_})
            start = time.perf_counter()
            if whole:
                await client.client.send('set_whole', None)
            else:
                await client.client.send('change', {'index': index,
                                                    'version': round_})
            await client.reaches(index, round_)
            (whole_latencies if whole else latencies).push(
                time.perf_counter() - start)
        await client.client.async_close()
    return [
        measure('path-set diff latency', latencies.mean_ms(), 'ms',
                f'state.set of one entry, {keys} keys (the sync loop diffs '
                f'the whole state); {latencies.summary()}'),
        measure('whole-state diff latency', whole_latencies.mean_ms(), 'ms',
                f'state.set of a whole new {keys}-key state (a deep copy, '
                f'built before the window); {whole_latencies.summary()}'),
        measure('first sync', first_sync * 1e3, 'ms',
                f'the whole {keys}-key state to a fresh client'),
    ]


async def fanout(n, quick_n):
    n = pick(n, quick_n)
    rounds = pick(5, 2)
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    async with peer.ServerProcess(__file__) as server:
        clients = [Watched(await juggler.connect(server.url)) for _ in range(n)]
        for client in clients:
            await client.client.send('fanout_join', None)
        for client in clients:
            await client.reaches(FANOUT_INDEX, 0)
        latencies = Samples()
        for round_ in range(1, rounds + 1):
            start = time.perf_counter()
            await clients[0].client.send('fanout_set', {'version': round_})
            for client in clients:
                await client.reaches(FANOUT_INDEX, round_)
            latencies.push(time.perf_counter() - start)
        await asyncio.gather(*(client.client.async_close() for client in clients))
    return [measure('latency', latencies.mean_ms(), 'ms',
                    f'state.set on each of {n} connections (no shared state), '
                    f'1000-key state; {latencies.summary()}')]


SCENARIOS = {
    'v07-requests-sequential': lambda: median_of_runs(lambda: requests(1)),
    'v07-requests-64': lambda: median_of_runs(lambda: requests(64)),
    'v07-notify': lambda: median_of_runs(notify),
    'v07-state-100k': state_change,
    'v07-fanout-1000': lambda: fanout(1_000, 100),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--scenario', nargs='+', choices=list(SCENARIOS))
    parser.add_argument('--serve', action='store_true')
    args = parser.parse_args()
    peer.QUICK = args.quick
    if args.serve:
        asyncio.run(serve())
        return 0
    names = args.scenario or list(SCENARIOS)
    failed = asyncio.run(peer.run(names, SCENARIOS, pick(600, 60)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
