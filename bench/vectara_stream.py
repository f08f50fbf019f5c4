"""Bench (not a test): the Vectara backend's own cost per streamed chunk, against the loopback fake.

    python bench/vectara_stream.py [chunks]

Serves one pre-framed stream of N `generation_chunk` events and times (a) reading the
bytes with plain httpx and (b) the backend turning them into answer events; the
difference per chunk is the backend's overhead (SSE decoding, JSON, event mapping).
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx

from botkit.backends import Question, Session
from botkit.events import TextDelta, ThreadKey
from botkit_plugins.vectara.backend import VectaraBackend
from botkit_plugins.vectara.config import VectaraConfig
from botkit_plugins.vectara.fake import FakeVectara, Raw, frame


async def main(chunks: int) -> None:
    body = b"".join([frame({"type": "chat_info", "chat_id": "cht_b", "turn_id": "trn_b"}),
                     *(frame({"type": "generation_chunk", "generation_chunk": f" word{i}"}) for i in range(chunks)),
                     frame({"type": "end"})])
    async with FakeVectara() as fake:
        fake.respond("POST", "/v2/chats", Raw(body))
        async with httpx.AsyncClient(base_url=fake.url) as client:
            start = time.perf_counter()
            async with client.stream("POST", "/v2/chats", json={}) as response:
                async for _ in response.aiter_raw():
                    pass
            raw = time.perf_counter() - start
        config = VectaraConfig(api_key="bench-key", base_url=fake.url, corpora=[{"corpus_key": "bench"}])
        backend = VectaraBackend("bench", config, None)
        await backend.start()
        start = time.perf_counter()
        deltas = 0
        async for event in backend.stream(Session(ThreadKey("b", "b", "b", "b"), "bench"), Question("q", "u")):
            deltas += isinstance(event, TextDelta)
        parsed = time.perf_counter() - start
        await backend.close()
    assert deltas == chunks
    print(f"{chunks} chunks, {len(body) / 1e6:.1f} MB: raw read {raw:.3f}s, backend {parsed:.3f}s "
          f"-> {chunks / parsed:,.0f} chunks/s parsed, overhead {(parsed - raw) / chunks * 1e6:.1f} us/chunk")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
