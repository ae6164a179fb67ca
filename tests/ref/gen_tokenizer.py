"""Reference for tests/test_tokenizer.c: a small committed SentencePiece model and the ids that
python3-sentencepiece (the same libsentencepiece 0.1.97 as the C wrapper) gives for ~20 strings.
Run: cd tests/ref && /usr/bin/python3 gen_tokenizer.py
Writes data/tokenizer_test.model (trained here on the built-in CORPUS, single thread) and
data/tokenizer.safetensors: for each case i and T in (16, 77): "ids_<T>_<i>" I32 [T] and
"len_<T>_<i>" I32 [1] (tokens before padding). "text_<i>" U8 holds case i's UTF-8 bytes plus a
NUL; "flags" I32 [ncases] holds lower | clean_ws << 1 per case.
Encode contract (text/tokenizer.h): [bos] ids... [eos] padded with pad to T; when too long the
first T-2 ids are kept and eos is the last token (open_clip). Lower-casing is ASCII-only and
whitespace cleaning collapses runs of ASCII whitespace into one space and strips the ends."""
import json
import os
import re

import sentencepiece as spm
import torch

from refutil import DATA_DIR, save

CORPUS = [
    "a photo of a cat sitting on a red sofa",
    "a dog running across the green grass in the park",
    "two people riding bicycles down a busy city street",
    "a close-up photo of a bowl of fresh fruit on a wooden table",
    "an aerial view of a small town next to the sea at sunset",
    "the quick brown fox jumps over the lazy dog",
    "a man in a blue shirt is playing the guitar on stage",
    "children are playing football on a sunny afternoon",
    "a black and white picture of an old train station",
    "a plate of spaghetti with tomato sauce and basil",
    "snow covered mountains under a clear blue sky",
    "a woman reading a book in a quiet library",
    "café crème brûlée à la française, très délicieux",
    "naïve façade of the old théâtre in zürich",
    "niños jugando en la playa, mañana soleada",
    "一只猫坐在红色的沙发上",
    "东京的街道在晚上很热闹",
    "夕焼けの海と小さな町",
    "강아지가 공원에서 뛰고 있다",
    "кошка сидит на диване",
    "ein Hund läuft über die grüne Wiese",
    "emoji: 🐱 🐶 🌅 🍝 ❤️",
    "numbers 0 1 2 3 4 5 6 7 8 9 10 100 2024",
    "punctuation: hello, world! (yes) - \"quoted\" 'single'; a/b?",
]

CASES = [
    ("a photo of a cat", 0),
    ("", 0),
    ("Hello, World! (yes) - \"quoted\"?", 0),
    ("A Photo Of A DOG", 0),
    ("A Photo Of A DOG", 1),
    ("  a   dog\t\trunning \n in the  park  ", 0),
    ("  a   dog\t\trunning \n in the  park  ", 2),
    ("  A   Dog\t\tRunning \n IN the  Park  ", 3),
    ("café crème brûlée", 0),
    ("naïve façade in zürich", 1),
    ("一只猫坐在沙发上", 0),
    ("夕焼けの海", 0),
    ("강아지가 공원에서", 0),
    ("кошка сидит", 0),
    ("emoji 🐱 and 🐶 ❤️", 0),
    ("numbers 12345 and 2024", 0),
    ("xyzzy qwv zzz", 0),
    ("the quick brown fox jumps over the lazy dog and then a man in a blue shirt plays the guitar "
     "on stage while children play football on a sunny afternoon near an old train station", 0),
    ("a very long caption " * 12, 2),
    ("tab\tseparated\tcaption", 0),
]

T_LIST = (16, 77)
BOS, EOS, PAD = 1, 2, 3


def ascii_lower(s):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def clean_ws(s):
    return re.sub(r"[ \t\n\v\f\r]+", " ", s).strip(" ")


def encode(sp, text, flags, T):
    if flags & 1:
        text = ascii_lower(text)
    if flags & 2:
        text = clean_ws(text)
    ids = [BOS] + sp.encode(text, out_type=int) + [EOS]
    if len(ids) > T:
        ids = ids[:T]
        ids[-1] = EOS
    n = len(ids)
    return ids + [PAD] * (T - n), n


def main():
    corpus_path = os.path.join(DATA_DIR, "tokenizer_corpus.tmp.txt")
    os.makedirs(DATA_DIR, exist_ok=True)
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write("\n".join(CORPUS) + "\n")
    prefix = os.path.join(DATA_DIR, "tokenizer_test")
    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=prefix, vocab_size=400, model_type="unigram",
        character_coverage=1.0, unk_id=0, bos_id=BOS, eos_id=EOS, pad_id=PAD,
        hard_vocab_limit=False, num_threads=1, minloglevel=1)
    os.remove(corpus_path)
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    assert (sp.bos_id(), sp.eos_id(), sp.pad_id()) == (BOS, EOS, PAD)
    t = {"flags": torch.tensor([c[1] for c in CASES], dtype=torch.int32)}
    for i, (text, _) in enumerate(CASES):  # UTF-8 bytes plus a NUL, so the C test reads them
        t[f"text_{i}"] = torch.tensor(list(text.encode("utf-8") + b"\0"), dtype=torch.uint8)
    for T in T_LIST:
        for i, (text, flags) in enumerate(CASES):
            ids, n = encode(sp, text, flags, T)
            t[f"ids_{T}_{i}"] = torch.tensor(ids, dtype=torch.int32)
            t[f"len_{T}_{i}"] = torch.tensor([n], dtype=torch.int32)
    # Invalid UTF-8 goes to libsentencepiece as raw bytes (the Python binding accepts bytes):
    # its normalizer maps each bad byte to U+FFFD, not in the vocabulary, so one <unk> (id 0) per
    # run of bad bytes. (Python's own decode("utf-8", "replace") gives different ids.)
    for name, raw in (("invalid_fffe", b"\xff\xfe"), ("invalid_trunc", b"caf\xc3"),
                      ("invalid_mid", b"a \xe4\xb8 cat")):
        ids = [BOS] + sp.encode(raw, out_type=int) + [EOS]
        t[f"{name}"] = torch.tensor(ids, dtype=torch.int32)
    meta = {"generator": "tests/ref/gen_tokenizer.py", "sentencepiece": spm.__version__,
            "vocab": str(sp.get_piece_size()), "cases": json.dumps([c[0] for c in CASES])}
    save("tokenizer", t, meta)
    print("model bytes", os.path.getsize(prefix + ".model"), "vocab", sp.get_piece_size())


if __name__ == "__main__":
    main()
