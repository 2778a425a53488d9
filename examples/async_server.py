"""A tiny asyncio HTTP server (standard library only) that streams explanations to many clients at
once, all sharing one loaded model.

    python examples/async_server.py --port 8000
    curl -N "http://127.0.0.1:8000/stream?topic=black+holes&seed=2"     # piece by piece
    curl "http://127.0.0.1:8000/explain?topic=volcanoes&seed=4"          # the whole answer

Each request is one asyncio task: ``astream``/``aexplain`` decode on the model's own thread, so the
event loop keeps serving while answers are decoded, and each open stream is its own sequence: a
seed gives the same text whether one client or fifty are being served. A client that hangs up
half way cancels its generation (its sequence is freed at once). Options other than topic and seed
(``lines``, ``steps``, ``palette``...) may be given as query parameters too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import parse_qsl, urlsplit

from emogram import EmogramError, Explainer, Explanation
from emogram.options import TABLE

# the options a query parameter can give, by how its text becomes a value (emogram's option table)
INT_OPTIONS = {o.name for o in TABLE if o.kind in ("int", "span")}
FLOAT_OPTIONS = {o.name for o in TABLE if o.kind == "float"}
TEXT_OPTIONS = {o.name for o in TABLE if o.kind == "text"}
BOOL_OPTIONS = {o.name for o in TABLE if o.kind == "bool"}
BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def options_from(query: str) -> tuple[str, dict]:
    params = dict(parse_qsl(query, keep_blank_values=True))
    topic = params.pop("topic", "")
    options: dict = {}
    for name, value in params.items():
        if name in INT_OPTIONS or name in FLOAT_OPTIONS:
            try:
                options[name] = int(value) if name in INT_OPTIONS else float(value)
            except ValueError:
                raise EmogramError(f"{name} must be a number, got {value!r}") from None
        elif name in TEXT_OPTIONS:
            options[name] = value
        elif name in BOOL_OPTIONS:
            if value.lower() not in BOOLS:
                raise EmogramError(f"{name} must be true or false, got {value!r}")
            options[name] = BOOLS[value.lower()]
        else:
            raise EmogramError(f"unknown option {name!r}")
    return topic, options


async def respond(writer: asyncio.StreamWriter, status: str, body: bytes = b"",
                  content_type: str = "text/plain; charset=utf-8", *, more: bool = False) -> None:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
    head += "Cache-Control: no-cache\r\n\r\n" if more else f"Content-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()


async def handle(explainer: Explainer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):  # skip the headers
            pass
        parts = request.decode("latin-1").split()
        if len(parts) < 2 or parts[0] != "GET":
            await respond(writer, "405 Method Not Allowed", b"GET only\n")
            return
        url = urlsplit(parts[1])
        try:
            topic, options = options_from(url.query)
            if url.path == "/stream":
                # Body: the pieces as they are decoded (the text itself, newlines included); the
                # connection closes when the answer is complete.
                pieces = explainer.astream(topic, **options)
                first = await pieces.__anext__()  # bad options fail here, before the 200
            elif url.path == "/explain":
                answer = await explainer.aexplain(topic, **options)
                body = json.dumps({"topic": answer.topic, "text": str(answer),
                                   "gloss": answer.gloss()}, ensure_ascii=False).encode() + b"\n"
                await respond(writer, "200 OK", body, "application/json; charset=utf-8")
                return
            else:
                await respond(writer, "404 Not Found", b"try /stream or /explain\n")
                return
        except EmogramError as exc:
            await respond(writer, "400 Bad Request", f"{exc}\n".encode())
            return
        await respond(writer, "200 OK", more=True)
        try:
            piece = first
            while not isinstance(piece, Explanation):
                writer.write(piece.encode())
                await writer.drain()  # raises once the client has gone
                piece = await pieces.__anext__()
        finally:
            await pieces.aclose()  # a client gone half way: cancel its generation now
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    except EmogramError:  # failed after the 200 (the model was closed): the body stops short
        pass
    finally:
        writer.close()


async def serve(model: str | None, host: str, port: int) -> None:
    explainer = await asyncio.to_thread(Explainer, model)  # loading takes a while: off the loop
    server = await asyncio.start_server(lambda r, w: handle(explainer, r, w), host, port)
    address = server.sockets[0].getsockname()
    print(f"serving on http://{address[0]}:{address[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a preset name or .gguf path (default: the default model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.model, args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
