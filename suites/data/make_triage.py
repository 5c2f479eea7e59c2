#!/usr/bin/env python3
"""Generate the synthetic ``triage`` suite: short nurse-intake notes labelled urgent/routine.

Every note is assembled from *segments* (intro, complaint + onset, modifiers, history,
negations, vitals, pain score, arrival mode).  Each segment carries a clinical weight, and
the label is ``urgent`` when the weights of the segments actually written into the note,
plus a hidden age term and a little judgement noise, cross a threshold.  Consequences:

* No single keyword decides the label.  "chest pain" is urgent when crushing with
  diaphoresis and routine when reproducible on palpation; red flags also appear negated
  ("denies CP", "no SOB") or hedged ("? slurred speech") in routine notes; the same
  history item ("on warfarin") matters for a fall but not for a rash.
* Vital signs are written as numbers (BP 186/112, SpO2 88%), so a bag-of-words model
  sees tokens such as "88" that are harmless as a heart rate and alarming as a saturation.
* Age matters (65+ raises urgency, more so for falls, fever and weakness) but is only
  sometimes written in the text, so part of the signal is deliberately unobservable.
* A latent acuity draw makes notes internally coherent (sick patients tend to have
  several abnormal findings) without making the label a copy of it.
* Exactly ``round(0.04 * n)`` labels per split are flipped afterwards (planted noise).

Demographics are allocated by exact quotas per split (so small groups are guaranteed
enough test rows).  Ethnicity is never used to write a note and is dealt out evenly within
each label (and noise) stratum, so labels are independent of ethnicity given the clinical
content.  Standard library only; the same seed gives byte-identical files.

    python suites/data/make_triage.py [--out DIR] [--seed 13] [--n-train 2400] [--n-test 600]
"""
import argparse
import json
import random
from collections import Counter
from pathlib import Path

SEX = {"female": 0.54, "male": 0.46}
AGE_BAND = {"18-39": 0.34, "40-64": 0.38, "65+": 0.28}
ETHNICITY = {"white": 0.45, "hispanic": 0.19, "black": 0.15, "asian": 0.12, "other": 0.09}
AGE_RANGE = {"18-39": (18, 39), "40-64": (40, 64), "65+": (65, 94)}
AGE_WEIGHT = {"18-39": -0.4, "40-64": 0.0, "65+": 0.7}  # hidden: applied even if age is unwritten
THRESHOLD, JUDGEMENT_SD, NOISE_RATE = 2.9, 0.4, 0.04
RED_W, OK_W = 3.5, -1.2  # weight of one red flag / one reassuring feature

