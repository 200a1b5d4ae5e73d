"""Figures in, bounded `data:image/png;base64,...` URIs out: the one place that knows how a chart is encoded."""

import base64
import io

from matplotlib.figure import Figure
from PIL import Image  # Pillow comes with matplotlib

PREFIX = "data:image/png;base64,"
# the whole URI, base64 included: a materialisation's metadata travels through the event log and GraphQL
MAX_URI_CHARS = 150_000
DPIS = (100, 80, 64, 50)  # tried in turn until the picture fits
# one palette for every chart: status colours and a qualitative cycle
GOOD, WARN, BAD, NEUTRAL = "#2e7d32", "#ef8f00", "#c62828", "#607d8b"


def figure(width: float = 8.0, height: float = 4.0, rows: int = 1, cols: int = 1):
    """A Figure (no pyplot: no global state, nothing opened) and its axes, laid out automatically."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def source_panels(sources: list, row_height: float, extra_height: float):
    """A figure with one panel per source, two to a row (one column for a single source)."""
    cols = 2 if len(sources) > 1 else 1
    rows = max(1, -(-len(sources) // cols))
    return figure(9, row_height * rows + extra_height, rows, cols)


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    # charts hold few colours: a 256-colour palette makes the file several times smaller than RGBA
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=256)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_uri(fig: Figure, max_chars: int = MAX_URI_CHARS) -> str:
    """The figure as a PNG data URI no longer than `max_chars`, at the highest resolution that fits."""
    for dpi in DPIS:
        uri = PREFIX + base64.b64encode(_png(fig, dpi)).decode("ascii")
        if len(uri) <= max_chars:
            return uri
    raise ValueError(f"chart does not fit in {max_chars} characters even at {DPIS[-1]} dpi")


def message(ax, text: str) -> None:
    """What an empty panel says instead of a blank plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
    ax.set_xticks([])
    ax.set_yticks([])


def decode(uri: str) -> bytes:
    """The PNG bytes of a data URI made here (tests, and anyone saving a chart to a file)."""
    if not uri.startswith(PREFIX):
        raise ValueError("not a PNG data URI")
    return base64.b64decode(uri[len(PREFIX):], validate=True)
