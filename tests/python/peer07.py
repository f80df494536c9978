"""The pinned Python reference peer of the 0.6/0.7 generations (hat-juggler
0.6.26 or 0.7.6), driven by juggler-rs tests.

Run with the Python of the matching test virtual environment (no arguments).
Both generations share this script: they have the same Python API and differ
on the wire (0.7 adds the ``0``-``3`` transport headers). The peer reads one
JSON command per line on stdin and writes one JSON event per line on stdout;
diagnostics go to stderr. It exits at end of input or on ``{"cmd": "exit"}``.

Servers and connections (either role) are numbered from 0 in the order they
appear; every event about a connection carries its number as ``conn``.

Commands (options marked ``?`` are optional and passed on only when given;
``max_segment_size``, ``ping_delay``, ``ping_timeout`` and ``send_queue_size``
exist on 0.7 only, and 0.6 answers them with an error event)::

    {"cmd": "version"}  -> {"event": "version", "juggler": "0.7.6"}
    {"cmd": "listen", "autoflush_delay"?: D, "parallel_requests"?: B,
     "max_segment_size"?: N, "ping_delay"?: S, "ping_timeout"?: S,
     "send_queue_size"?: N}
        -> {"event": "listening", "server": S, "port": P}
        then per accepted connection
        -> {"event": "connected", "conn": C, "server": S, "remote": IP}
    {"cmd": "connect", "url": U, "max_segment_size"?: N, "ping_delay"?: S,
     "ping_timeout"?: S, "send_queue_size"?: N}
        -> {"event": "connected", "conn": C}
    {"cmd": "send", "conn": C, "tag": T, "name": N, "data": V}
        (a client request, run in the background; its outcome:)
        -> {"event": "result", "conn": C, "tag": T, "success": true,
            "data": V}
        -> {"event": "result", "conn": C, "tag": T, "success": false,
            "error_type": "JugglerError", "error": V}   (the response's data)
        -> {"event": "result", "conn": C, "tag": T, "success": false,
            "error_type": "ConnectionError" (or another), "error": TEXT}
    {"cmd": "set_state", "conn": C, "value": V}   (conn.state.set([], V))
    {"cmd": "set_state", "conn": C, "values": [V, ...]}
        (sets each in turn, without yielding in between)
    {"cmd": "notify", "conn": C, "name": N, "data": V}
        -> {"event": "notified", "conn": C}
    {"cmd": "flush", "conn": C}           -> {"event": "flushed", "conn": C}
    {"cmd": "get_state", "conn": C}
        -> {"event": "got_state", "conn": C, "state": V, "open": B}
        (a server connection's own state, or a client's copy of it)
    {"cmd": "release", "gate": K}
        (lets one request "hold" with data K return, now or when it comes)
    {"cmd": "close", "conn": C}           (the closed event follows)
    {"cmd": "close_server", "server": S}  -> {"event": "server_closed", ...}
    {"cmd": "exit"}

The servers' request_cb, by request name (each request is first reported as
``{"event": "request", "conn": C, "name": N, "data": V}``)::

    echo        -> data
    fail        raises Exception(data): the response carries str(data)
    hold        -> {"event": "held", "conn": C, "gate": data}, then waits
                for {"cmd": "release", "gate": data}; -> data
    notify      conn.notify(data["name"], data["data"]); -> null
    set_state   conn.state.set([], data); -> null
    other       -> {"name": name, "data": data}

Events that come by themselves::

    {"event": "notify", "conn": C, "name": N, "data": V}  (client: notify_cb)
    {"event": "state", "conn": C, "state": V}   (client: each state change)
    {"event": "closed", "conn": C}              (either role)
    {"event": "error", "cmd": NAME, "error": TEXT}    (a command failed)
"""

import asyncio
import importlib.metadata
import json
import socket
import sys

from hat import juggler

import command_loop

LISTEN_OPTIONS = ['autoflush_delay', 'parallel_requests', 'max_segment_size',
                  'ping_delay', 'ping_timeout', 'send_queue_size']
CONNECT_OPTIONS = ['max_segment_size', 'ping_delay', 'ping_timeout',
                   'send_queue_size']


def options(cmd, names):
    return {name: cmd[name] for name in names if name in cmd}


