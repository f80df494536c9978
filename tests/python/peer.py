"""The pinned Python reference peer (hat-juggler), driven by juggler-rs tests.

Run with the Python of the test virtual environment (no arguments). The peer
reads one JSON command per line on stdin and writes one JSON event per line
on stdout; diagnostics go to stderr. It exits at end of input or on
``{"cmd": "exit"}``.

Servers and connections are numbered from 0 in the order they appear; every
event about a connection carries its number as ``conn``.

Commands (``conn`` names a connection; ``autoflush_delay`` is seconds,
``0`` for immediate, ``null`` for manual; ``trace`` is optional)::

    {"cmd": "listen", "autoflush_delay": D, "trace": B, "rpc": R}
        -> {"event": "listening", "server": S, "port": P}
        then per accepted connection
        -> {"event": "connected", "conn": C, "server": S}
    {"cmd": "connect", "url": U, "autoflush_delay": D, "trace": B, "rpc": R}
        -> {"event": "connected", "conn": C}
    {"cmd": "set_local_data", "conn": C, "value": V}
    {"cmd": "set_local_data", "conn": C, "values": [V, ...]}
        (sets each in turn, without yielding in between)
    {"cmd": "flush", "conn": C}          -> {"event": "flushed", "conn": C}
    {"cmd": "send", "conn": C, "value": V}
    {"cmd": "state", "conn": C}
        -> {"event": "state", "conn": C, "open": B,
            "local_data": V, "remote_data": V}
    {"cmd": "diff", "src": V, "dst": V}  -> {"event": "diff", "patch": P}
        (the JSON Patch hat-juggler would send for that change)
    {"cmd": "close", "conn": C}           (the closed event follows)
    {"cmd": "close_server", "server": S}  -> {"event": "server_closed", ...}
    {"cmd": "call", "conn": C, "tag": T, "action": A, "args": [V, ...]}
        (an RpcConnection's call, run in the background; its outcome:)
        -> {"event": "result", "conn": C, "tag": T, "success": true,
            "result": V}
        -> {"event": "result", "conn": C, "tag": T, "success": false,
            "error_type": NAME, "error": TEXT}
    {"cmd": "release", "gate": K}
        (lets one call of the action hold(K) return, now or when it comes)
    {"cmd": "exit"}

RPC: with ``"rpc": {"default_action": B}`` (optional; absent or ``null``
for none) each connection is wrapped in a ``hat.juggler.RpcConnection``
from the start; ``message`` events then report what its ``receive`` yields
(the messages that are not rpc objects). Its actions::

    act(x)        -> x + 1 (as in hat-juggler's own test)
    fail(text)    raises Exception(text)
    echo(*args)   -> [args...]
    hold(key)     -> {"event": "held", "conn": C, "gate": key}, then waits
                  for {"cmd": "release", "gate": key}; -> key
    notify(value) sends the plain message value, then -> value

and with ``"default_action": true`` a default action answering any other
name with ``{"default": name, "args": [args...]}``.

Events that come by themselves::

    {"event": "change", "conn": C, "remote_data": V}  (each change callback)
    {"event": "message", "conn": C, "value": V}       (each received message)
    {"event": "closed", "conn": C}       (after the connection's last message)
    {"event": "frame_out", "conn": C, "frame": F}
        (each frame hat-juggler writes, when the connection has "trace")
    {"event": "error", "cmd": NAME, "error": TEXT}    (a command failed)

Adding a feature (such as RPC) means adding a ``cmd_NAME`` method: commands
are dispatched by name, and connections are kept in ``self.conns``.
"""

import asyncio
import json
import sys

from hat import juggler

import command_loop
from hat import util


