"""The juggler-bench scenarios against the pinned Python reference peer.

Runs the same scenarios as ``juggler-bench`` (same payloads, states and
checks; see ``bench/src/data.rs`` and ``bench/src/scenarios/``) with a
hat-juggler server and hat-juggler clients in one asyncio process, and
the message and RPC scenarios a second time with the server in a child
process of its own (``--serve``; the metrics ``... two processes``), and
prints one JSON object per measured number, in juggler-bench's ``--json``
format (``"impl": "python"``), so that ``bench/table.py`` can put
them beside ours. A scenario whose result is wrong prints a failure record
(``"ok": false``) and makes the script exit 1.

Run it with the Python of the venv the interop tests create
(``target/python-venv``); ``compare.sh`` does::

    target/python-venv/bin/python bench/python_peer_bench.py [--quick]
        [--scenario NAME ...]

hat-juggler has no ``update_local_data``: the state scenarios measure the
``set_local_data`` (diff) path only. Counts are smaller than juggler-bench's
(the peer is slower); every reported number is a rate or a per-round mean.
"""

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import time

from hat import juggler
from hat import util

QUICK = False


def pick(full, quick):
    return quick if QUICK else full


# ---- the data, as in bench/src/data.rs --------------------------------------

def message(seq, padding):
    return {'seq': seq, 'data': padding}


def padding(size):
    overhead = len(json.dumps(message(100_000, ''), separators=(',', ':')))
    return 'x' * max(0, size - overhead)


def key(index):
    return f'k{index:06}'


def entry(index, version):
    return {'id': index, 'name': f'item {index}', 'v': version}


def state(keys):
    return {key(i): entry(i, 0) for i in range(keys)}


def changed_index(round_, keys):
    return (round_ * 7919) % keys


def version_of(data, index):
    try:
        return data[key(index)]['v']
    except (KeyError, TypeError):
        return None


FANOUT_INDEX = 500


class Failed(Exception):
    pass


# ---- plumbing ----------------------------------------------------------------

async def serve(on_connection=None):
    """A listening server (autoflush 0) and a queue of its connections."""
    accepted = asyncio.Queue()

    def connection_cb(conn):
        if on_connection:
            on_connection(conn)
        accepted.put_nowait(conn)

    # hat-juggler does not report the port it bound: pick a free one.
    for attempt in range(10):
        port = util.get_unused_tcp_port()
        try:
            server = await juggler.listen('127.0.0.1', port, connection_cb,
                                          autoflush_delay=0)
            return server, f'ws://127.0.0.1:{port}/ws', accepted
        except OSError:
            if attempt == 9:
                raise


async def connect(url):
    return await juggler.connect(url, autoflush_delay=0)


async def pair():
    server, url, accepted = await serve()
    client = await connect(url)
    server_side = await asyncio.wait_for(accepted.get(), 10)
    return server, client, server_side


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


async def serve_until_stdin_closes(listen):
    """The body of a server process: listens with ``listen(port)``, says
    ``port N`` on stdout, and serves until the parent closes our stdin."""
    port = free_port()
    server = await listen(port)
    sys.stdout.write(f'port {port}\n')
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.async_close()


class ServerProcess:
    """The server of ``script --serve`` in a child process, for one
    scenario."""

    def __init__(self, script):
        self.script = script

    async def __aenter__(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, self.script, '--serve', stdin=subprocess.PIPE,
            stdout=subprocess.PIPE)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line.startswith(b'port '):
            raise Failed(f'the server process said {line!r}')
        self.url = f'ws://127.0.0.1:{int(line.split()[1])}/ws'
        return self

    async def __aexit__(self, *_):
        self.proc.stdin.close()
        await self.proc.wait()


class Changes:
    """Wakes a waiter on every remote data change of a connection; fails
    the wait if the connection closes."""

    def __init__(self, conn):
        self.conn = conn
        self.event = asyncio.Event()
        self.handle = conn.register_change_cb(self.event.set)

    async def next(self):
        self.event.clear()
        changed = asyncio.ensure_future(self.event.wait())
        closing = asyncio.ensure_future(self.conn.wait_closing())
        await asyncio.wait([changed, closing],
                           return_when=asyncio.FIRST_COMPLETED)
        changed.cancel()
        closing.cancel()
        if not self.event.is_set() and not self.conn.is_open:
            raise Failed('the connection closed while waiting for a change')

    async def wait_for(self, check):
        while not check(self.conn.remote_data):
            await self.next()

    async def wait_for_version(self, index, version):
        while True:
            got = version_of(self.conn.remote_data, index)
            if got == version:
                return
            if got is not None and got > version:
                raise Failed(f'round {version} saw version {got}')
            await self.next()


