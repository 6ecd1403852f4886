"""Following a Ray job's output live: the Jobs API's async log tail, pumped on a thread into plain lines."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from arbitrage.launch.backend import LaunchError
from arbitrage.launch.ray.client import one_line


def follow_logs(client: Any, sid: str) -> Iterator[str]:
    """Lines of the job's output as they come (Jobs API websocket), until the job ends or the caller stops."""
    import asyncio
    import queue
    import threading

    lines: queue.Queue[str | BaseException | None] = queue.Queue(maxsize=10_000)
    loop = asyncio.new_event_loop()
    task_box: dict[str, asyncio.Task[None]] = {}

    async def pump() -> None:
        buffer = ""
        async for chunk in client.tail_job_logs(sid):
            buffer += chunk
            *complete, buffer = buffer.split("\n")
            for line in complete:
                lines.put(line)
        if buffer:
            lines.put(buffer)

    def run() -> None:
        try:
            task_box["task"] = loop.create_task(pump())
            loop.run_until_complete(task_box["task"])
            lines.put(None)
        except asyncio.CancelledError:
            lines.put(None)
        except BaseException as exc:
            lines.put(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"ray-logs-{sid}", daemon=True)
    thread.start()
    try:
        while True:
            item = lines.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise LaunchError(f"following the logs of Ray job {sid} failed: {one_line(item)}")
            yield item
    finally:
        task = task_box.get("task")
        if thread.is_alive() and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=5)