def free_port():
    # hat's Server does not tell the port it bound, so pick one first.
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Peer:

    def __init__(self):
        self.conns = {}
        self.ids = {}
        self.servers = {}
        self.gates = {}
        self.tasks = set()

    def emit(self, event, **fields):
        sys.stdout.write(json.dumps({'event': event, **fields}) + '\n')
        sys.stdout.flush()

    def spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def gate(self, key):
        # One permit per release: each release lets one hold(key) through,
        # whichever comes first.
        key = json.dumps(key, sort_keys=True)
        if key not in self.gates:
            self.gates[key] = asyncio.Semaphore(0)
        return self.gates[key]

    def add_connection(self, conn, **fields):
        # Idempotent: a request can reach request_cb before connection_cb.
        if id(conn) in self.ids:
            return self.ids[id(conn)]
        cid = len(self.conns)
        self.conns[cid] = conn
        self.ids[id(conn)] = cid
        self.emit('connected', conn=cid, **fields)
        self.spawn(self.watch(cid, conn))
        return cid

    async def watch(self, cid, conn):
        await conn.wait_closed()
        self.emit('closed', conn=cid)

    async def request_cb(self, sid, conn, name, data):
        cid = self.add_connection(conn, server=sid, remote=conn.remote)
        self.emit('request', conn=cid, name=name, data=data)
        if name == 'echo':
            return data
        if name == 'fail':
            raise Exception(data)
        if name == 'hold':
            self.emit('held', conn=cid, gate=data)
            await self.gate(data).acquire()
            return data
        if name == 'notify':
            await conn.notify(data['name'], data['data'])
            return None
        if name == 'set_state':
            conn.state.set([], data)
            return None
        return {'name': name, 'data': data}

    async def cmd_version(self, cmd):
        self.emit('version', juggler=importlib.metadata.version('hat-juggler'))

    async def cmd_listen(self, cmd):
        sid = len(self.servers)

        def on_connection(conn):
            self.add_connection(conn, server=sid, remote=conn.remote)

        async def on_request(conn, name, data):
            return await self.request_cb(sid, conn, name, data)

        # Try again in the unlikely case someone takes the port meanwhile.
        for attempt in range(10):
            port = free_port()
            try:
                server = await juggler.listen(
                    '127.0.0.1', port, on_connection, on_request,
                    **options(cmd, LISTEN_OPTIONS))
                break
            except OSError:
                if attempt == 9:
                    raise
        self.servers[sid] = server
        self.emit('listening', server=sid, port=port)

    async def cmd_connect(self, cmd):
        def on_notify(client, name, data):
            self.emit('notify', conn=self.ids[id(client)], name=name,
                      data=data)

        client = await juggler.connect(cmd['url'], on_notify,
                                       **options(cmd, CONNECT_OPTIONS))
        # Nothing is received before the next await: no event is missed.
        cid = self.add_connection(client)
        client.state.register_change_cb(
            lambda data: self.emit('state', conn=cid, state=data))

    async def cmd_send(self, cmd):
        cid = cmd['conn']
        client = self.conns[cid]

        async def send():
            fields = {'conn': cid, 'tag': cmd['tag']}
            try:
                data = await client.send(cmd['name'], cmd['data'])
            except juggler.JugglerError as e:
                self.emit('result', **fields, success=False,
                          error_type='JugglerError', error=e.data)
            except Exception as e:
                self.emit('result', **fields, success=False,
                          error_type=type(e).__name__, error=str(e))
            else:
                self.emit('result', **fields, success=True, data=data)

        self.spawn(send())

    async def cmd_set_state(self, cmd):
        conn = self.conns[cmd['conn']]
        for value in cmd['values'] if 'values' in cmd else [cmd['value']]:
            conn.state.set([], value)

    async def cmd_notify(self, cmd):
        await self.conns[cmd['conn']].notify(cmd['name'], cmd['data'])
        self.emit('notified', conn=cmd['conn'])

    async def cmd_flush(self, cmd):
        await self.conns[cmd['conn']].flush()
        self.emit('flushed', conn=cmd['conn'])

    async def cmd_get_state(self, cmd):
        conn = self.conns[cmd['conn']]
        self.emit('got_state', conn=cmd['conn'], state=conn.state.data,
                  open=conn.is_open)

    async def cmd_release(self, cmd):
        self.gate(cmd['gate']).release()

    async def cmd_close(self, cmd):
        self.conns[cmd['conn']].close()

    async def cmd_close_server(self, cmd):
        await self.servers[cmd['server']].async_close()
        self.emit('server_closed', server=cmd['server'])


if __name__ == '__main__':
    command_loop.main(Peer)
