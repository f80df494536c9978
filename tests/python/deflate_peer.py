"""permessage-deflate peers for juggler-rs's compression interop tests:
Python ``websockets`` (client and server, deflate on by default) and an
``aiohttp`` client with ``compress=15``, speaking just enough of Juggler
0.5 (MESSAGE frames) to exchange a message.

Run with the Python of the test venv (no arguments). It reads one JSON
command per line on stdin and writes one JSON event per line on stdout::

    {"cmd": "ws_client", "url": U, "payload": V}
        -> {"event": "ws_client", "extensions": [NAME, ...], "received": V}
    {"cmd": "aiohttp_client", "url": U, "payload": V}
        -> {"event": "aiohttp_client", "compress": N, "received": V}
    {"cmd": "ws_server"}
        -> {"event": "ws_server", "port": P}
        then per connection, each MESSAGE frame echoed back:
        -> {"event": "ws_connected", "extensions": [NAME, ...]}
    {"cmd": "exit"}

A client sends ``{"type": "MESSAGE", "payload": V}`` and reports the
payload of the first MESSAGE frame it gets back.
"""

import asyncio
import json
import sys

import aiohttp
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def message(payload):
    return json.dumps({"type": "MESSAGE", "payload": payload})


def first_message(text):
    frame = json.loads(text)
    if frame.get("type") == "MESSAGE":
        return True, frame["payload"]
    return False, None


async def ws_client(command):
    async with connect(command["url"], max_size=None) as ws:
        names = [ext.name for ext in ws.protocol.extensions]
        await ws.send(message(command["payload"]))
        while True:
            found, payload = first_message(await ws.recv())
            if found:
                break
    emit({"event": "ws_client", "extensions": names, "received": payload})


async def aiohttp_client(command):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(command["url"], compress=15) as ws:
            await ws.send_str(message(command["payload"]))
            while True:
                received = await ws.receive()
                if received.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"unexpected {received.type}")
                found, payload = first_message(received.data)
                if found:
                    break
            compress = ws.compress
    emit({"event": "aiohttp_client", "compress": compress, "received": payload})


async def echo(ws):
    emit({"event": "ws_connected",
          "extensions": [ext.name for ext in ws.protocol.extensions]})
    async for text in ws:
        found, payload = first_message(text)
        if found:
            await ws.send(message(payload))


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    servers = []
    while True:
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        cmd = command["cmd"]
        if cmd == "exit":
            break
        try:
            if cmd == "ws_client":
                await ws_client(command)
            elif cmd == "aiohttp_client":
                await aiohttp_client(command)
            elif cmd == "ws_server":
                server = await serve(echo, "127.0.0.1", 0, max_size=None)
                servers.append(server)
                port = list(server.sockets)[0].getsockname()[1]
                emit({"event": "ws_server", "port": port})
            else:
                emit({"event": "error", "error": f"unknown command {cmd}"})
        except Exception as err:  # reported to the test, which fails
            emit({"event": "error", "error": repr(err)})
    for server in servers:
        server.close()
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
