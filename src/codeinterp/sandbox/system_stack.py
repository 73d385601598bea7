"""What the sandbox's libraries need beyond Python packages: the Debian programs, libraries and
fonts in debian-packages.txt, and the offline data scripts/bake_sandbox_data.py puts in the sandbox's environment.
`codeinterp doctor` lists each as present or missing."""

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Need:
    name: str  # the Debian package, or the data set
    path: Path  # present when this exists
    used_by: str

    @property
    def present(self) -> bool:
        return self.path.exists()


def system_needs() -> list[Need]:
    needs = []
    for line in (HERE / "debian-packages.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, path, used_by = line.split(" ", 2)
            needs.append(Need(package, Path(path), used_by))
    return needs


def data_needs(sandbox_env: Path) -> list[Need]:
    site = next(iter(sorted((sandbox_env / "lib").glob("python3*/site-packages"))), sandbox_env / "lib")
    return [
        Need("nltk punkt", sandbox_env / "nltk_data" / "tokenizers" / "punkt_tab", "nltk.word_tokenize, textblob"),
        Need("nltk stopwords", sandbox_env / "nltk_data" / "corpora" / "stopwords", "nltk"),
        Need("nltk wordnet", sandbox_env / "nltk_data" / "corpora" / "wordnet.zip", "nltk, textblob"),
        Need("nltk vader", sandbox_env / "nltk_data" / "sentiment" / "vader_lexicon.zip", "nltk sentiment"),
        Need("spaCy en_core_web_sm", site / "en_core_web_sm", "spacy.load('en_core_web_sm')"),
        Need("matplotlib fonts", sandbox_env / "mplconfig" / "matplotlibrc", "CJK and emoji fallback"),
    ]
