"""A real English->German parallel corpus from the gettext message catalogues Debian installs.

No translation corpus installs offline here (bench_translation.py's docstring lists what was searched), but every
Debian package with German messages ships a human-translated catalogue in /usr/share/locale/de/LC_MESSAGES/*.mo
(coreutils, git, apt, gtk, glib, PostgreSQL, iso-codes...): tens of thousands of English source strings with
their German translations. It is software-interface text (error messages, option help, menu labels), not news or
dialogue, and a figure on it says exactly that.

The catalogues are read with the standard library's `gettext` (no parser is hand-written here). Kept: singular
messages of 3 to 30 words on one line, with no format placeholders, markup or command-line syntax, and a
translation that differs from the source; one pair per normalised source (the first catalogue in name order wins).
The eval split is chosen by a hash of the normalised source, so it does not depend on which other catalogues a
machine has, and near-duplicate strings ("cannot open file" / "Cannot open file.") land on the same side.

    python bench/gettext_pairs.py OUT_DIR [--catalogues '/usr/share/locale/de/LC_MESSAGES/*.mo'] [--eval 600]
"""
from __future__ import annotations

import argparse
import csv
import gettext
import glob
import hashlib
import json
import re
from pathlib import Path

DEFAULT_CATALOGUES = "/usr/share/locale/de/LC_MESSAGES/*.mo"
# printf/format placeholders, markup, escapes, shell and option syntax: strings a translator copies verbatim
_VERBATIM = re.compile(r"%|\{|\}|\$|<|>|\\|--|\[|\]|_\w|\w_|\||=|\.\.\.$|\t")


def _normalise(text: str) -> str:
    return re.sub(r"[^\w ]+", "", text.lower()).strip()


def _keep(source: str, target: str) -> bool:
    words = source.split()
    return (3 <= len(words) <= 30 and "\n" not in source and "\n" not in target and not _VERBATIM.search(source)
            and not _VERBATIM.search(target) and _normalise(source) != _normalise(target))


def read_catalogues(pattern: str) -> tuple[dict[str, str], dict[str, int]]:
    """Normalised source -> (source, target) pairs, and the number of pairs each catalogue contributed."""
    pairs: dict[str, tuple[str, str]] = {}
    counts: dict[str, int] = {}
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, "rb") as handle:
                catalogue = gettext.GNUTranslations(handle)._catalog  # the parsed msgid -> msgstr table
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # a catalogue in a legacy charset or a broken file: skipped, not guessed at
        added = 0
        for msgid, msgstr in catalogue.items():
            if not isinstance(msgid, str) or not msgid or not msgstr:
                continue  # plural forms are keyed (msgid, n); the header has an empty msgid
            source, target = msgid.strip(), msgstr.strip()
            key = _normalise(source)
            if key and key not in pairs and _keep(source, target):
                pairs[key] = (source, target)
                added += 1
        if added:
            counts[Path(path).stem] = added
    return pairs, counts


def is_eval(key: str, eval_per_mille: int) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 1000 < eval_per_mille


def write_split(out: Path, pattern: str, eval_size: int) -> dict:
    pairs, counts = read_catalogues(pattern)
    if not pairs:
        raise SystemExit(f"error: no usable message catalogues match {pattern}\n"
                         "fix: install Debian packages with German messages, or pass --catalogues")
    per_mille = max(1, round(1000 * eval_size / len(pairs)))
    split: dict[str, list[tuple[str, str]]] = {"train": [], "eval": []}
    for key in sorted(pairs):
        split["eval" if is_eval(key, per_mille) else "train"].append(pairs[key])
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in split.items():
        with (out / f"{name}.tsv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            writer.writerow(["source", "target"])
            writer.writerows(rows)
    summary = {"catalogues": pattern, "pairs": len(pairs), "train": len(split["train"]), "eval": len(split["eval"]),
               "per_catalogue": counts}
    (out / "corpus.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--catalogues", default=DEFAULT_CATALOGUES, help="glob of .mo files (default: %(default)s)")
    parser.add_argument("--eval", type=int, default=600, help="about this many held-out pairs")
    args = parser.parse_args()
    summary = write_split(args.out, args.catalogues, args.eval)
    print(f"{summary['pairs']} pairs from {len(summary['per_catalogue'])} catalogues: "
          f"{summary['train']} train, {summary['eval']} eval -> {args.out}")


if __name__ == "__main__":
    main()
