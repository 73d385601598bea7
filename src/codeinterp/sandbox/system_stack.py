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
    nltk_data = sandbox_env / "nltk_data"
    return [
        Need("nltk punkt_tab", nltk_data / "tokenizers" / "punkt_tab" / "english", "nltk.word_tokenize, sent_tokenize"),
        Need("nltk stopwords", nltk_data / "corpora" / "stopwords" / "english", "nltk.corpus.stopwords"),
        Need("nltk wordnet", nltk_data / "corpora" / "wordnet" / "lexnames", "nltk wordnet, WordNetLemmatizer"),
        Need("nltk vader_lexicon", nltk_data / "sentiment" / "vader_lexicon.zip", "nltk's SentimentIntensityAnalyzer"),
        Need("nltk averaged_perceptron_tagger_eng", nltk_data / "taggers" / "averaged_perceptron_tagger_eng",
             "nltk.pos_tag, textblob tags; in no registry, see README"),
        Need("nltk omw-1.4", nltk_data / "corpora" / "omw-1.4", "wordnet in other languages; in no registry, see README"),
        Need("spaCy en_core_web_sm", site / "en_core_web_sm", "spacy.load('en_core_web_sm')"),
        Need("matplotlib fonts", sandbox_env / "mplconfig" / "matplotlibrc", "CJK and emoji fallback"),
    ]
