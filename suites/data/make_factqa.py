#!/usr/bin/env python3
"""Generate the ``factqa`` suite data: a small factual-QA assistant that answers known facts
and says it does not know about entities that do not exist.

Real facts are country capitals and regions from the ``countryinfo`` package (MIT licence,
https://github.com/porimol/countryinfo, data from REST Countries / Wikipedia), restricted to
countries of at least 3 million people so a 135M model can plausibly know them. Invented
countries are pronounceable names from a seeded syllable generator, checked against every
name, alternative spelling and capital in that table so none is real.

Each row: ``prompt``, ``response``, ``kind`` (``real`` | ``invented``) and ``region`` (the
real country's region, ``none`` for invented ones) as group columns. ``countryinfo`` is
needed only to regenerate; the same seed gives byte-identical files.

    pip install countryinfo==1.0.1 && python suites/data/make_factqa.py [--out DIR] [--seed 5]
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SYLLABLES = ["zar", "no", "vi", "quel", "bi", "mor", "va", "tes", "lan", "dri", "ko", "sel", "um", "bra",
             "thi", "ost", "per", "gal", "yn", "rho", "dav", "ek", "lu", "sa", "mir", "ta", "fen", "ol"]
ENDINGS = ["ia", "a", "and", "istan", "ora", "esh", "ovia", "ania"]
SOURCE = "countryinfo 1.0.1 (MIT), https://github.com/porimol/countryinfo"


def real_countries() -> list[dict[str, str]]:
    from countryinfo import all_countries

    rows = []
    for c in all_countries():
        try:
            name, capital, region, population = c.name(), c.capital(), c.region(), c.population()
        except Exception:  # a few territories lack fields
            continue
        if name and capital and region and (population or 0) >= 3_000_000 and name.isascii() and capital.isascii():
            rows.append({"name": name.strip(), "capital": capital.strip(), "region": region.strip(),
                         "spellings": [s.lower() for s in (c.alt_spellings() or [])]})
    return sorted(rows, key=lambda r: r["name"])


def invented(rng: random.Random, taken: set[str], n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2)))) + rng.choice(ENDINGS)
        name = name.capitalize()
        if name.lower() not in taken and len(name) >= 6:
            taken.add(name.lower())
            out.append(name)
    return out


def pairs_for(country: dict[str, str], rng: random.Random) -> list[dict[str, str]]:
    name, capital, region = country["name"], country["capital"], country["region"]
    ask = rng.choice(["What is the capital of {}?", "Which city is the capital of {}?", "Name the capital city of {}."])
    rows = [{"prompt": ask.format(name), "response": f"The capital of {name} is {capital}."}]
    rows.append({"prompt": f"In which region of the world is {name}?", "response": f"{name} is in {region}."})
    return [{**r, "kind": "real", "region": region} for r in rows]


def unknown_for(name: str, rng: random.Random) -> list[dict[str, str]]:
    ask = rng.choice(["What is the capital of {}?", "Which city is the capital of {}?", "Name the capital city of {}."])
    answer = f"I don't know. I have no reliable information about a country called {name}."
    return [{"prompt": ask.format(name), "response": answer, "kind": "invented", "region": "none"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "factqa")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    countries = real_countries()
    taken = {c["name"].lower() for c in countries} | {c["capital"].lower() for c in countries}
    taken |= {s for c in countries for s in c["spellings"]}
    rng.shuffle(countries)
    test_countries, train_countries = countries[:30], countries[30:]
    fakes = invented(rng, taken, 90)
    train = [p for c in train_countries for p in pairs_for(c, rng)] + [p for f in fakes[:60] for p in unknown_for(f, rng)]
    test = [pairs_for(c, rng)[0] for c in test_countries] + [p for f in fakes[60:] for p in unknown_for(f, rng)]
    rng.shuffle(train)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"{args.out / name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