def measure(metric, value, unit, detail):
    return {'metric': metric, 'value': value, 'unit': unit,
            'detail': detail}


class Samples:
    def __init__(self):
        self.values = []

    def push(self, seconds):
        self.values.append(seconds)

    def mean_ms(self):
        return sum(self.values) * 1e3 / len(self.values)

    def quantile_ms(self, q):
        ordered = sorted(self.values)
        rank = min(max(int(-(-q * len(ordered) // 1)), 1), len(ordered))
        return ordered[rank - 1] * 1e3

    def summary(self):
        return (f'{len(self.values)} rounds, p50 {self.quantile_ms(0.5):.3f} '
                f'ms, p99 {self.quantile_ms(0.99):.3f} ms, max '
                f'{self.quantile_ms(1.0):.3f} ms')


# juggler-bench's THROUGHPUT_RUNS: the message and RPC scenarios run this
# often and report each metric's median.
THROUGHPUT_RUNS = 3


async def median_of_runs(scenario):
    runs = [await scenario() for _ in range(pick(THROUGHPUT_RUNS, 1))]
    if len(runs) == 1:
        return runs[0]
    medians = []
    for first in runs[0]:
        values = [m for run in runs for m in run
                  if m['metric'] == first['metric']]
        listed = ', '.join(f"{m['value']:.0f}" for m in values)
        values.sort(key=lambda m: m['value'])
        median = values[len(values) // 2]
        medians.append({**median, 'detail': f'median of {len(values)} runs '
                                            f'({listed}); {median["detail"]}'})
    return medians


# ---- scenarios ---------------------------------------------------------------

def message_count(size):
    return pick(100_000, 2_000) if size == 100 else pick(10_000, 200)


async def receive_all(conn, count, padding_len):
    """Receives ``count`` messages, checking each one's sequence number and
    padding; returns when the last one arrived."""
    for expected in range(count):
        msg = await conn.receive()
        if msg.get('seq') != expected:
            raise Failed(f'message {expected} arrived as {msg.get("seq")}')
        if len(msg.get('data', '')) != padding_len:
            raise Failed(f'message {expected} arrived with wrong padding')
    return time.perf_counter()


async def messages(size):
    count = message_count(size)
    server, client, server_side = await pair()
    pad = padding(size)
    receiver = asyncio.create_task(receive_all(server_side, count, len(pad)))
    cpu = time.process_time()
    start = time.perf_counter()
    for seq in range(count):
        await client.send(message(seq, pad))
    done = await receiver
    cpu = time.process_time() - cpu
    elapsed = done - start
    await client.async_close()
    try:
        extra = await asyncio.wait_for(server_side.receive(), 5)
        raise Failed(f'an extra message arrived: {extra}')
    except ConnectionError:
        pass
    await server.async_close()
    return [measure('throughput', count / elapsed, 'msgs/s',
                    f'{count} msgs of {size} B in {elapsed:.3f} s; CPU '
                    f'{cpu * 1e6 / count:.2f} µs/msg (both sides)')]


async def messages_two_processes(size):
    """``messages`` with the receiving server in a child process: it checks
    them as ``messages`` does and answers ``{'received': count}``."""
    count = message_count(size)
    pad = padding(size)
    async with ServerProcess(__file__) as server:
        client = await connect(server.url)
        await client.send({'mode': 'messages', 'count': count,
                           'padding': len(pad)})
        cpu = time.process_time()
        start = time.perf_counter()
        for seq in range(count):
            await client.send(message(seq, pad))
        reply = await client.receive()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        await client.async_close()
    if reply != {'received': count}:
        raise Failed(f'the server process said {reply}')
    return [measure('throughput two processes', count / elapsed, 'msgs/s',
                    f'{count} msgs of {size} B in {elapsed:.3f} s, until the '
                    f"server process's answer; CPU {cpu * 1e6 / count:.2f} "
                    f'µs/msg (the client only)')]


async def add(a, b):
    return a + b


async def timed_calls(client, concurrency, metric):
    """``add(x, 1)`` calls through ``client``, ``concurrency`` at a time,
    each answer checked; the measure of their rate."""
    calls = pick(4_000, 200) if concurrency == 1 else pick(40_000, 640)
    per_task = calls // concurrency
    calls = per_task * concurrency

    async def worker(task):
        for i in range(per_task):
            x = task * per_task + i
            result = await client.call('add', x, 1)
            if result != x + 1:
                raise Failed(f'add({x}, 1) returned {result}')

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker(task) for task in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return measure(metric, calls / elapsed, 'calls/s',
                   f'{calls} calls, {concurrency} outstanding, in '
                   f'{elapsed:.3f} s; mean '
                   f'{elapsed * 1e6 * concurrency / calls:.1f} µs/call; CPU '
                   f'{cpu * 1e6 / calls:.2f} µs/call')


async def rpc(concurrency):
    server, url, accepted = await serve()
    client_conn = await connect(url)
    server_conn = await asyncio.wait_for(accepted.get(), 10)
    server_rpc = juggler.RpcConnection(server_conn, {'add': add})
    client = juggler.RpcConnection(client_conn)
    result = await timed_calls(client, concurrency, 'calls')
    await client.async_close()
    await server_rpc.wait_closed()
    await server.async_close()
    return [result]


async def rpc_two_processes(concurrency):
    """``rpc`` with the answering server in a child process."""
    async with ServerProcess(__file__) as server:
        conn = await connect(server.url)
        await conn.send({'mode': 'rpc'})
        client = juggler.RpcConnection(conn)
        result = await timed_calls(client, concurrency, 'calls two processes')
        await client.async_close()
    return [result]


async def serve_process():
    """The server of the two-process scenarios. A connection's first
    message says what it is for: ``{'mode': 'rpc'}`` answers ``add``
    calls; ``{'mode': 'sync', 'keys'}`` sets that many keys' state as the
    local data; ``{'mode': 'messages', 'count', 'padding'}`` receives and
    checks that many messages and answers ``{'received': count}`` (or
    ``{'error': ...}``)."""
    states = {}

    async def serve_connection(conn):
        first = await conn.receive()
        if first.get('mode') == 'rpc':
            juggler.RpcConnection(conn, {'add': add})
            return
        if first.get('mode') == 'sync':
            keys = first['keys']
            if keys not in states:
                states[keys] = state(keys)
            conn.set_local_data(states[keys])
            return
        try:
            await receive_all(conn, first['count'], first['padding'])
            await conn.send({'received': first['count']})
        except Failed as e:
            await conn.send({'error': str(e)})

    def connection_cb(conn):
        conn.async_group.spawn(serve_connection, conn)

    await serve_until_stdin_closes(
        lambda port: juggler.listen('127.0.0.1', port, connection_cb,
                                    autoflush_delay=0))


async def gather_measures(*scenarios):
    """The measures of each scenario, run one after the other."""
    return [m for scenario in scenarios for m in await scenario()]


async def one_then_two_processes(one, two):
    """The measures of ``one`` (one process) then of ``two`` (two), each
    the median of its runs."""
    return [*await median_of_runs(one), *await median_of_runs(two)]


async def state_change(keys, quick_keys):
    keys = pick(keys, quick_keys)
    rounds = pick(5 if keys >= 100_000 else 100, 3)
    warm_up = 1
    # Server to client, as juggler-bench does (hat-juggler's server would
    # refuse a client's first sync of 100,000 keys anyway: aiohttp's
    # default 4 MiB message limit).
    server, client, server_side = await pair()
    sender, receiver = server_side, client
    changes = Changes(receiver)
    current = state(keys)

    start = time.perf_counter()
    sender.set_local_data(current)
    await changes.wait_for(lambda data: data is not None)
    initial = time.perf_counter() - start
    if receiver.remote_data != current:
        raise Failed('the first sync arrived different')

    wall = Samples()
    cpu_total = 0.0
    for i in range(warm_up + rounds):
        round_ = i + 1
        index = changed_index(round_, keys)
        # The idiomatic Python update: a new outer dict sharing the
        # unchanged entries (the application's work, before the window).
        nxt = dict(current)
        nxt[key(index)] = entry(index, round_)
        current = nxt
        cpu = time.process_time()
        start = time.perf_counter()
        sender.set_local_data(nxt)
        await changes.wait_for_version(index, round_)
        if i >= warm_up:
            wall.push(time.perf_counter() - start)
            cpu_total += time.process_time() - cpu

    if receiver.remote_data != current:
        raise Failed("the client's remote data differs at the end")
    await client.async_close()
    await server.async_close()
    return [
        measure('initial sync', initial * 1e3, 'ms',
                f'{keys} keys, whole state'),
        measure('diff latency', wall.mean_ms(), 'ms', wall.summary()),
        measure('diff cpu', cpu_total * 1e3 / rounds, 'ms',
                'process CPU per change, both sides'),
    ]


async def full_sync():
    keys = pick(100_000, 10_000)
    rounds = pick(3, 1)
    data = state(keys)
    server, url, accepted = await serve(
        on_connection=lambda conn: conn.set_local_data(data))
    times = Samples()
    cpu_total = 0.0
    for round_ in range(rounds):
        cpu = time.process_time()
        start = time.perf_counter()
        client = await connect(url)
        changes = Changes(client)
        await changes.wait_for(lambda data: data is not None)
        times.push(time.perf_counter() - start)
        cpu_total += time.process_time() - cpu
        if client.remote_data != data:
            raise Failed(f'round {round_}: the synced state differs')
        await accepted.get()
        await client.async_close()
    await server.async_close()
    return [
        measure('sync time', times.mean_ms(), 'ms',
                f'{keys} keys; {times.summary()}'),
        measure('sync cpu', cpu_total * 1e3 / rounds, 'ms',
                'process CPU per sync, both sides'),
    ]


async def full_sync_two_processes():
    """``full_sync`` with the server in a child process: a connection that
    says ``{'mode': 'sync', 'keys': N}`` gets the N-key state as its
    server's local data (built once per process, in an untimed first
    round)."""
    keys = pick(100_000, 10_000)
    rounds = pick(3, 1)
    data = state(keys)
    times = Samples()
    async with ServerProcess(__file__) as server:
        for round_ in range(rounds + 1):
            start = time.perf_counter()
            client = await connect(server.url)
            await client.send({'mode': 'sync', 'keys': keys})
            changes = Changes(client)
            await changes.wait_for(lambda data: data is not None)
            if round_ > 0:
                times.push(time.perf_counter() - start)
            if client.remote_data != data:
                raise Failed(f'round {round_}: the synced state differs')
            await client.async_close()
    return [measure('sync time two processes', times.mean_ms(), 'ms',
                    f'{keys} keys, the server in a child process; '
                    f'{times.summary()}')]


async def fanout(clients, quick_clients):
    n = pick(clients, quick_clients)
    rounds = pick(3 if n <= 100 else 2, 1)
    keys = 1_000
    raise_nofile_limit()
    server, url, accepted = await serve()
    client_conns = []
    server_conns = []
    for _ in range(n):
        client_conns.append(await connect(url))
        server_conns.append(await asyncio.wait_for(accepted.get(), 10))

    target = {'version': 0, 'missing': set(), 'done': asyncio.Event()}

    def on_change(number, conn):
        if (number in target['missing'] and
                version_of(conn.remote_data, FANOUT_INDEX) ==
                target['version']):
            target['missing'].discard(number)
            if not target['missing']:
                target['done'].set()

    handles = [conn.register_change_cb(
                   lambda number=number, conn=conn: on_change(number, conn))
               for number, conn in enumerate(client_conns)]

    async def push(data, version):
        target['version'] = version
        target['missing'] = set(range(n))
        target['done'] = asyncio.Event()
        start = time.perf_counter()
        for conn in server_conns:
            conn.set_local_data(data)
        publish = time.perf_counter() - start
        await target['done'].wait()
        return time.perf_counter() - start, publish

    current = state(keys)
    initial, _ = await push(current, 0)
    latencies = Samples()
    publish_total = 0.0
    cpu_total = 0.0
    for round_ in range(1, rounds + 1):
        nxt = dict(current)
        nxt[key(FANOUT_INDEX)] = entry(FANOUT_INDEX, round_)
        current = nxt
        cpu = time.process_time()
        latency, publish = await push(nxt, round_)
        cpu_total += time.process_time() - cpu
        latencies.push(latency)
        publish_total += publish

    for number, conn in enumerate(client_conns):
        if conn.remote_data != current:
            raise Failed(f"client {number}'s remote data differs")
    del handles
    await asyncio.gather(*(conn.async_close() for conn in client_conns))
    await server.async_close()
    return [
        measure('latency', latencies.mean_ms(), 'ms',
                f'{n} clients, {keys}-key state; {latencies.summary()}; '
                f'publish loop {publish_total * 1e3 / rounds:.3f} ms/round'),
        measure('cpu', cpu_total * 1e3 / rounds, 'ms',
                'process CPU per change, server and all clients'),
        measure('initial sync', initial * 1e3, 'ms',
                f'whole state to {n} clients'),
    ]


# ---- idle memory: server and clients in child processes ----------------------

def rss_bytes():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise Failed('no VmRSS')


def raise_nofile_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


async def idle_memory(n, quick_n):
    n = pick(n, quick_n)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, '--idle-server', str(n),
        *(['--quick'] if QUICK else []),
        stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    result = json.loads(out.decode().strip().splitlines()[-1])
    if 'error' in result:
        raise Failed(result['error'])
    before, after = result['before'], result['after']
    return [
        measure('memory per connection', max(0, after - before) / n / 1024,
                'KiB',
                f'server RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} '
                f'MiB for {n} idle connections (server in a fresh process, '
                f'clients in another)'),
        measure('connections held', n, 'conns',
                f'all open; connected in {result["connect_secs"]:.2f} s'),
    ]


async def idle_server(n):
    raise_nofile_limit()
    held = []
    server, url, accepted = await serve(on_connection=held.append)
    await asyncio.sleep(0.2)
    before = rss_bytes()
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, '--idle-clients', str(n), '--url', url,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 600)
        if not line.startswith(b'ready'):
            raise Failed(f'the client process said {line!r}')
        while len(held) < n:
            await asyncio.sleep(0.01)
        connect_secs = time.perf_counter() - started
        await asyncio.sleep(0.5)
        after = rss_bytes()
        open_ = sum(1 for conn in held if conn.is_open)
        if open_ != n:
            raise Failed(f'{open_} of {n} connections open')
        return {'before': before, 'after': after,
                'connect_secs': connect_secs}
    finally:
        proc.stdin.close()
        await proc.wait()


async def idle_clients(n, url):
    raise_nofile_limit()
    conns = []

    async def worker(share):
        for _ in range(share):
            conns.append(await juggler.connect(url))

    workers = 32
    await asyncio.gather(*(worker(n // workers + (task < n % workers))
                           for task in range(workers)))
    sys.stdout.write(f'ready {len(conns)}\n')
    sys.stdout.flush()
    # Hold the connections until the parent closes our stdin.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(conn.async_close() for conn in conns))


# ---- main --------------------------------------------------------------------

SCENARIOS = {
    'messages-100b': lambda: one_then_two_processes(
        lambda: messages(100), lambda: messages_two_processes(100)),
    'messages-10kb': lambda: one_then_two_processes(
        lambda: messages(10_240), lambda: messages_two_processes(10_240)),
    'rpc-sequential': lambda: one_then_two_processes(
        lambda: rpc(1), lambda: rpc_two_processes(1)),
    'rpc-64': lambda: one_then_two_processes(
        lambda: rpc(64), lambda: rpc_two_processes(64)),
    'state-1k': lambda: state_change(1_000, 1_000),
    'state-100k': lambda: state_change(100_000, 10_000),
    'full-sync-100k': lambda: gather_measures(full_sync, full_sync_two_processes),
    'fanout-100': lambda: fanout(100, 20),
    'fanout-1000': lambda: fanout(1_000, 100),
    'idle-memory-1000': lambda: idle_memory(1_000, 100),
    'idle-memory-10000': lambda: idle_memory(10_000, 200),
}


def emit(record):
    sys.stdout.write(json.dumps({'impl': 'python', 'runtime': 'asyncio',
                                 **record}) + '\n')
    sys.stdout.flush()


async def run(names, scenarios=None, timeout=None):
    """Runs the named scenarios (of this script, or of ``scenarios``), each
    within ``timeout`` seconds, and prints their records; returns how many
    failed."""
    scenarios = scenarios or SCENARIOS
    timeout = timeout or pick(300, 60)
    failed = 0
    for name in names:
        try:
            measures = await asyncio.wait_for(scenarios[name](), timeout)
        except (Exception, asyncio.TimeoutError) as e:
            failed += 1
            emit({'scenario': name, 'ok': False,
                  'error': f'{type(e).__name__}: {e}'})
            continue
        for m in measures:
            emit({'scenario': name, 'ok': True, **m})
    return failed


def main():
    global QUICK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--scenario', nargs='+', choices=list(SCENARIOS))
    parser.add_argument('--idle-server', type=int)
    parser.add_argument('--idle-clients', type=int)
    parser.add_argument('--url')
    parser.add_argument('--serve', action='store_true')
    args = parser.parse_args()
    QUICK = args.quick

    if args.serve:
        asyncio.run(serve_process())
        return 0
    if args.idle_clients is not None:
        asyncio.run(idle_clients(args.idle_clients, args.url))
        return 0
    if args.idle_server is not None:
        try:
            result = asyncio.run(idle_server(args.idle_server))
        except Exception as e:
            result = {'error': f'{type(e).__name__}: {e}'}
        print(json.dumps(result))
        return 0 if 'error' not in result else 1

    names = args.scenario or list(SCENARIOS)
    return 1 if asyncio.run(run(names)) else 0


if __name__ == '__main__':
    sys.exit(main())
