"""The web demo (``tools/web_demo.py``): :mod:`.session` segments a request, :mod:`.app` is the
Gradio page (an optional extra: ``pip install -e .[web]``)."""
