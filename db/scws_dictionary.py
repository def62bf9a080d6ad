"""SCWS's own word list (dev/dict/w.txt: word, frequency, part of speech; GBK) as the text input
of scws-gen-dict (word, tf, idf, part of speech; UTF-8). The database image and the local
zhparser build of the tests make their dictionary this same way, from the same pinned commit.

Usage: python3 scws_dictionary.py w.txt dict.txt
"""

from __future__ import annotations

import math
import sys


def main(source: str, target: str) -> None:
    with open(source, encoding="gbk", errors="ignore") as words, open(target, "w", encoding="utf-8") as out:
        for line in words:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or not fields[0]:
                continue
            frequency = int(fields[1]) if fields[1].isdigit() else 1
            weight = math.log(frequency + 1)  # frequent words weigh more, rare ones are more telling
            out.write(f"{fields[0]}\t{weight:.2f}\t{max(1.0, 20 - weight):.2f}\t{fields[2]}\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
