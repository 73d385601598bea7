"""The sandbox's library stack (sandbox/requirements.txt), in real sandboxes: every group imports,
and each group is used once for real with the system programs and fonts setup installs."""

import pytest

from tests.sandbox.conftest import SandboxHarness

pytestmark = pytest.mark.slow

# Import names of every package in requirements.txt, by group.
GROUPS = {
    "data": "numpy pandas pyarrow polars duckdb scipy numexpr bottleneck xarray h5py tables netCDF4 openpyxl xlrd "
            "xlsxwriter pyxlsb odf python_calamine tabulate dateutil pytz tzdata orjson yaml lxml bs4 "
            "charset_normalizer faker sqlalchemy numpy_financial joblib tqdm",
    "stats-ml": "sklearn statsmodels patsy sympy mpmath networkx numba xgboost lightgbm shap lifelines pymc arviz pywt",
    "plotting": "matplotlib seaborn plotly kaleido bokeh plotnine matplotlib_venn wordcloud folium graphviz pydot "
                "pygraphviz",
    "documents-office": "docx pptx docx2txt docx2python docxtpl mammoth markitdown pypdf PyPDF2 pdfplumber pdfminer "
                        "camelot pdf2image reportlab fpdf weasyprint cairosvg svglib pypandoc markdown markdownify "
                        "ebooklib extract_msg rarfile py7zr vsdx qrcode barcode pyzbar pytesseract",
    "images-media": "PIL cv2 skimage imageio imageio_ffmpeg tifffile moviepy ffmpeg pydub librosa soundfile mutagen "
                    "wand trimesh exifread hachoir fontTools",
    "geo": "geopandas shapely fiona pyogrio pyproj rasterio rioxarray geopy shapefile gpxpy pycountry",
    "text-nlp": "nltk spacy textblob gensim regex rapidfuzz fuzzywuzzy sentencepiece tiktoken langcodes unidecode",
    "runtime-misc": "IPython ipykernel requests httpx aiohttp pydantic jinja2 tenacity rich psutil cryptography Crypto "
                    "pytest dotenv",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    harness = SandboxHarness(tmp_path_factory.mktemp("stack"), sandbox_warm_sessions=0, sandbox_memory_mb=2048,
                             sandbox_exec_timeout_seconds=300)
    yield harness
    harness.close()


def run(stack, code: str):
    """Runs `code` in a fresh session; (status, stdout, the result)."""
    session = stack.session()
    try:
        result = stack.execute(session, code)
        stdout = "".join(o.text for o in result.outputs if o.kind == "stdout")
        return result.status, stdout, result
    finally:
        stack.run(session.close())


@pytest.mark.parametrize("group", GROUPS)
def test_every_package_of_the_group_imports(stack, group):
    code = f"""
import importlib, warnings
warnings.simplefilter('ignore')
failed = []
for name in {GROUPS[group].split()!r}:
    try:
        importlib.import_module(name)
    except Exception as e:
        failed.append(f'{{name}}: {{type(e).__name__}}: {{e}}')
print(failed)
"""
    status, stdout, result = run(stack, code)
    assert (status, stdout) == ("ok", "[]\n"), result.text


def test_office_documents_and_pdf_are_written_and_read(stack):
    code = """
import docx, pptx, openpyxl, pypdf, pdfplumber
from reportlab.pdfgen import canvas
d = docx.Document(); d.add_paragraph('Quarterly report'); d.save('r.docx')
print(docx.Document('r.docx').paragraphs[0].text)
p = pptx.Presentation(); s = p.slides.add_slide(p.slide_layouts[5]); s.shapes.title.text = 'Slide one'; p.save('s.pptx')
print(pptx.Presentation('s.pptx').slides[0].shapes.title.text)
wb = openpyxl.Workbook(); wb.active['A1'] = 42; wb.save('b.xlsx')
print(openpyxl.load_workbook('b.xlsx').active['A1'].value)
c = canvas.Canvas('t.pdf'); c.drawString(72, 720, 'Invoice 1234'); c.save()
print(pypdf.PdfReader('t.pdf').pages[0].extract_text().strip(), pdfplumber.open('t.pdf').pages[0].extract_text())
import pypandoc
print(pypandoc.convert_file('r.docx', 'md').strip())
from pdf2image import convert_from_path
print(convert_from_path('t.pdf', dpi=50)[0].size[1])  # A4 at 50 dpi
"""
    status, stdout, result = run(stack, code)
    assert status == "ok", result.text
    assert stdout.splitlines() == ["Quarterly report", "Slide one", "42", "Invoice 1234 Invoice 1234",
                                   "Quarterly report", "585"]


def test_ocr_reads_a_rendered_image_of_text(stack):
    code = """
from PIL import Image, ImageDraw, ImageFont
import pytesseract
image = Image.new('L', (900, 120), 255)
font = ImageFont.truetype('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 48)
ImageDraw.Draw(image).text((20, 30), 'Hello sandbox 2026', font=font, fill=0)
print(pytesseract.image_to_string(image).strip())
print(sorted(set(pytesseract.get_languages()) & {'eng', 'chi_sim'}))
"""
    status, stdout, result = run(stack, code)
    assert status == "ok", result.text
    assert stdout.splitlines() == ["Hello sandbox 2026", "['chi_sim', 'eng']"]


def test_qr_code_graphviz_video_and_geodata(stack):
    code = """
import qrcode
from pyzbar.pyzbar import decode
qrcode.make('https://example.com/q?1').save('q.png')
from PIL import Image
print(decode(Image.open('q.png'))[0].data.decode())
import graphviz
g = graphviz.Digraph(); g.edge('a', 'b'); g.render('g', format='png')
print(open('g.png', 'rb').read(4) == b'\\x89PNG')
import subprocess
subprocess.run(['ffmpeg', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=10', '-t', '1',
                '-pix_fmt', 'yuv420p', 'v.mp4'], check=True)
import imageio.v3 as iio
print(iio.improps('v.mp4', plugin='pyav').shape if False else len(list(iio.imiter('v.mp4'))) >= 10)
import geopandas, shapely
frame = geopandas.GeoDataFrame({'name': ['a', 'b']}, geometry=[shapely.Point(0, 0), shapely.Point(1, 1)], crs=4326)
frame.to_file('p.geojson'); frame.to_file('p.shp')
print(len(geopandas.read_file('p.geojson')), list(geopandas.read_file('p.shp')['name']))
"""
    status, stdout, result = run(stack, code)
    assert status == "ok", result.text
    assert stdout.splitlines() == ["https://example.com/q?1", "True", "True", "2 ['a', 'b']"]


def test_text_is_tokenized_tagged_and_scored_with_nltk_offline(stack):
    code = """
import nltk
from nltk.corpus import stopwords, wordnet
from nltk.stem import WordNetLemmatizer
from nltk.sentiment.vader import SentimentIntensityAnalyzer
text = 'Dr. Smith paid $3.50 at 9 a.m. on Jan. 5th. The geese were running home! Was it late?'
print(nltk.sent_tokenize(text))
print(nltk.word_tokenize("Don't stop, Mr. Smith."))
print(nltk.sent_tokenize('Das ist z.B. ein Satz. Und noch einer.', 'german'))
print([w for w in nltk.word_tokenize('The geese were running to the house') if w.lower() not in stopwords.words('english')])
lemmatize = WordNetLemmatizer().lemmatize
print(lemmatize('geese'), lemmatize('running', 'v'), lemmatize('better', 'a'))
dog = wordnet.synsets('dog')[0]
print(dog.name(), dog.offset(), dog.lexname(), sorted(h.name() for h in dog.hypernyms()))
print(SentimentIntensityAnalyzer().polarity_scores('VADER is smart, handsome, and funny!'))
"""
    status, stdout, result = run(stack, code)
    assert status == "ok", result.text
    assert stdout.splitlines() == [
        "['Dr. Smith paid $3.50 at 9 a.m. on Jan. 5th.', 'The geese were running home!', 'Was it late?']",
        "['Do', \"n't\", 'stop', ',', 'Mr.', 'Smith', '.']",
        "['Das ist z.B. ein Satz.', 'Und noch einer.']",
        "['geese', 'running', 'house']",
        "goose run good",
        "dog.n.01 2084071 noun.animal ['canine.n.02', 'domestic_animal.n.01']",  # WordNet 3.0's offset for dog.n.01
        "{'neg': 0.0, 'neu': 0.248, 'pos': 0.752, 'compound': 0.8439}",  # as in VADER's own README
    ]


def test_nltk_data_that_no_registry_carries_fails_with_nltks_own_message(stack):
    status, stdout, result = run(stack, "import nltk\nnltk.pos_tag(['A', 'dog'])")
    assert status == "error" and "averaged_perceptron_tagger_eng" in result.text, result.text


def test_spacys_small_english_model_loads_by_its_usual_name(stack):
    code = """
import spacy
nlp = spacy.load('en_core_web_sm')
doc = nlp('Apple is looking at buying a U.K. startup for $1 billion in London on Monday.')
print([(e.text, e.label_) for e in doc.ents])
print([(t.text, t.pos_, t.lemma_) for t in doc][:5])
print(nlp.meta['name'], nlp.meta['version'], spacy.util.get_installed_models())
print(spacy.blank('en')("Don't stop.").__len__())
"""
    status, stdout, result = run(stack, code)
    assert status == "ok", result.text
    assert stdout.splitlines() == [
        "[('Apple', 'ORG'), ('U.K.', 'GPE'), ('$1 billion', 'MONEY'), ('London', 'GPE'), ('Monday', 'DATE')]",
        "[('Apple', 'PROPN', 'Apple'), ('is', 'AUX', 'be'), ('looking', 'VERB', 'look'), ('at', 'ADP', 'at'), "
        "('buying', 'VERB', 'buy')]",
        "core_web_sm 3.8.0 ['en_core_web_sm']",
        "4",
    ]


def test_a_plotly_figure_renders_to_png_offline(stack):
    code = """
import plotly.graph_objects as go
png = go.Figure(go.Bar(x=['a', 'b'], y=[1, 3])).to_image(format='png', width=300, height=200)
print(png[:4] == b'\\x89PNG', len(png) > 1000)
"""
    status, stdout, result = run(stack, code)
    assert (status, stdout) == ("ok", "True True\n"), result.text


CJK_CHART = """
import hashlib, io, warnings
import matplotlib.pyplot as plt
def drawn(char):
    fig = plt.figure(figsize=(1, 1), dpi=60)
    fig.text(0.1, 0.3, char, fontsize=30)
    buffer = io.BytesIO(); fig.savefig(buffer, format='png'); plt.close(fig)
    buffer.seek(0)
    pixels = plt.imread(buffer)[..., :3]
    return hashlib.sha1((pixels < 0.5).tobytes()).hexdigest()
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    tofu = drawn('\\U000F0001')  # no font has it: the missing-glyph box
warnings.simplefilter('error')  # a missing glyph warns: here it fails the cell
chars = '销售额ひらカ한국😀🚀'
seen = {char: drawn(char) for char in chars}
print(len(set(seen.values())) == len(chars), tofu not in seen.values(), drawn(' ') not in seen.values())
fig, ax = plt.subplots(); ax.bar(['东京', '서울'], [1, 2]); ax.set_title('売上 😀'); plt.show()
"""


def test_a_cjk_and_emoji_labelled_chart_draws_every_glyph(stack):
    """Each character draws differently from every other, from nothing, and from the box a
    missing glyph gets; and matplotlib warns of no missing glyph."""
    status, stdout, result = run(stack, CJK_CHART)
    assert status == "ok", result.text
    assert stdout == "True True True\n"
    assert [o.kind for o in result.outputs if o.kind == "image"] == ["image"]