class Peer:

    def __init__(self):
        self.conns = {}
        self.servers = {}
        self.rpcs = {}
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

    def create_rpc(self, cid, conn, rpc):
        async def act(x):
            return x + 1

        async def fail(text):
            raise Exception(text)

        async def echo(*args):
            return list(args)

        async def hold(key):
            self.emit('held', conn=cid, gate=key)
            await self.gate(key).acquire()
            return key

        async def notify(value):
            await conn.send(value)
            return value

        async def default_action(name, *args):
            return {'default': name, 'args': list(args)}

        actions = {'act': act, 'fail': fail, 'echo': echo, 'hold': hold,
                   'notify': notify}
        return juggler.RpcConnection(
            conn, actions,
            default_action if rpc.get('default_action') else None)

    def add_connection(self, conn, trace, rpc=None, **fields):
        cid = len(self.conns)
        self.conns[cid] = conn
        # Wrapped before anything reads the connection, so that no message
        # goes past the RpcConnection.
        receiver = conn
        if rpc is not None:
            receiver = self.rpcs[cid] = self.create_rpc(cid, conn, rpc)
        conn.register_change_cb(
            lambda: self.emit('change', conn=cid,
                              remote_data=conn.remote_data))
        if trace:
            ws = conn._ws
            send_str = ws.send_str

            async def traced_send_str(data, *args, **kwargs):
                self.emit('frame_out', conn=cid, frame=json.loads(data))
                return await send_str(data, *args, **kwargs)

            ws.send_str = traced_send_str
        self.spawn(self.watch(cid, conn, receiver))
        self.emit('connected', conn=cid, **fields)

    async def watch(self, cid, conn, receiver):
        try:
            while True:
                value = await receiver.receive()
                self.emit('message', conn=cid, value=value)
        except ConnectionError:
            pass
        await conn.wait_closed()
        self.emit('closed', conn=cid)

    async def cmd_listen(self, cmd):
        sid = len(self.servers)
        trace = cmd.get('trace', False)
        rpc = cmd.get('rpc')

        def on_connection(conn):
            self.add_connection(conn, trace, rpc, server=sid)

        # hat-juggler does not report the port it bound, so pick a free one
        # and try again in the unlikely case someone takes it meanwhile.
        for attempt in range(10):
            port = util.get_unused_tcp_port()
            try:
                server = await juggler.listen(
                    '127.0.0.1', port, on_connection,
                    autoflush_delay=cmd['autoflush_delay'])
                break
            except OSError:
                if attempt == 9:
                    raise
        self.servers[sid] = server
        self.emit('listening', server=sid, port=port)

    async def cmd_connect(self, cmd):
        conn = await juggler.connect(
            cmd['url'], autoflush_delay=cmd['autoflush_delay'])
        self.add_connection(conn, cmd.get('trace', False), cmd.get('rpc'))

    async def cmd_set_local_data(self, cmd):
        conn = self.conns[cmd['conn']]
        values = cmd['values'] if 'values' in cmd else [cmd['value']]
        for value in values:
            conn.set_local_data(value)

    async def cmd_flush(self, cmd):
        await self.conns[cmd['conn']].flush_local_data()
        self.emit('flushed', conn=cmd['conn'])

    async def cmd_send(self, cmd):
        await self.conns[cmd['conn']].send(cmd['value'])

    async def cmd_state(self, cmd):
        conn = self.conns[cmd['conn']]
        self.emit('state', conn=cmd['conn'], open=conn.is_open,
                  local_data=conn.local_data, remote_data=conn.remote_data)

    async def cmd_diff(self, cmd):
        from hat import json as hat_json
        self.emit('diff', patch=hat_json.diff(cmd['src'], cmd['dst']))

    async def cmd_close(self, cmd):
        self.conns[cmd['conn']].close()

    async def cmd_close_server(self, cmd):
        await self.servers[cmd['server']].async_close()
        self.emit('server_closed', server=cmd['server'])

    async def cmd_call(self, cmd):
        cid = cmd['conn']
        rpc = self.rpcs[cid]

        async def call():
            fields = {'conn': cid, 'tag': cmd['tag']}
            try:
                result = await rpc.call(cmd['action'], *cmd['args'])
            except Exception as e:
                self.emit('result', **fields, success=False,
                          error_type=type(e).__name__, error=str(e))
            else:
                self.emit('result', **fields, success=True, result=result)

        self.spawn(call())

    async def cmd_release(self, cmd):
        self.gate(cmd['gate']).release()


if __name__ == '__main__':
    command_loop.main(Peer)
