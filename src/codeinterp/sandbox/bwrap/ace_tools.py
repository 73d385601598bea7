"""`import ace_tools` inside a sandbox: the display helpers of OpenAI's hosted sandbox, which
models trained there call. What they show becomes the execution's outputs (text or PNG), and a
dataframe is also saved as a CSV under /mnt/data, where the user can download it."""

import os
import re

from IPython.display import Image, display

DATA_DIR = "/mnt/data"


def _file_name(name: str, suffix: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", str(name)).strip("._") or "table"
    return os.path.join(DATA_DIR if os.path.isdir(DATA_DIR) else os.getcwd(), stem + suffix)


def display_dataframe_to_user(name: str, dataframe):
    """Shows `dataframe` under `name` and saves it as /mnt/data/<name>.csv."""
    path = _file_name(name, ".csv")
    dataframe.to_csv(path, index=not _default_index(dataframe))
    print(f"{name}: {len(dataframe)} rows x {len(dataframe.columns)} columns, saved to {path}")
    display(dataframe)


def display_chart_to_user(chart=None, *args, **kwargs):
    """Shows a chart: a matplotlib figure, a plotly figure, or (none given) the current matplotlib figure."""
    if chart is not None and hasattr(chart, "to_image"):  # plotly
        display(Image(chart.to_image(format="png")))
        return
    display_matplotlib_image_to_user(chart if hasattr(chart, "savefig") else None)


def display_matplotlib_image_to_user(figure=None, *args, **kwargs):
    """Shows a matplotlib figure (by default the current one) as an image, once."""
    import matplotlib.pyplot as plt

    figure = figure if hasattr(figure, "savefig") else plt.gcf()
    display(figure)
    plt.close(figure)  # else the end of the cell would show it a second time


def _default_index(dataframe) -> bool:
    import pandas

    index = dataframe.index
    return isinstance(index, pandas.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None
