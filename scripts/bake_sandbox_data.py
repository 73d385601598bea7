"""Bakes the sandbox's offline data into its environment (run by scripts/setup.sh with the
sandbox's own Python): nltk's common corpora, spaCy's small English model and matplotlib's
configuration and font cache, with CJK and emoji fallback fonts. Sandboxes have no network,
so what is not baked here is not there. Each part is skipped when present; a part whose
source cannot be reached is reported and the rest goes on.

    .sandbox-env/bin/python scripts/bake_sandbox_data.py .sandbox-env
"""

import os
import subprocess
import sys
from pathlib import Path

NLTK_PACKAGES = ("punkt", "punkt_tab", "stopwords", "wordnet", "omw-1.4", "vader_lexicon",
                 "averaged_perceptron_tagger_eng", "brown", "movie_reviews", "conll2000")
SPACY_MODEL = "en_core_web_sm"
SPACY_MODEL_URL = ("https://github.com/explosion/spacy-models/releases/download/"
                   "en_core_web_sm-3.8.0/en_core_web_sm-3.8.0-py3-none-any.whl")
# Tried in order for each glyph: matplotlib (>= 3.6) falls back per glyph along font.family, but
# a generic family ("sans-serif") counts as one font, so the families are named.
FALLBACK = ("DejaVu Sans", "Noto Sans CJK JP", "Symbola")
MATPLOTLIBRC = f"""\
# Written by codeinterp's setup: Chinese, Japanese, Korean and emoji text draws without boxes.
font.family: {", ".join(FALLBACK)}
font.sans-serif: {", ".join(FALLBACK)}, Liberation Sans, sans-serif
"""


def bake_nltk(env: Path) -> bool:
    target = env / "nltk_data"  # on nltk's search path: sys.prefix/nltk_data
    import nltk
    ok = True
    for package in NLTK_PACKAGES:
        if not nltk.download(package, download_dir=str(target), quiet=True, raise_on_error=False):
            print(f"bake_sandbox_data: nltk data {package} could not be fetched", file=sys.stderr)
            ok = False
    return ok


def bake_spacy_model() -> bool:
    try:
        __import__(SPACY_MODEL)
        return True
    except ImportError:
        pass
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--timeout", "30", "--retries", "0",
                           SPACY_MODEL_URL])
    if done.returncode != 0:
        print(f"bake_sandbox_data: spaCy's {SPACY_MODEL} could not be fetched", file=sys.stderr)
    return done.returncode == 0


def bake_matplotlib(env: Path) -> bool:
    config = env / "mplconfig"
    config.mkdir(exist_ok=True)
    (config / "matplotlibrc").write_text(MATPLOTLIBRC)
    for cache in config.glob("fontlist-*.json"):  # fonts may have been installed since
        cache.unlink()
    subprocess.run([sys.executable, "-c", "import matplotlib.pyplot"], check=True,
                   env={**os.environ, "MPLCONFIGDIR": str(config)})
    return True


def main() -> int:
    env = Path(sys.argv[1]).resolve()
    results = [bake_matplotlib(env), bake_nltk(env), bake_spacy_model()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
