"""The explorer's web page: Gradio widgets wired to explore.views.

Gradio is the ML ecosystem's usual library for model demos: widgets made for
images and class probabilities (a sketchpad, a label bar chart), an HTTP API
for every event that its own client (gradio_client) calls, and no JavaScript
to maintain here. It is an optional extra (`pip install -e '.[explore]'`).

Every handler returns a status line as its last output: "" when all went
well, else one sentence saying what was wrong. Errors never reach the page as
tracebacks; the widgets keep their last good picture.
"""

from __future__ import annotations

import random

import gradio as gr
import numpy as np

from infogan import defaults
from infogan.contract import InfoganError
from infogan.explore.drawing import MAX_UPLOAD_BYTES, load_upload, prepare
from infogan.explore.views import GRID_BATCH, MAX_BATCH, SLIDER_STEP, TRAVERSAL_RANGE, Explorer

UNAVAILABLE = "server unavailable"

CSS = """
#status p { color: #b91c1c; font-weight: 600; min-height: 1.2em; }
.pixelated img { image-rendering: pixelated; width: 100% !important; height: 100% !important; object-fit: contain; }
"""


def problem(e: Exception) -> str:
    """One line for the page. A server that stopped answering says so first."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, InfoganError) and ("unreachable" in text or "timeout=" in text or "is not ready" in text):
        return f"{UNAVAILABLE}: {text}. The page recovers by itself when the server is back."
    return text if isinstance(e, InfoganError) else f"{type(e).__name__}: {text}"


def build(explorer: Explorer) -> gr.Blocks:
    t = explorer.template
    choices = explorer.categories()
    with gr.Blocks(title="InfoGAN explorer", analytics_enabled=False) as page:
        gr.Markdown("# InfoGAN explorer\nTurn the codes and watch the digit change; draw a digit and see what Q reads.")
        status = gr.Markdown("", elem_id="status")
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    category = gr.Dropdown(choices, value=choices[0][1], label="Digit (category)", elem_id="category")
                    sliders = [gr.Slider(*TRAVERSAL_RANGE, value=0.0, step=SLIDER_STEP, label=f"Continuous code {j}",
                                         elem_id=f"code{j}") for j in range(t.n_continuous)]
                    with gr.Row():
                        seed = gr.Number(0, label="Noise seed", precision=0, elem_id="seed")
                        new_noise = gr.Button("New noise", elem_id="new-noise")
                    batch = gr.Slider(1, MAX_BATCH, value=GRID_BATCH, step=1, label="Images", elem_id="batch")
                    code = gr.Radio([(f"code {j}", j) for j in range(t.n_continuous)], value=0,
                                    label="Traversal of", elem_id="traverse-code")
                grid = gr.Image(label="Samples", format="png", type="numpy", interactive=False,
                                elem_id="grid", elem_classes="pixelated", height=520, scale=2)
                strip = gr.Image(label=f"Traversal: the chosen code from {TRAVERSAL_RANGE[0]:g} to {TRAVERSAL_RANGE[1]:g}",
                                 format="png", type="numpy", interactive=False, elem_id="traversal",
                                 elem_classes="pixelated", height=360, scale=2)

        with gr.Tab("Encode"):
            with gr.Row():
                with gr.Column():
                    canvas = gr.Sketchpad(label="Draw a digit", type="numpy", image_mode="RGBA", elem_id="canvas",
                                          canvas_size=(280, 280), fixed_canvas=True,
                                          brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"))
                    read_drawing = gr.Button("Read the drawing", variant="primary", elem_id="read-drawing")
                    upload = gr.File(label="…or upload a PNG or an IDX file", elem_id="upload")
                    index = gr.Number(0, label="Image index (IDX files)", precision=0, elem_id="index")
                with gr.Column():
                    predicted = gr.Label(num_top_classes=t.categories, label="Q's category probabilities",
                                         elem_id="probabilities")
                    codes_read = gr.Markdown(elem_id="codes-read")
                    pair = gr.Image(label="Input | G's image from the codes Q read", format="png", type="numpy",
                                    interactive=False, elem_id="reconstruction", elem_classes="pixelated", height=240)

        with gr.Tab("Model"):
            model = gr.Markdown(explorer.describe(), elem_id="model")
            refresh = gr.Button("Refresh", elem_id="refresh")

        # ---- wiring
        def generate(c, s, n, j, *codes):
            try:
                return explorer.grid(c, codes, s, n), explorer.traversal(c, codes, s, j), ""
            except Exception as e:  # noqa: BLE001 - shown on the page, never a traceback
                return gr.update(), gr.update(), problem(e)

        inputs = [category, seed, batch, code, *sliders]
        outputs = [grid, strip, status]
        for i, widget in enumerate((category, batch, code, *sliders)):
            widget.change(generate, inputs, outputs, show_progress="hidden", trigger_mode="always_last",
                          **({"api_name": "generate"} if i == 0 else {"api_visibility": "undocumented"}))
        seed.submit(generate, inputs, outputs, show_progress="hidden", api_visibility="undocumented")
        new_noise.click(lambda: random.randrange(2**31), None, seed, api_visibility="undocumented").then(
            generate, inputs, outputs, show_progress="hidden", api_visibility="undocumented")
        page.load(generate, inputs, outputs, show_progress="hidden", api_visibility="undocumented")

        def shown(reading):
            codes = ", ".join(f"code {j}: {v:+.2f}" for j, v in enumerate(reading.continuous))
            text = (f"**Q reads:** {reading.label}  \n**Continuous code means:** {codes}  \n"
                    f"**D's realness:** {reading.realness:.3f}  \n*{reading.note}*")
            return reading.probabilities, text, reading.side_by_side, ""

        def read_canvas(value):
            try:
                picture = value.get("composite") if isinstance(value, dict) else value
                if picture is None:
                    raise InfoganError("image is blank: draw a digit first")
                return shown(explorer.read(*prepare(np.asarray(picture))))
            except Exception as e:  # noqa: BLE001
                return gr.update(), gr.update(), gr.update(), problem(e)

        def read_file(path, i):
            if not path:
                return gr.update(), gr.update(), gr.update(), ""
            try:
                if i is None or not float(i).is_integer() or i < 0:
                    raise InfoganError(f"index={i} is invalid: give a non-negative integer")
                return shown(explorer.read(*load_upload(path, int(i))))
            except Exception as e:  # noqa: BLE001
                return gr.update(), gr.update(), gr.update(), problem(e)

        encoded = [predicted, codes_read, pair, status]
        read_drawing.click(read_canvas, canvas, encoded, api_name="read_drawing")
        upload.change(read_file, [upload, index], encoded, api_name="read_file")
        index.submit(read_file, [upload, index], encoded, api_visibility="undocumented")

        def describe():
            try:
                return explorer.describe(), ""
            except Exception as e:  # noqa: BLE001
                return gr.update(), problem(e)

        refresh.click(describe, None, [model, status], api_name="describe")
    return page


def launch(explorer: Explorer, host: str = defaults.HOST, port: int = defaults.EXPLORE_PORT, block: bool = True):
    """Serve the page; returns (app, local url) when block is False (tests, benchmarks)."""
    page = build(explorer)
    page.queue(default_concurrency_limit=4)
    app, url, _ = page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
                              show_error=False, footer_links=["api"], css=CSS, ssr_mode=False, share=False,
                              enable_monitoring=False, max_file_size=MAX_UPLOAD_BYTES)
    return page, url
