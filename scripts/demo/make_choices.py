#!/usr/bin/env python3
"""Writes evalsets/demo/choices.jsonl: multiple-choice questions in the demo's domain for the `choices` suite.

Every item is built from the same fact tables the corpus is made from (scripts/demo/make_corpus.py: NUTRIENTS with
what each does and what happens without it, FOODS with the nutrients each gives), and its answer is checked against
them: exactly one choice is true by the tables, the others false (a food that does not give the nutrient, a nutrient
the food does not give, the role or deficiency sign of another nutrient that differs from the right one).

Four kinds of item (126 in all: 24, 72, 15, 15), in the corpus's phrasing but with questions it never asks this way:
  food-for:   "Question: Which food should I eat to get more {nutrient}?\\nAnswer:"  -> " {Food}." (4 foods)
  gives:      "Question: What do {food} give me?\\nAnswer: {Food} give you"          -> " {nutrient}." (4 nutrients)
  role:       "Question: Why does my body need {nutrient}?\\nAnswer: {Nutrient}"   -> " {role}." (3 roles)
  deficiency: "Question: What happens when I lack {nutrient}?\\nAnswer: Without enough {nutrient},"
                                                                                  -> " {sign}." (3 signs)

Usage: python3 scripts/demo/make_choices.py [--seed 18]   (standard library only)
"""
import argparse
import importlib.util
import json
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "scripts" / "demo" / "make_corpus.py")
corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus)

NUTRIENTS = {name: (role, without) for name, role, without, _ in corpus.NUTRIENTS}
FOODS = {name: (plural, set(gives)) for name, plural, gives in corpus.FOODS}
# Items per kind. Most ask what a food gives: the knowledge a fine-tune on food answers can damage; the base knows the
# role and deficiency sentences nearly by heart, so one item per nutrient each is enough.
COUNTS = {"food-for": 24, "gives": 72, "role": 15, "deficiency": 15}


def capital(text):
    return text[0].upper() + text[1:]


def food_for(rng, nutrient):
    having = sorted(f for f, (_, gives) in FOODS.items() if nutrient in gives)
    lacking = sorted(f for f, (_, gives) in FOODS.items() if nutrient not in gives)
    right = rng.choice(having)
    options = [right] + rng.sample(lacking, 3)
    rng.shuffle(options)
    return (f"Question: Which food should I eat to get more {nutrient}?\nAnswer:", [capital(f) + "." for f in options],
            options.index(right))


def gives(rng, subject):
    food, right = subject
    plural, nutrients = FOODS[food]
    options = [right] + rng.sample(sorted(set(NUTRIENTS) - nutrients), 3)
    rng.shuffle(options)
    verb = "give" if plural else "gives"
    question_verb = "do" if plural else "does"
    return (f"Question: What {question_verb} {food} give me?\nAnswer: {capital(food)} {verb} you", [n + "." for n in options],
            options.index(right))


def attribute(rng, nutrient, index, template, lead):
    right = NUTRIENTS[nutrient][index]
    others = sorted({NUTRIENTS[n][index] for n in NUTRIENTS if n != nutrient and NUTRIENTS[n][index] != right})
    options = [right] + rng.sample(others, 2)
    rng.shuffle(options)
    return template.format(n=nutrient, N=capital(nutrient)) + lead.format(n=nutrient, N=capital(nutrient)), \
        [o + "." for o in options], options.index(right)


def check(kind, subject, context, choices, answer):
    """Exactly one choice is true by the fact tables, and it is the answer."""
    truths = []
    for choice in choices:
        value = choice[:-1]
        if kind == "food-for":
            truths.append(subject in FOODS[value[0].lower() + value[1:]][1])
        elif kind == "gives":
            truths.append(value in FOODS[subject[0]][1])
        elif kind == "role":
            truths.append(value == NUTRIENTS[subject][0])
        else:
            truths.append(value == NUTRIENTS[subject][1])
    assert truths.count(True) == 1 and truths[answer], (kind, subject, choices, answer)
    assert len(set(choices)) == len(choices), choices


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    nutrients = sorted(NUTRIENTS)
    foods = sorted(FOODS)
    items = []
    subjects = {
        "food-for": (rng.sample(nutrients, len(nutrients)) * 2)[:COUNTS["food-for"]],
        # (food, a nutrient it gives), each pair at most once
        "gives": rng.sample([(f, n) for f in foods for n in sorted(FOODS[f][1])], COUNTS["gives"]),
        "role": rng.sample(nutrients, COUNTS["role"]),
        "deficiency": rng.sample(nutrients, COUNTS["deficiency"]),
    }
    for kind, names in subjects.items():
        for number, subject in enumerate(names, 1):
            if kind == "food-for":
                context, choices, answer = food_for(rng, subject)
            elif kind == "gives":
                context, choices, answer = gives(rng, subject)
            elif kind == "role":
                context, choices, answer = attribute(rng, subject, 0, "Question: Why does my body need {n}?\nAnswer: ", "{N}")
            else:
                context, choices, answer = attribute(rng, subject, 1, "Question: What happens when I lack {n}?\nAnswer: ",
                                                     "Without enough {n},")
            check(kind, subject, context, choices, answer)
            items.append({"id": f"{kind}-{number}", "context": context, "choices": choices, "answer": answer})
    out = ROOT / "evalsets" / "demo" / "choices.jsonl"
    out.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    print(f"{len(items)} items -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