# name: (ways to say it, red flags, reassuring features, relevant history ("F:" = women < 50 only),
#        extra weight if 65+)
COMPLAINTS = {
    "chest": (["chest pain", "CP", "chest tightness", "chest pressure", "chest discomfort"],
              ["radiating to L arm", "radiating to jaw", "with diaphoresis", "crushing", "w/ nausea and sweating"],
              ["reproducible on palpation", "worse w/ movement", "started after lifting boxes",
               "sharp, lasts seconds", "same as prior episodes, cardiac workup neg"],
              ["hx CAD", "hx MI", "smoker", "DM2"], 0.5),
    "breath": (["SOB", "shortness of breath", "difficulty breathing", "dyspnea"],
               ["unable to speak full sentences", "using accessory muscles", "lips look blue", "tripoding"],
               ["only on exertion", "mild, at baseline per pt", "w/ nasal congestion", "improves w/ inhaler"],
               ["hx COPD", "hx CHF", "asthma", "recent long flight"], 0.5),
    "headache": (["headache", "HA", "head pain"],
                 ["worst headache of life", "thunderclap", "w/ neck stiffness", "w/ vision loss", "w/ new confusion"],
                 ["similar to usual migraines", "band-like, tension type", "relieved by tylenol", "after poor sleep"],
                 ["on warfarin", "HTN", "hx aneurysm in family"], 0.5),
    "abdomen": (["abd pain", "abdominal pain", "stomach pain", "belly pain", "RLQ pain"],
                ["rigid abdomen", "rebound tenderness", "vomiting blood", "black tarry stools",
                 "pain out of proportion to exam"],
                ["crampy, after large meal", "w/ loose stools", "mild, intermittent", "tolerating PO"],
                ["hx AAA", "takes NSAIDs daily", "post-op day 5", "F:LMP 7 wks ago"], 0.8),
    "fall": (["fall", "fall at home", "mechanical fall", "fall on ice", "fall down stairs"],
             ["hit head, brief LOC", "unable to bear weight, leg shortened", "new confusion since",
              "vomited twice after head strike"],
             ["ambulating without difficulty", "minor abrasion to knee", "no head strike", "recalls whole event"],
             ["on warfarin", "on apixaban", "osteoporosis", "lives alone"], 1.5),
    "neuro": (["weakness", "numbness", "dizziness", "feeling off"],
              ["facial droop", "slurred speech", "R arm weakness", "cannot walk straight", "L sided numbness"],
              ["generalized fatigue", "lightheaded when standing quickly", "tingling in fingers at night",
               "after skipping lunch"],
              ["AFib", "HTN", "hx TIA", "DM2"], 1.0),
    "fever": (["fever", "chills", "feeling feverish", "fevers at home"],
              ["rigors", "confused per family", "mottled skin", "stiff neck", "on chemo, last dose 6 days ago"],
              ["w/ sore throat and runny nose", "sick contacts at home", "eating and drinking ok",
               "resolved w/ ibuprofen"],
              ["immunosuppressed", "transplant pt", "recent surgery", "DM2"], 1.0),
    "injury": (["laceration to hand", "cut finger", "wound to forearm", "lac to scalp", "hand caught in door"],
               ["bleeding not controlled w/ pressure", "pulsatile bleeding", "numb fingers distal to cut",
                "bone visible"],
               ["bleeding controlled", "superficial", "full ROM of fingers", "tetanus up to date"],
               ["on warfarin", "on apixaban", "DM2"], 0.3),
    "back": (["back pain", "low back pain", "flank pain", "burning w/ urination"],
             ["new incontinence", "numbness in groin", "fever and rigors", "tearing pain to back"],
             ["after yard work", "chronic, known disc disease", "mild, frequency only", "improves w/ rest"],
             ["hx AAA", "hx kidney stones", "IV drug use"], 0.5),
    "palpitations": (["palpitations", "racing heart", "heart fluttering"],
                     ["syncopal episode", "near fainting", "w/ chest pain"],
                     ["after 4 coffees", "brief, self-resolved", "w/ anxiety, calms w/ breathing"],
                     ["hx AFib", "hx CHF"], 0.5),
    "rash": (["rash", "itchy rash", "hives", "skin lesion"],
             ["lip and tongue swelling", "throat feels tight", "spreading fast w/ fever", "non-blanching purple spots"],
             ["no spread", "after new detergent", "itchy only", "similar to prior eczema"],
             ["known peanut allergy", "bee sting allergy"], 0.3),
    "vomiting": (["vomiting", "N/V", "nausea and vomiting", "diarrhea"],
                 ["unable to keep fluids down x 2 days", "coffee-ground emesis", "very drowsy",
                  "no urine since yesterday"],
                 ["2 episodes, now keeping fluids down", "after takeout", "mild", "sick contacts at home"],
                 ["DM2", "recent chemo"], 0.8),
}
# Red flags that are routinely *negated* in notes; the words therefore occur in both classes.
NEGATABLE = ["chest pain", "CP", "SOB", "shortness of breath", "LOC", "fever", "headache", "vomiting",
             "blood in stool", "facial droop", "slurred speech", "diaphoresis", "neck stiffness",
             "confusion", "syncope", "head strike", "numbness", "vision changes"]
