"""The HTTP API on asyncio's streams (``python -m shop.server``): GET /health, GET /products."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select, text

from shop.db import make_engine, sessions
from shop.models import Product


async def serve(host: str = "0.0.0.0", port: int = 8000) -> None:  # noqa: S104 - in a container
    engine = make_engine(pool_pre_ping=True)
    maker = sessions(engine)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode().split()
        while (await reader.readline()) not in {b"\r\n", b"\n", b""}:
            pass
        path = request[1] if len(request) > 1 else "/"
        status, body = 404, {"detail": "not found"}
        try:
            async with maker() as session:
                if path == "/health":
                    await session.execute(text("SELECT 1"))
                    status, body = 200, {"status": "ok", "database": "online"}
                elif path == "/products":
                    rows = await session.scalars(select(Product).order_by(Product.sku))
                    body = [{"sku": p.sku, "name": p.name, "price": p.price_cents} for p in rows]
                    status = 200
        except Exception as exc:  # noqa: BLE001 - a 500 names the error
            status, body = 500, {"detail": str(exc)}
        payload = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, host, port)
    print(f"serving on http://{host}:{port}", flush=True)  # noqa: T201
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve())
