"""Where are we drawing? A notebook kernel, or a terminal (script, CLI, pytest).

    if in_notebook():
        handle = display(png_output(png), display_id=True)   # one output...
        handle.update(png_output(new_png))                  # ...replaced, never appended

Why PNG bytes and not display(fig): IPython shows a matplotlib Figure as an
image only after the inline backend has registered its PNG formatter, which
happens when pyplot is set up. Our figures never touch pyplot (figure.py), so
display(fig) would show "<Figure size 1260x640 with 6 Axes>". We render the
PNG ourselves and hand IPython an Image: one image/png output, the same in
JupyterLab, Notebook 7, VS Code, nbclient and nbval, whatever the backend.

Why a display handle and not clear_output(): clear_output() followed by a
new display() adds a new output each time in a recording client (nbclient,
nbval keep every frame until the next clear), and flickers in a browser. A
display handle sends update_display_data: the frontend replaces the output
that has that display_id, in place, so a run leaves exactly one image.
"""


def in_notebook():
    """True in a Jupyter kernel (JupyterLab, Notebook, VS Code), False in a
    terminal, a script, IPython in a terminal or pytest."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def png_output(png, width=None):
    """PNG bytes -> an object IPython displays as one image/png output,
    `width` CSS pixels wide: a PNG of more pixels than that stays sharp on a
    projector or a zoomed screen (and the notebook shrinks it to fit)."""
    from IPython.display import Image

    return Image(data=png, format="png", width=width)
