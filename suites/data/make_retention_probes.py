"""Generate the probe set of the ``retention`` audit (deterministic: same bytes every run).

    python suites/data/make_retention_probes.py            # writes auditft/resources/retention/probes.jsonl
    python suites/data/make_retention_probes.py --out DIR  # writes DIR/probes.jsonl only
    python suites/data/make_retention_probes.py --check    # exit 1 when the committed file differs

General knowledge a base model has and a fine-tune may forget, in three categories of 50:

* **arithmetic**: seeded sums, differences and products of small whole numbers ("What is 7 + 5?"
  -> "12"). The reference never equals an operand, so an answer that only repeats the question
  is not counted correct.
* **unit_conversion**: seeded quantities times fixed factors of the tables below ("How many
  centimetres are in 3 metres?" -> "300"); the reference never equals the quantity.
* **general_facts**: capitals of well-known countries, the next weekday and month, and a few
  textbook facts, written from the tables below (no download, no library).

Numbers up to 20 accept the number word as an alternative ("12" or "twelve"). No row depends
on anything but this file, so the probes are original to this repository (same licence as auditft).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 2718
ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "auditft" / "resources" / "retention" / "probes.jsonl"
GENERATOR = f"suites/data/make_retention_probes.py (seed {SEED})"
PER_CATEGORY = 50

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]

#: (unit asked for, unit given (plural), factor): "How many <to> are in <q> <from>?"
CONVERSIONS = [
    ("centimetres", "metres", 100), ("millimetres", "centimetres", 10), ("metres", "kilometres", 1000),
    ("grams", "kilograms", 1000), ("millilitres", "litres", 1000), ("minutes", "hours", 60),
    ("seconds", "minutes", 60), ("hours", "days", 24), ("days", "weeks", 7), ("months", "years", 12),
    ("inches", "feet", 12), ("feet", "yards", 3), ("eggs", "dozen eggs", 12),
]
#: the same units spelled the American way, accepted in answers that repeat the unit
AMERICAN = {"centimetres": "centimeters", "millimetres": "millimeters", "metres": "meters",
            "kilometres": "kilometers", "millilitres": "milliliters", "litres": "liters"}

CAPITALS = [
    ("France", "Paris", []), ("Japan", "Tokyo", []), ("Italy", "Rome", []), ("Spain", "Madrid", []),
    ("Germany", "Berlin", []), ("Egypt", "Cairo", []), ("Kenya", "Nairobi", []), ("Canada", "Ottawa", []),
    ("Russia", "Moscow", []), ("China", "Beijing", ["Peking"]), ("India", "New Delhi", ["Delhi"]),
    ("Australia", "Canberra", []), ("Greece", "Athens", []), ("Portugal", "Lisbon", []), ("Norway", "Oslo", []),
    ("Sweden", "Stockholm", []), ("Poland", "Warsaw", []), ("Argentina", "Buenos Aires", []),
    ("Peru", "Lima", []), ("Thailand", "Bangkok", []), ("Ireland", "Dublin", []), ("Austria", "Vienna", []),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
#: (prompt, reference, alternatives)
FACTS = [
    ("How many days are there in a week?", "7", ["seven"]),
    ("How many months are there in a year?", "12", ["twelve"]),
    ("How many legs does a spider have?", "8", ["eight"]),
    ("How many sides does a triangle have?", "3", ["three"]),
    ("What is the largest planet in the Solar System?", "Jupiter", []),
    ("Which planet is closest to the Sun?", "Mercury", []),
    ("What is the chemical symbol for gold?", "Au", []),
    ("What gas do plants absorb from the air for photosynthesis?", "carbon dioxide", ["CO2"]),
    ("At how many degrees Celsius does water freeze at sea level?", "0", ["zero"]),
    ("Who wrote the play Romeo and Juliet?", "Shakespeare", []),
]


def alternatives(number: int) -> list[str]:
    return [NUMBER_WORDS[number]] if 0 <= number <= 20 else []


def arithmetic(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    ops = [("+", "plus"), ("-", "minus"), ("*", "times")]
    while len(rows) < PER_CATEGORY:
        symbol, word = ops[len(rows) % 3]
        if symbol == "*":
            a, b = rng.randint(2, 12), rng.randint(2, 9)
            result = a * b
        else:
            a, b = rng.randint(2, 60), rng.randint(2, 40)
            if symbol == "-":
                a, b = max(a, b) + 1, min(a, b)
            result = a + b if symbol == "+" else a - b
        if result in (a, b):
            continue  # an answer that repeats the question must not count as correct
        prompt = f"What is {a} {symbol} {b}?" if rng.random() < 0.5 else f"What is {a} {word} {b}?"
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append({"prompt": prompt, "reference": str(result), "alternatives": alternatives(result),
                     "source": f"{a} {symbol} {b} = {result} ({GENERATOR})"})
    return rows


def unit_conversion(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    while len(rows) < PER_CATEGORY:
        to, frm, factor = CONVERSIONS[len(rows) % len(CONVERSIONS)]
        quantity = rng.randint(2, 9)
        prompt = f"How many {to} are in {quantity} {frm}?"
        if prompt in seen:
            continue
        seen.add(prompt)
        result = quantity * factor
        alts = alternatives(result) + ([f"{result} {AMERICAN[to]}"] if to in AMERICAN else [])
        rows.append({"prompt": prompt, "reference": str(result), "alternatives": alts,
                     "source": f"{quantity} {frm} x {factor} ({GENERATOR})"})
    return rows


def general_facts() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"prompt": f"What is the capital of {country}?", "reference": city, "alternatives": alts,
         "source": f"capital table in {GENERATOR}"} for country, city, alts in CAPITALS]
    rows += [{"prompt": f"Which day of the week comes after {day}?", "reference": DAYS[(i + 1) % 7],
              "alternatives": [], "source": f"weekday table in {GENERATOR}"} for i, day in enumerate(DAYS)]
    rows += [{"prompt": f"Which month comes after {month}?", "reference": MONTHS[(i + 1) % 12],
              "alternatives": [], "source": f"month table in {GENERATOR}"} for i, month in enumerate(MONTHS[:11])]
    rows += [{"prompt": p, "reference": r, "alternatives": a, "source": f"fact table in {GENERATOR}"}
             for p, r, a in FACTS]
    assert len(rows) == PER_CATEGORY, len(rows)
    return rows


def build() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    out: list[dict[str, object]] = []
    for category, rows in (("arithmetic", arithmetic(rng)), ("unit_conversion", unit_conversion(rng)),
                           ("general_facts", general_facts())):
        prefix = "".join(word[0] for word in category.split("_"))
        for i, row in enumerate(rows, start=1):
            if not row["alternatives"]:
                row = {k: v for k, v in row.items() if k != "alternatives"}
            out.append({"id": f"{prefix}-{i:03d}", "category": category, **row})
    return out


def render(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--out", type=Path, help="write DIR/probes.jsonl only (default: the package copy)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file differs")
    args = parser.parse_args(argv)
    data = render(build())
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_bytes() == data
        print(f"{OUTPUT}: {'up to date' if same else 'differs from the generator: rerun it'}")
        return 0 if same else 1
    target = args.out / "probes.jsonl" if args.out else OUTPUT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"wrote {target} ({len(data.splitlines())} probes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