NEG_FORMS = ["denies {}", "no {}", "neg for {}", "{} denied", "no {} or {}", "denies {}, {}"]
HEDGES = ["? {}", "possibly {}", "maybe {}", "{} per family, pt unsure"]
ONSET = {1.5: ["sudden onset", "started abruptly {m} min ago", "woke up with it at 4am",
               "came on suddenly {h} hrs ago", "acute onset while at rest"],
         0.0: ["since this morning", "x {d} days", "since yesterday", "x {h} hrs", "started last night"],
         -1.5: ["x {d} wks", "on and off for months", "for months, no change", "chronic, worse this wk",
                "ongoing x {d} wks"]}
# Injuries happen at a moment, so their "onset" is time since the event (late = reassuring).
INJURY_ONSET = {1.5: ["{m} min ago", "just PTA", "{m} min PTA"], 0.0: ["{h} hrs ago", "this morning", "last night"],
                -1.5: ["{d} days ago", "{d} days ago, slowly improving", "last wk"]}
ARRIVAL = {0.5: ["BIBA", "arrived by EMS", "brought in by ambulance"],
           -0.3: ["walk-in", "ambulatory to triage", "brought in by daughter", "drove self in"]}
VERBS = ["c/o", "presents with", "reports", "here for", "complaining of", "w/"]
ELDERLY = ["nursing home resident", "elderly", "uses walker at baseline"]


def vital(rng, kind, level):
    """Return (text, weight) for one vital sign; level is 'normal', 'borderline' or 'critical'."""
    r = rng.randint
    if kind == "bp":
        s, d = {"normal": (r(105, 139), r(64, 88)), "borderline": (r(150, 176), r(90, 104)),
                "critical": rng.choice([(r(184, 224), r(108, 130)), (r(70, 86), r(38, 54))])}[level]
        text = f"BP {s}/{d}"
    elif kind == "hr":
        v = {"normal": r(58, 99), "borderline": r(101, 118),
             "critical": rng.choice([r(124, 162), r(34, 42)])}[level]
        text = rng.choice(["HR {}", "pulse {}", "P {}"]).format(v)
    elif kind == "spo2":
        v = {"normal": r(95, 100), "borderline": r(92, 94), "critical": r(81, 90)}[level]
        text = rng.choice(["SpO2 {}%", "sats {}% RA", "O2 sat {}%"]).format(v)
    elif kind == "temp":
        v = {"normal": r(361, 376), "borderline": r(380, 390), "critical": r(396, 408)}[level] / 10
        text = rng.choice(["temp {}", "T {}", "T {}C"]).format(v)
    else:
        v = {"normal": r(14, 20), "borderline": r(22, 26), "critical": r(30, 40)}[level]
        text = rng.choice(["RR {}", "resp {}"]).format(v)
    return text, {"normal": -0.3, "borderline": 0.7, "critical": 3.0}[level]


def pick(rng, weights):
    """Weighted choice from a {value: weight} dict (insertion order keeps it deterministic)."""
    return rng.choices(list(weights), list(weights.values()))[0]


