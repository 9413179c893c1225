"""Everything the Gradio app does, as typed functions; app.py only lays out components and wires events.

    from gan.app.context import load_context
    from gan.app.generate import View, generate_view
    ctx = load_context()                                       # GAN_MODEL_DIR / GAN_MODEL_REPO / checkpoints/
    image = generate_view(ctx, View(seed=42, label=8)).image   # crisp 224x224 PIL image

One module per concern:

* ``context``: the loaded model and the optional parts of its folder (missing ones noted in ``ctx.notes``);
* ``inputs``: checks of raw UI/API values (``AppInputError`` names the bad value);
* ``uploads``: the one path from an upload to what D sees (hardened decoding in ``gan.images``);
* ``generate``, ``interpolate``, ``score``, ``project``, ``model_tab``: one module per tab (layouts of the larger
  ones in ``score_tab``, ``project_tab``, ``game_tab``);
* ``tuned``: the per-session copies of G that projection tunes to a user's garment (a bounded LRU);
* ``plots``: matplotlib figures; ``scratch``: per-request output folders;
* ``examples``: the Score tab's example images, ``project_examples`` the Project tab's; ``cli``:
  ``python -m gan.app write-examples``.

User mistakes raise ``AppInputError`` or ``gan.images.ImageInputError`` with a short message;
app.py shows those messages as they are.
"""

from .. import images as _images  # noqa: F401 - first: installs PIL's decompression-bomb guard process-wide
