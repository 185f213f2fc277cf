"""The explorer's responsiveness: a slider move to a new 8x8 grid.

Two figures, side by side on the same model: the handler the page calls
(grid and traversal, in process), and the whole round trip a browser makes
over the page's HTTP API on loopback (the event posted, its result streamed
back, the new grid's PNG fetched). Each call moves code 0 to a new value, so
no answer comes from a cache.
"""

from __future__ import annotations

import time

from infogan.bench.timing import Timing, timed_block


def run(prep, quick: bool = False, log=lambda _: None, budget_s: float | None = None) -> dict:
    import httpx

    from infogan.explore.app import launch
    from infogan.explore.views import GRID_BATCH, SLIDER_STEP, TRAVERSAL_RANGE, Explorer
    from infogan.serve.server import free_port

    budget = budget_s or (2.0 if quick else 8.0)
    explorer = Explorer.open(prep.repository)
    values = iter(range(10**9))

    low, high = TRAVERSAL_RANGE
    positions = round((high - low) / SLIDER_STEP) + 1

    def code() -> list[float]:
        return [low + (next(values) % positions) * SLIDER_STEP, 0.0]  # each of the slider's positions in turn

    def handler() -> None:
        c = code()
        explorer.grid(0, c, 0, GRID_BATCH)
        explorer.traversal(0, c, 0, 0)

    page, url = launch(explorer, port=free_port(), block=False)
    http = httpx.Client(base_url=url, timeout=30)

    def round_trip() -> None:
        event = http.post("/gradio_api/call/generate", json={"data": [0, 0, GRID_BATCH, 0, *code()]}).json()["event_id"]
        stream = http.get(f"/gradio_api/call/generate/{event}").text
        line = next(s for s in stream.splitlines() if s.startswith("data:") and '"url"' in s)
        grid_url = line.split('"url": "', 1)[1].split('"', 1)[0]
        http.get(grid_url).raise_for_status()

    try:
        log("explorer: handler and HTTP round trip, interleaved")
        timings = {"handler": Timing(GRID_BATCH), "round_trip": Timing(GRID_BATCH)}
        for fn in (handler, round_trip):  # warm-up: sessions, the queue, the first PNG
            fn()
        t_end = time.perf_counter() + budget
        while time.perf_counter() < t_end:
            timed_block(handler, timings["handler"], budget / 8)
            timed_block(round_trip, timings["round_trip"], budget / 8)
    finally:
        http.close()
        page.close()
        explorer.close()
    return {"batch": GRID_BATCH, **{k: t.summary() for k, t in timings.items()}}
