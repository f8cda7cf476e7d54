"""The web page (Gradio): picture and vocabulary in, overlay, legend and label map out.

Requests are queued and run one at a time; every problem a user can cause is shown in the page's
message box (``#status``), never as a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from .render import legend_html, status_html
from .session import Segmenter, UserError, class_lists

logger = logging.getLogger(__name__)

TITLE = "zsseg_d2: open-vocabulary segmentation"
INTRO = (
    "Upload a picture (or pick a scene below), type the class names to look for, press "
    "**Segment**. Each pixel gets the vocabulary's class whose text embedding it matches best."
)
IMAGE_HEIGHT = 420
CSS = """
#status .zs-error { color: #b00020; white-space: pre-wrap; font-family: monospace; }
#status .zs-ok { color: #1b5e20; }
#input-image img, #overlay img { width: 100%; height: 100%; object-fit: contain; }
#legend table { border-collapse: collapse; }
#legend td { padding: 2px 8px; }
#legend .zs-swatch { display: inline-block; width: 1.1em; height: 1.1em; border: 1px solid #444; }
"""
# system fonts only: the page must not fetch anything from the internet
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
)


def build_app(
    segmenter: Segmenter,
    checkpoints: Sequence[str],
    vocabulary: Sequence[str] = (),
    examples: Sequence[Path] = (),
) -> gr.Blocks:
    """The page; ``checkpoints[0]`` is selected, ``vocabulary`` typed in, ``examples`` offered."""

    def segment(image, vocabulary_text, checkpoint, ensemble, unseen_only, overrides_text):
        image_path = image["path"] if image else None  # the upload, unread (preprocess=False)
        try:
            result = segmenter.segment(
                image_path, vocabulary_text, checkpoint, ensemble, unseen_only, overrides_text
            )
        except UserError as error:
            return None, "", None, status_html(str(error), error=True)
        except Exception as error:  # noqa: BLE001  (a bug: say so in the page, log the trace)
            logger.exception("segmentation failed")
            message = (
                f"internal error ({type(error).__name__}: {error}); the server log has the details"
            )
            return None, "", None, status_html(message, error=True)
        return (
            result.overlay,
            legend_html(result.legend),
            str(result.label_png),
            status_html(result.note),
        )

    def fill_class_list(name, checkpoint):
        try:
            return "\n".join(segmenter.class_list(name, checkpoint)), status_html(
                f"class list: {name}"
            )
        except UserError as error:
            return gr.update(), status_html(str(error), error=True)

    # uploads and results are deleted from Gradio's cache an hour after they were made
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row(equal_height=True):
            image = gr.Image(
                label="Your picture",
                type="filepath",
                sources=["upload", "clipboard"],
                height=IMAGE_HEIGHT,
                elem_id="input-image",
            )
            overlay = gr.Image(
                label="Segmentation", interactive=False, height=IMAGE_HEIGHT, elem_id="overlay"
            )
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[image], label="Demo scenes")
        with gr.Row():
            with gr.Column():
                vocabulary_box = gr.Textbox(
                    label="Vocabulary: class names, separated by commas or new lines",
                    value="\n".join(vocabulary),
                    lines=4,
                    elem_id="vocabulary",
                )
                chosen_list = gr.Dropdown(
                    class_lists(),
                    value=None,
                    label="...or a data set's class list",
                    elem_id="class-list",
                )
                checkpoint = gr.Dropdown(
                    list(checkpoints),
                    value=checkpoints[0] if checkpoints else None,
                    allow_custom_value=True,
                    label="Checkpoint (.pth; its config.yaml and text record are used)",
                    elem_id="checkpoint",
                )
                with gr.Row():
                    ensemble = gr.Checkbox(label="CLIP ensemble", value=False, elem_id="ensemble")
                    unseen_only = gr.Checkbox(
                        label="Show unseen classes only", value=False, elem_id="unseen-only"
                    )
                with gr.Accordion("Config overrides", open=False, elem_id="overrides-panel"):
                    overrides_box = gr.Textbox(
                        label="KEY VALUE pairs for this request, on top of the command line's, "
                        "e.g. MODEL.CLIP.PRETRAINED /path/to/clip.bin",
                        elem_id="overrides",
                    )
                button = gr.Button("Segment", variant="primary", elem_id="segment")
            with gr.Column():
                status = gr.HTML(elem_id="status")
                legend = gr.HTML(elem_id="legend")
                label_png = gr.File(
                    label="Label map (PNG, class ids into the vocabulary)", elem_id="label-png"
                )
        button.click(
            segment,
            [image, vocabulary_box, checkpoint, ensemble, unseen_only, overrides_box],
            [overlay, legend, label_png, status],
            concurrency_limit=1,
            api_name="segment",
            # the inputs as sent: gr.Image would decode the upload first and answer a bad file
            # with its own trace; the app reads it and says what is wrong
            preprocess=False,
        )
        chosen_list.input(
            fill_class_list, [chosen_list, checkpoint], [vocabulary_box, status], api_name=False
        )
    return app


def launch(app: gr.Blocks, port: int, allowed_paths: Sequence[Path] = ()) -> str:
    """Serve ``app`` on 127.0.0.1:``port`` without blocking; return its URL."""
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        share=False,
        ssr_mode=False,
        quiet=True,
        show_error=True,
        footer_links=[],
        allowed_paths=[str(p) for p in allowed_paths],
        theme=THEME,
        css=CSS,
    )
    return app.local_url