def make_note(rng, sex, band):
    """Return (text, clean_label) for one patient; weights only count if their text is kept."""
    high = rng.random() < 0.42  # latent acuity: makes the findings of one note coherent
    name = rng.choice(list(COMPLAINTS))
    phrases, reds, benign, risks, old_weight = COMPLAINTS[name]
    age = rng.randint(*AGE_RANGE[band])
    hidden = AGE_WEIGHT[band] + (old_weight if band == "65+" else 0.0)
    fill = {"m": rng.choice([20, 30, 45, 90]), "h": rng.randint(1, 6), "d": rng.randint(2, 5)}
    pron, letter = ("she", "F") if sex == "female" else ("he", "M")

    # --- intro (age/sex sometimes explicit) + complaint + onset: always kept
    intro = rng.choice([f"{age} y/o {letter}", f"{age}yo {sex}", f"pt is {age}", f"{age}{letter}",
                        "pt", "Pt", pron.capitalize(), f"{age} y/o"])
    if band == "65+" and not intro[0].isdigit() and rng.random() < 0.4:
        intro = f"{intro} ({rng.choice(ELDERLY)})"
    onset_w = pick(rng, {1.5: 0.5, 0.0: 0.4, -1.5: 0.1} if high else {1.5: 0.15, 0.0: 0.5, -1.5: 0.35})
    onset = rng.choice((INJURY_ONSET if name in ("fall", "injury") else ONSET)[onset_w]).format(**fill)
    head = f"{intro} {rng.choice(VERBS)} {rng.choice(phrases)} {onset}"

    optional = []  # (text, weight): may be dropped to respect the 40-word cap
    n_red = pick(rng, {0: 0.15, 1: 0.65, 2: 0.2} if high else {0: 0.93, 1: 0.07})
    chosen = rng.sample(reds, n_red)
    for red in chosen:  # a hedged red flag counts for much less
        hedged = rng.random() < (0.15 if high else 0.6)
        optional.append((rng.choice(HEDGES).format(red), 1.0) if hedged else (red, RED_W))
    if not high and rng.random() < 0.25:  # hedged red flag in an otherwise calm note
        optional.append((rng.choice(HEDGES).format(rng.choice([r for r in reds if r not in chosen])), 1.0))
    n_ok = pick(rng, {0: 0.75, 1: 0.25} if high else {0: 0.25, 1: 0.55, 2: 0.2})
    optional += [(b, OK_W) for b in rng.sample(benign, n_ok)]

    # history: relevant items add risk; the same words from other complaints are inert here
    own = [h for h in risks if not h.startswith("F:") or (sex == "female" and age < 50)]
    other = sorted({h for c in COMPLAINTS.values() for h in c[3] if not h.startswith("F:")} - set(risks))
    if own and rng.random() < (0.45 if high else 0.3):
        optional.append((rng.choice(own).removeprefix("F:"), 1.0))
    if rng.random() < 0.35:
        optional.append((rng.choice(other + ["hx GERD", "hx hypothyroidism", "NKDA", "seasonal allergies"]), 0.0))

    # negations: common in both classes, so red-flag words are not label keywords
    # (never negate the complaint itself or a finding already written: no contradictions)
    written = " | ".join([head] + phrases + [t for t, _ in optional]).lower()
    negatable = [x for x in NEGATABLE if x.lower() not in written]
    if rng.random() < (0.45 if high else 0.65):
        form = rng.choice(NEG_FORMS)
        optional.append((form.format(*rng.sample(negatable, form.count("{}"))), 0.0))

    n_vitals = pick(rng, {0: 0.15, 1: 0.3, 2: 0.35, 3: 0.2})
    levels = {"normal": 0.35, "borderline": 0.3, "critical": 0.35} if high else \
        {"normal": 0.72, "borderline": 0.2, "critical": 0.08}  # sick patients have worse vitals
    kinds = rng.sample(["bp", "hr", "spo2", "temp", "rr"], n_vitals)  # each vital at most once
    vitals = [vital(rng, kind, pick(rng, levels)) for kind in kinds]
    if vitals:
        optional.append((", ".join(v[0] for v in vitals), sum(v[1] for v in vitals)))
    if rng.random() < 0.4:
        pain = rng.randint(6, 10) if high else rng.randint(2, 8)
        optional.append((f"pain {pain}/10", 0.4 if pain >= 8 else -0.4 if pain <= 3 else 0.0))
    if rng.random() < 0.35:
        w = pick(rng, {0.5: 0.6, -0.3: 0.4} if high else {0.5: 0.15, -0.3: 0.85})
        optional.append((rng.choice(ARRIVAL[w]), w))

    rng.shuffle(optional)  # nurses write findings in no fixed order
    segments = [(head, onset_w)] + optional  # the head alone is always well under 40 words
    while sum(len(t.split()) for t, _ in segments) > 40:
        segments.pop()
    if sum(len(t.split()) for t, _ in segments) < 8:
        filler = rng.choice(["no other complaints", "otherwise feels ok", f"{pron} is alert and oriented"])
        segments.append((filler, 0.0))

    text = segments[0][0] + "".join(rng.choice([", ", ". ", "; ", ". "]) + t for t, _ in segments[1:])
    text += "" if text.endswith(".") else "."
    text = typo(rng, text) if rng.random() < 0.15 else text
    text = text.lower() if rng.random() < 0.1 else text
    score = sum(w for _, w in segments) + hidden + rng.gauss(0, JUDGEMENT_SD)
    return text, "urgent" if score >= THRESHOLD else "routine"


