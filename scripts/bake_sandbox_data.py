"""Bakes the sandbox's offline data into its environment (run by scripts/setup.sh with the
sandbox's own Python): nltk's common corpora and spaCy's small English model (nlp_data.py), and
matplotlib's configuration and font cache, with CJK and emoji fallback fonts. Sandboxes have no
network, so what is not baked here is not there. Each part is skipped when present and
unchanged; a source that cannot be fetched, or whose pinned hash changed, stops setup.

    .sandbox-env/bin/python scripts/bake_sandbox_data.py .sandbox-env
"""

import os
import subprocess
import sys
from pathlib import Path

from nlp_data import bake_nlp

# Tried in order for each glyph: matplotlib (>= 3.6) falls back per glyph along font.family, but
# a generic family ("sans-serif") counts as one font, so the families are named.
FALLBACK = ("DejaVu Sans", "Noto Sans CJK JP", "Symbola")
MATPLOTLIBRC = f"""\
# Written by codeinterp's setup: Chinese, Japanese, Korean and emoji text draws without boxes.
font.family: {", ".join(FALLBACK)}
font.sans-serif: {", ".join(FALLBACK)}, Liberation Sans, sans-serif
"""


def bake_matplotlib(env: Path) -> None:
    config = env / "mplconfig"
    config.mkdir(exist_ok=True)
    (config / "matplotlibrc").write_text(MATPLOTLIBRC)
    for cache in config.glob("fontlist-*.json"):  # fonts may have been installed since
        cache.unlink()
    subprocess.run([sys.executable, "-c", "import matplotlib.pyplot"], check=True,
                   env={**os.environ, "MPLCONFIGDIR": str(config)})


def main() -> int:
    env = Path(sys.argv[1]).resolve()
    bake_matplotlib(env)
    bake_nlp(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
