"""Added latency of a streamed tool call: what aiproxy spends per chunk turning an upstream tool-call
stream into OpenAI ``tool_calls`` SSE chunks (target p50 <= 0.1 ms per chunk).

    .venv/bin/python bench/tool_stream_bench.py [--chunks 400] [--runs 60]

Two paths, each the real code end to end except the socket: the Bedrock provider's ConverseStream
translation (``contentBlockStart``/``contentBlockDelta.toolUse`` events, as botocore yields them) and
the OpenAI provider's stream reader (the SDK's own ``ChatCompletionChunk`` objects), each followed by
the ``/v1`` route's SSE writer. The figure is (time for the whole stream) / (chunks), per run; the
baseline (iterating the same prepared upstream items without translating) is subtracted.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openai.types.chat import ChatCompletionChunk

from lib.providers.bedrock.provider import BedrockProvider
from lib.providers.deadline import Deadline
from lib.providers.openai.provider import OpenAIProvider
from lib.settings import load_settings
from src.routes.openai_compat import _stream


def bedrock_events(chunks: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"messageStart": {"role": "assistant"}},
        {
            "contentBlockStart": {
                "contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": "t1", "name": "f"}},
            }
        },
    ]
    events += [
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"k": "v", '}}}}
        for _ in range(chunks)
    ]
    events += [
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 5, "outputTokens": chunks}}},
    ]
    return events


def openai_chunks(chunks: int) -> list[ChatCompletionChunk]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "gpt-4o",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    out = [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        )
    ]
    out += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"k": "v", '}}]}) for _ in range(chunks)
    ]
    out.append(chunk({}, "tool_calls"))
    return out


def run_bedrock(provider: BedrockProvider, events: list[dict[str, Any]]) -> float:
    q: queue.Queue[tuple[str, Any]] = queue.Queue()
    for e in events:
        q.put(("event", e))
    q.put(("end", None))
    started = time.perf_counter()
    deltas = provider._stream_deltas(q, Deadline(60), "m", None)
    for _ in _stream("m", deltas, True, {}, 1):
        pass
    return time.perf_counter() - started


def baseline_bedrock(events: list[dict[str, Any]]) -> float:
    q: queue.Queue[tuple[str, Any]] = queue.Queue()
    for e in events:
        q.put(("event", e))
    q.put(("end", None))
    started = time.perf_counter()
    while q.get()[0] != "end":
        pass
    return time.perf_counter() - started


def run_openai(provider: OpenAIProvider, chunks: list[ChatCompletionChunk]) -> float:
    started = time.perf_counter()
    deltas = provider._iterate(iter(chunks), "gpt-4o", Deadline(60))
    for _ in _stream("gpt-4o", deltas, True, {}, 1):
        pass
    return time.perf_counter() - started


def baseline_openai(chunks: list[ChatCompletionChunk]) -> float:
    started = time.perf_counter()
    for _ in iter(chunks):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    settings = load_settings(
        config_file="/nonexistent", aiproxy_api_key="k", openai_api_key="sk", aws_region="us-east-1"
    )
    bedrock = BedrockProvider(settings, client=object())
    oai = OpenAIProvider(settings)
    events, chunks = bedrock_events(args.chunks), openai_chunks(args.chunks)
    result: dict[str, Any] = {"chunks": args.chunks, "runs": args.runs}
    for name, run, base in (
        ("bedrock", lambda: run_bedrock(bedrock, events), lambda: baseline_bedrock(events)),
        ("openai", lambda: run_openai(oai, chunks), lambda: baseline_openai(chunks)),
    ):
        run()  # warm up
        per_chunk_ms = sorted((run() - base()) / args.chunks * 1000 for _ in range(args.runs))
        result[name] = {
            "p50_ms_per_chunk": round(statistics.median(per_chunk_ms), 4),
            "p90_ms_per_chunk": round(per_chunk_ms[int(0.9 * (len(per_chunk_ms) - 1))], 4),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