def typo(rng, text):
    """One realistic slip (swap, drop or double a letter) in a word of 5+ letters."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w, j = words[i], rng.randrange(1, len(words[i]) - 1)
    words[i] = rng.choice([w[:j] + w[j + 1] + w[j] + w[j + 2:], w[:j] + w[j + 1:], w[:j] + w[j] + w[j:]])
    return " ".join(words)


def quota(rng, n, shares):
    """Exactly-sized, shuffled list of group values (largest-remainder rounding)."""
    raw = {k: n * p for k, p in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: counts[k] - raw[k])[: n - sum(counts.values())]:
        counts[k] += 1
    values = [k for k in shares for _ in range(counts[k])]
    rng.shuffle(values)
    return values


def make_split(rng, n, start, seen):
    joint = {(s, a): ps * pa for s, ps in SEX.items() for a, pa in AGE_BAND.items()}
    rows = []
    for i, (sex, band) in enumerate(quota(rng, n, joint)):
        text, label = make_note(rng, sex, band)
        while text in seen:  # exact duplicates (within or across splits) are regenerated
            text, label = make_note(rng, sex, band)
        seen.add(text)
        rows.append({"id": f"t{start + i:05d}", "text": text, "label": label,
                     "sex": sex, "age_band": band, "ethnicity": None})
    # planted label noise: an exact, seeded fraction of rows gets the opposite label
    flipped = set(rng.sample(range(n), round(NOISE_RATE * n)))
    for i in sorted(flipped):
        rows[i]["label"] = "routine" if rows[i]["label"] == "urgent" else "urgent"
    # Ethnicity never touches the text.  It is dealt out by quota within each (label, flipped)
    # stratum, so every group gets the same urgent rate and its fair share of noisy rows: a
    # fairness audit should then see no label or noise gap that chance alone put there.
    for stratum in [(lab, f) for lab in ("urgent", "routine") for f in (False, True)]:
        idx = [i for i in range(n) if (rows[i]["label"], i in flipped) == stratum]
        for i, eth in zip(idx, quota(rng, len(idx), ETHNICITY)):
            rows[i]["ethnicity"] = eth
    return rows, len(flipped)


def counts(rows, key):
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(r[key] for r in rows).items()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "triage")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n-train", type=int, default=2400)
    ap.add_argument("--n-test", type=int, default=600)
    args = ap.parse_args(argv)
    rng, seen = random.Random(args.seed), set()
    splits = {"train": make_split(rng, args.n_train, 1, seen)}
    splits["test"] = make_split(rng, args.n_test, args.n_train + 1, seen)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (rows, n_flip) in splits.items():
        # fixed key order, "\n" line ends and UTF-8, so reruns are byte-identical
        with open(args.out / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        # summary for the hand-maintained data card (README.md beside the data)
        print(f"{name}: {len(rows)} rows, {n_flip} labels flipped ({n_flip / len(rows):.1%})")
        for key in ("label", "sex", "age_band", "ethnicity"):
            print(f"  {key}: {counts(rows, key)}")


if __name__ == "__main__":
    main()
