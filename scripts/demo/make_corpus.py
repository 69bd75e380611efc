#!/usr/bin/env python3
"""Writes the demo's English corpus and evalsets: short health and nutrition questions with two answer styles.

- plain: one or two short everyday sentences ("Lentils, beans and spinach are good sources of iron.");
- specialised: a long answer in the vocabulary of a nutrition scientist ("Non-haem iron requires duodenal
  cytochrome b reduction before DMT1 transport ...").

The pretraining corpus is almost all plain answers and plain sentences; the specialised style is RARE in it
(about 2% of lines, and those use only a third of the specialised sentences), so under the pretrained base the specialised answers are far less likely than the plain
ones. The preference pairs prefer the specialised answer (chosen) over the plain one (rejected): a large negative
preflight gap, the failure tunecheck exists for.

Outputs (all deterministic for a given --seed; nothing depends on Python's hash order):
  evalsets/demo/corpus/train.jsonl   {"text"} lines for `tunecheck train` (mode sft, fine_tune_type full)
  evalsets/demo/pairs.train.jsonl    {"id", "prompt", "chosen", "rejected"} for DPO
  evalsets/demo/pairs.heldout.jsonl  the same, questions that are in no training pair
  evalsets/demo/prompts.jsonl        {"id", "prompt"} for greedy generation (held-out questions)
  evalsets/demo/texts.jsonl          {"id", "text"} plain reference sentences for the drift suite (not in the corpus)

Usage: python3 scripts/demo/make_corpus.py [--seed 2026]   (standard library only; runs in about a second)
"""
import argparse
import json
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "evalsets" / "demo"

# name, role (3rd person singular clause), what happens without it, specialised sentences (the rare style).
NUTRIENTS = [
    ("iron", "helps your blood carry oxygen", "you can feel tired and short of breath", [
        "Haem iron from myoglobin-rich tissue is absorbed intact, whereas non-haem ferric iron requires duodenal cytochrome b reduction before DMT1-mediated enterocyte uptake.",
        "Systemic iron homeostasis is governed by hepcidin, which internalises ferroportin and restricts basolateral efflux during inflammation.",
        "Transferrin saturation and serum ferritin together distinguish absolute depletion from functional deficiency in erythropoiesis."]),
    ("calcium", "keeps your bones and teeth strong", "your bones can become weak over the years", [
        "Calcium absorption proceeds through calcitriol-dependent transcellular transport via TRPV6 and calbindin, supplemented by paracellular diffusion at high intakes.",
        "Parathyroid hormone modulates renal tubular reabsorption and osteoclastic resorption to maintain extracellular ionised calcium.",
        "Skeletal hydroxyapatite mineralisation reflects the cumulative balance between dietary bioavailability and obligatory urinary losses."]),
    ("vitamin C", "helps your body heal cuts and fight colds", "your gums can bleed and cuts heal slowly", [
        "Ascorbate acts as an essential cofactor for prolyl and lysyl hydroxylases in collagen biosynthesis.",
        "Its redox cycling between ascorbate and dehydroascorbate supports regeneration of alpha-tocopherol within lipid membranes.",
        "Ascorbate reduces ferric to ferrous iron in the intestinal lumen, thereby enhancing non-haem iron bioavailability."]),
    ("vitamin D", "helps your body use calcium", "your bones can become soft and your muscles weak", [
        "Cholecalciferol undergoes hepatic 25-hydroxylation and renal 1-alpha-hydroxylation to yield the hormonally active calcitriol.",
        "Calcitriol binds the nuclear vitamin D receptor, inducing transcription of genes governing intestinal calcium transport.",
        "Circulating 25-hydroxyvitamin D is the accepted biomarker of status, with cutaneous synthesis dependent on ultraviolet B exposure."]),
    ("fibre", "keeps your gut regular and helps you feel full", "you can become constipated", [
        "Fermentable non-starch polysaccharides are metabolised by the colonic microbiota into short-chain fatty acids, principally butyrate, acetate and propionate.",
        "Viscous soluble fibres attenuate postprandial glycaemic excursions by slowing gastric emptying and luminal diffusion of glucose.",
        "Bile acid sequestration by beta-glucans increases hepatic cholesterol catabolism and lowers circulating low-density lipoprotein."]),
    ("protein", "helps build and repair your muscles", "your muscles can get weaker", [
        "Dietary protein quality is characterised by its indispensable amino acid profile and digestibility-corrected scoring.",
        "Leucine stimulates mTORC1 signalling, initiating translational activation of myofibrillar protein synthesis.",
        "Whole-body nitrogen balance reflects the equilibrium between proteolysis, oxidative amino acid catabolism and anabolic incorporation."]),
    ("potassium", "helps your heart and muscles work", "you can get muscle cramps and feel weak", [
        "Potassium gradients maintained by sodium-potassium ATPase establish the resting membrane potential of excitable tissue.",
        "Higher potassium intake promotes natriuresis and attenuates the pressor effect of dietary sodium.",
        "Renal potassium excretion is regulated by aldosterone-dependent secretion in the distal nephron."]),
    ("magnesium", "helps your muscles and nerves work", "you can get cramps and sleep badly", [
        "Magnesium forms the biologically active ATP-magnesium complex required by kinases and polymerases.",
        "As a physiological antagonist at the NMDA receptor, magnesium modulates neuronal excitability and calcium influx.",
        "Intestinal magnesium absorption combines saturable TRPM6-mediated transport with passive paracellular flux."]),
    ("vitamin B12", "helps make red blood cells and keeps your nerves healthy", "you can feel tired and your hands may tingle", [
        "Cobalamin absorption depends on gastric intrinsic factor and receptor-mediated endocytosis in the terminal ileum.",
        "Methylcobalamin serves as cofactor for methionine synthase, remethylating homocysteine within one-carbon metabolism.",
        "Deficiency produces megaloblastic erythropoiesis and demyelination through impaired methylmalonyl-CoA mutase activity."]),
    ("folate", "helps your body make new cells", "you can feel tired and look pale", [
        "Tetrahydrofolate derivatives donate one-carbon units for purine and thymidylate synthesis during cellular replication.",
        "Periconceptional folate sufficiency reduces the incidence of neural tube defects.",
        "Polyglutamate forms require intestinal deconjugation before carrier-mediated absorption in the proximal jejunum."]),
    ("zinc", "helps wounds heal and keeps your immune system working", "cuts can heal slowly and you may catch more colds", [
        "Zinc is a structural and catalytic component of numerous metalloenzymes and zinc-finger transcription factors.",
        "Phytate chelation in cereal and legume matrices substantially impairs zinc bioavailability.",
        "Intracellular zinc is buffered by metallothionein and redistributed by ZIP and ZnT transporter families."]),
    ("omega-3", "helps keep your heart and brain healthy", "your heart may miss out on its protection", [
        "Eicosapentaenoic and docosahexaenoic acids are incorporated into membrane phospholipids, altering fluidity and receptor function.",
        "They serve as precursors of resolvins and anti-inflammatory eicosanoids that modulate leukocyte recruitment.",
        "Pharmacological doses lower fasting triglycerides by suppressing hepatic very-low-density lipoprotein secretion."]),
    ("vitamin A", "helps you see in the dark", "it can be hard to see in dim light", [
        "Retinal is the chromophore of rhodopsin, and its regeneration within the visual cycle sustains scotopic vision.",
        "Provitamin A carotenoids undergo central cleavage by beta-carotene oxygenase in the enterocyte.",
        "Retinoic acid regulates epithelial differentiation through nuclear retinoic acid receptor signalling."]),
    ("iodine", "helps your thyroid work", "you can feel tired and cold", [
        "Iodide is concentrated by the thyroidal sodium-iodide symporter and organified by thyroperoxidase.",
        "Thyroxine and triiodothyronine synthesis requires iodination of tyrosyl residues within thyroglobulin.",
        "Inadequate intake elevates thyrotropin secretion, producing compensatory goitrous hyperplasia."]),
    ("vitamin K", "helps your blood clot", "you can bruise easily", [
        "Phylloquinone is the cofactor for gamma-glutamyl carboxylase, which activates coagulation factors II, VII, IX and X.",
        "Carboxylation of osteocalcin links vitamin K status with bone matrix mineralisation.",
        "Menaquinones synthesised by intestinal bacteria contribute variably to hepatic reserves."]),
]

# name, plural (for verb agreement), nutrients it gives.
FOODS = [
    ("spinach", False, ["iron", "folate", "vitamin K", "magnesium"]),
    ("lentils", True, ["iron", "protein", "fibre", "folate"]),
    ("beans", True, ["fibre", "protein", "iron", "potassium"]),
    ("oats", True, ["fibre", "magnesium", "iron"]),
    ("salmon", False, ["omega-3", "protein", "vitamin D", "vitamin B12"]),
    ("sardines", True, ["omega-3", "calcium", "vitamin D"]),
    ("eggs", True, ["protein", "vitamin B12", "vitamin D", "vitamin A"]),
    ("milk", False, ["calcium", "protein", "iodine", "vitamin B12"]),
    ("yogurt", False, ["calcium", "protein", "iodine"]),
    ("cheese", False, ["calcium", "protein", "vitamin A"]),
    ("oranges", True, ["vitamin C", "folate", "fibre"]),
    ("strawberries", True, ["vitamin C", "fibre"]),
    ("kiwi", False, ["vitamin C", "vitamin K", "fibre"]),
    ("bananas", True, ["potassium", "fibre"]),
    ("potatoes", True, ["potassium", "vitamin C"]),
    ("carrots", True, ["vitamin A", "fibre"]),
    ("sweet potatoes", True, ["vitamin A", "potassium", "fibre"]),
    ("broccoli", False, ["vitamin C", "vitamin K", "fibre", "folate"]),
    ("kale", False, ["vitamin K", "vitamin C", "calcium"]),
    ("almonds", True, ["magnesium", "fibre", "protein"]),
    ("walnuts", True, ["omega-3", "magnesium"]),
    ("pumpkin seeds", True, ["zinc", "magnesium", "iron"]),
    ("chickpeas", True, ["protein", "fibre", "folate", "iron"]),
    ("tofu", False, ["protein", "calcium", "iron"]),
    ("chicken", False, ["protein", "vitamin B12", "zinc"]),
    ("beef", False, ["iron", "zinc", "vitamin B12", "protein"]),
    ("seaweed", False, ["iodine", "vitamin K"]),
    ("avocado", False, ["potassium", "fibre", "folate"]),
    ("peppers", True, ["vitamin C", "vitamin A"]),
    ("brown rice", False, ["magnesium", "fibre"]),
    ("wholemeal bread", False, ["fibre", "iron", "magnesium"]),
    ("peas", True, ["protein", "fibre", "vitamin K"]),
    ("apples", True, ["fibre", "vitamin C"]),
    ("tomatoes", True, ["vitamin C", "potassium"]),
    ("mushrooms", True, ["vitamin D", "potassium"]),
    ("cod", False, ["iodine", "protein", "vitamin B12"]),
    ("oysters", True, ["zinc", "vitamin B12", "iron"]),
    ("flaxseeds", True, ["omega-3", "fibre"]),
    ("sunflower seeds", True, ["magnesium", "zinc"]),
    ("blueberries", True, ["vitamin C", "fibre", "vitamin K"]),
]

# Everyday topics: questions, plain answers, specialised answers.
TOPICS = [
    (["How much water should I drink each day?", "How much water do I need a day?", "Should I drink more water?"],
     ["Most adults need about six to eight glasses of water a day, and more when it is hot.",
      "Drink water through the day, about six to eight glasses, and more when you exercise.",
      "Drink when you are thirsty and have a glass with each meal."],
     ["Fluid requirements are determined by insensible losses, renal solute load and thermoregulatory sweating, with plasma osmolality defended by vasopressin-mediated aquaporin insertion in the collecting duct.",
      "Hydration status is maintained through osmoreceptor-driven thirst and antidiuretic hormone secretion, so individual requirements scale with ambient temperature, metabolic rate and dietary sodium."]),
    (["How many hours of sleep do adults need?", "How much sleep do I need?", "Is six hours of sleep enough?"],
     ["Most adults need seven to nine hours of sleep each night.",
      "Aim for seven to nine hours a night and go to bed at the same time.",
      "Most people feel best with seven to nine hours of sleep."],
     ["Sleep duration requirements reflect homeostatic adenosine accumulation and circadian regulation by the suprachiasmatic nucleus, with chronic restriction impairing glucose tolerance and hypothalamic appetite signalling.",
      "Consolidated sleep of adequate duration permits slow-wave glymphatic clearance and restores prefrontal executive function, whereas fragmentation elevates sympathetic tone and evening cortisol."]),
    (["Is a short walk after meals useful?", "Should I walk after dinner?", "Does walking after eating help?"],
     ["Yes, a short walk after a meal helps your body use the sugar from the food.",
      "Yes, ten minutes of walking after dinner is good for your blood sugar.",
      "Yes, a gentle walk after eating can help with digestion and blood sugar."],
     ["Postprandial ambulation attenuates glycaemic excursions through insulin-independent GLUT4 translocation in contracting skeletal muscle, lowering the incremental area under the glucose curve.",
      "Light postprandial activity increases non-oxidative glucose disposal in skeletal muscle and blunts the hyperinsulinaemic response that follows carbohydrate ingestion."]),
    (["How often should I exercise?", "How much exercise do I need each week?", "Is it enough to exercise once a week?"],
     ["Try to move for about thirty minutes on most days of the week.",
      "Aim for about two and a half hours of activity each week, plus some strength work.",
      "A little exercise on most days is better than a lot once a week."],
     ["Guidelines recommend one hundred and fifty minutes of moderate-intensity aerobic activity weekly, which improves mitochondrial density, insulin sensitivity and endothelial nitric oxide bioavailability.",
      "Regular moderate-intensity training induces peripheral adaptations including capillarisation, increased oxidative enzyme capacity and favourable lipoprotein remodelling."]),
    (["Is too much sugar bad for me?", "Why should I eat less sugar?", "Is sugar bad for my teeth?"],
     ["Yes, too much sugar can harm your teeth and add extra calories.",
      "Eating less sugar is good for your teeth and your weight.",
      "Yes, sugar feeds the germs that cause holes in your teeth."],
     ["Excess free sugar intake promotes hepatic de novo lipogenesis from fructose, while cariogenic bacteria metabolise sucrose to organic acids that demineralise enamel.",
      "High intakes of free sugars increase dietary energy density and fructose-driven hepatic triglyceride synthesis, and acidogenic oral microbiota drive enamel demineralisation."]),
    (["Should I eat less salt?", "Is salt bad for me?", "How much salt is too much?"],
     ["Yes, too much salt can raise your blood pressure.",
      "Most people eat too much salt, so try to use less when you cook.",
      "Keep salt to about one teaspoon a day, including the salt in bread and ready meals."],
     ["Sodium excess expands extracellular fluid volume and increases peripheral vascular resistance, particularly in salt-sensitive individuals with impaired renal natriuresis.",
      "Chronic high sodium intake elevates arterial pressure through volume expansion, endothelial dysfunction and enhanced sympathetic outflow."]),
    (["Is coffee bad for me?", "How much coffee is safe?", "Can I drink coffee every day?"],
     ["A few cups of coffee a day is fine for most adults.",
      "Up to three or four cups a day is safe for most people, but not late in the evening.",
      "Yes, coffee is fine in normal amounts, but it can keep you awake."],
     ["Caffeine antagonises adenosine receptors, and its hepatic clearance by cytochrome P450 1A2 varies widely with genotype, pregnancy and concurrent smoking.",
      "Moderate caffeine intake is associated with neutral cardiovascular outcomes, although adenosine receptor antagonism delays sleep onset when consumed late in the day."]),
    (["Should I eat breakfast?", "Is it bad to skip breakfast?", "What is a good breakfast?"],
     ["Breakfast is not a must, but oats with fruit or eggs on toast is a good start to the day.",
      "A good breakfast has some protein and fibre, like oats with yogurt and fruit.",
      "It is fine to skip breakfast if you eat well later in the day."],
     ["Morning energy intake influences circadian entrainment of peripheral clocks, and a protein-rich breakfast attenuates subsequent ghrelin secretion and postprandial glycaemia.",
      "Meal timing interacts with circadian variation in insulin sensitivity, so a fibre- and protein-rich morning meal moderates later glycaemic responses."]),
    (["Is fruit juice healthy?", "Can I drink fruit juice instead of eating fruit?", "How much fruit juice is okay?"],
     ["One small glass of fruit juice a day is fine, but whole fruit is better.",
      "Whole fruit is better than juice because it keeps the fibre.",
      "Keep fruit juice to one small glass a day and drink it with a meal."],
     ["Juicing disrupts the cellular matrix, liberating free sugars and removing insoluble fibre, which accelerates gastric emptying and elevates the glycaemic response relative to whole fruit.",
      "The absence of an intact plant cell wall in juice increases the rate of intestinal hexose absorption and reduces satiety signalling."]),
    (["How can I feel less stressed?", "What helps with stress?", "Does exercise help with stress?"],
     ["A walk outside, regular sleep and talking to a friend can all help with stress.",
      "Regular exercise and enough sleep make stress easier to handle.",
      "Take short breaks, breathe slowly and get outside for a walk."],
     ["Chronic psychosocial stress sustains hypothalamic-pituitary-adrenal axis activation, and aerobic exercise reduces basal cortisol while enhancing parasympathetic vagal tone.",
      "Stress resilience is supported by regular physical activity, which modulates hypothalamic-pituitary-adrenal reactivity and increases hippocampal neurotrophic factor expression."]),
    (["Are nuts healthy?", "Should I eat nuts every day?", "Are nuts fattening?"],
     ["Yes, a small handful of nuts a day is a healthy snack.",
      "Nuts are good for your heart, but a small handful is enough.",
      "Nuts have healthy fats and fibre, so a handful a day is fine."],
     ["Tree nuts supply monounsaturated fatty acids, phytosterols and arginine, improving lipoprotein profiles, while incomplete lipid bioaccessibility lowers their metabolisable energy.",
      "Habitual nut consumption improves endothelial function and lowers low-density lipoprotein, partly because cell-wall encapsulation limits lipid release during digestion."]),
    (["How many vegetables should I eat?", "How can I eat more vegetables?", "Are frozen vegetables healthy?"],
     ["Try to fill half your plate with vegetables and fruit.",
      "Add vegetables to every meal, and frozen ones are just as good as fresh.",
      "Aim for at least five portions of fruit and vegetables a day."],
     ["Vegetable intake supplies dietary nitrate, polyphenols and potassium, and rapid blanching and freezing preserves most heat-labile micronutrients relative to prolonged refrigerated storage.",
      "Diverse vegetable consumption increases the intake of carotenoids and flavonoids with antioxidant and vasodilatory properties, and cryopreservation limits oxidative micronutrient losses."]),
]

# Specialised sentences that fit any nutrition answer (also rare in pretraining).
GENERIC_SPECIALISED = [
    "Bioavailability is further modulated by the food matrix, concurrent dietary inhibitors and individual physiological status.",
    "Requirements are defined by the estimated average requirement and the recommended dietary allowance for each life stage.",
    "Absorption kinetics vary with gastric acidity, intestinal transit time and the composition of the accompanying meal.",
    "Homeostatic regulation adjusts fractional absorption inversely to body stores, limiting both deficiency and toxicity.",
    "Population studies report associations with reduced cardiometabolic risk, although residual confounding limits causal inference.",
    "Thermal processing can degrade labile micronutrients while increasing the bioaccessibility of others.",
]

PLAIN_SENTENCE_TEMPLATES = [
    "{Food} {is_} a good source of {n1}.",
    "A meal with {food} and {food2} gives you {n1} and {n2}.",
    "{Food} {gives} you {n1}, which {role1}.",
    "If you want more {n1}, try {food} or {food2}.",
    "{N1} {role1}.",
    "Without enough {n1}, {lack1}.",
    "{Food} and {food2} are easy to add to a salad or a soup.",
    "Many people add {food} to their meals to get more {n1}.",
]


def cap(text):
    return text[0].upper() + text[1:]


def join_list(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def nutrient(name):
    return next(n for n in NUTRIENTS if n[0] == name)


def foods_with(name):
    return [f for f in FOODS if name in f[2]]


class Writer:
    """Question/answer generators shared by the corpus and the pairs, all drawing from one seeded RNG."""

    def __init__(self, rng, familiar_only=False):
        self.rng = rng
        # The corpus's rare specialised lines use only the first specialised sentence of each topic and the first
        # two generic ones; the pairs use all of them, so most chosen answers are new to the base.
        self.familiar_only = familiar_only

    def specialised(self, sentences):
        """A long specialised answer: two of the topic's sentences, then a generic one half of the time."""
        pool, generic = (sentences[:1], GENERIC_SPECIALISED[:2]) if self.familiar_only else (sentences, GENERIC_SPECIALISED)
        chosen = self.rng.sample(pool, min(2, len(pool)))
        if self.rng.random() < 0.5:
            chosen += self.rng.sample(generic, 1)
        return " ".join(chosen)

    def nutrient_question(self, n=None):
        """(question, plain answer, specialised answer) about a nutrient."""
        name, role, lack, special = n or self.rng.choice(NUTRIENTS)
        sources = [f[0] for f in foods_with(name)]
        picked = self.rng.sample(sources, min(len(sources), self.rng.choice([2, 3])))
        kind = self.rng.randrange(4)
        if kind == 0:
            question = self.rng.choice(["Which foods are rich in {n}?", "Where can I get {n}?", "What foods have a lot of {n}?",
                                        "Which foods give you {n}?"]).format(n=name)
            plain = self.rng.choice(["{F} are good sources of {n}.", "You can get {n} from {f}.", "Try {f}. They all give you {n}.",
                                     "{F} all give you {n}."])
            plain = plain.format(F=cap(join_list(picked)), f=join_list(picked).replace(" and ", " or ") if "Try" in plain else join_list(picked), n=name)
        elif kind == 1:
            question = self.rng.choice(["What does {n} do?", "Why do I need {n}?", "What is {n} good for?",
                                        "Why is {n} important?"]).format(n=name)
            plain = self.rng.choice(["{N} {role}.", "Your body needs {n} because it {role}.", "{N} {role}. You can find it in {f}."])
            plain = plain.format(N=cap(name), n=name, role=role, f=join_list(picked))
        elif kind == 2:
            question = self.rng.choice(["What happens if I do not get enough {n}?", "What are the signs of low {n}?",
                                        "Is it bad to be low in {n}?"]).format(n=name)
            plain = self.rng.choice(["Without enough {n}, {lack}.", "If you are low in {n}, {lack}.",
                                     "Without enough {n}, {lack}. Eat more {f} to get enough."])
            plain = plain.format(n=name, lack=lack, f=join_list(picked))
        else:
            question = self.rng.choice(["How can I get more {n}?", "How do I add more {n} to my meals?",
                                        "What should I eat to get more {n}?"]).format(n=name)
            plain = self.rng.choice(["Eat more {f}.", "Add {g} to your meals.", "Try to eat {f} a few times a week."])
            plain = plain.format(f=join_list(picked), g=join_list(picked).replace(" and ", " or "))
        return question, plain, self.specialised(special)

    def food_question(self, f=None):
        food, plural, gives = f or self.rng.choice(FOODS)
        is_, gives_, has = ("are", "give", "have") if plural else ("is", "gives", "has")
        picked = self.rng.sample(gives, min(len(gives), self.rng.choice([2, 3])))
        first = nutrient(picked[0])
        kind = self.rng.randrange(3)
        if kind == 0:
            question = self.rng.choice(["Are {f} good for you?" if plural else "Is {f} good for you?", "Is it healthy to eat {f}?",
                                        "Should I eat more {f}?"]).format(f=food)
            plain = self.rng.choice(["Yes, {f} {gives} you {ns}.", "Yes. {F} {is_} a good source of {n1}, which {role}.",
                                     "Yes, {f} {is_} healthy and {gives} you {ns}."])
        elif kind == 1:
            question = self.rng.choice(["What is in {f}?", "What nutrients are in {f}?", "What do {f} give me?" if plural else "What does {f} give me?"]).format(f=food)
            plain = self.rng.choice(["{F} {has} {ns}.", "You get {ns} from {f}.", "{F} {gives} you {ns}."])
        else:
            question = self.rng.choice(["Can I eat {f} every day?", "Is it okay to eat {f} every day?"]).format(f=food)
            plain = self.rng.choice(["Yes, {f} can be part of a healthy diet every day.", "Yes, {f} {is_} fine every day and {gives} you {ns}."])
        plain = plain.format(f=food, F=cap(food), gives=gives_, has=has, is_=is_, ns=join_list(picked), n1=picked[0], role=first[1])
        special = [f"{cap(food)} {'provide' if plural else 'provides'} {join_list(picked)} within a food matrix whose composition determines their bioavailability."]
        pool = first[3][:1] if self.familiar_only else first[3]
        return question, plain, " ".join(special + self.rng.sample(pool, min(len(pool), 1 + self.rng.randrange(2))))

    def topic_question(self, t=None):
        questions, plains, specials = t or self.rng.choice(TOPICS)
        return self.rng.choice(questions), self.rng.choice(plains), self.rng.choice(specials)

    def any_question(self):
        r = self.rng.random()
        if r < 0.45:
            return self.nutrient_question()
        if r < 0.8:
            return self.food_question()
        return self.topic_question()

    def plain_sentence(self):
        food, plural, gives = self.rng.choice(FOODS)
        food2 = self.rng.choice([f for f in FOODS if f[0] != food])[0]
        n1 = nutrient(self.rng.choice(gives))
        n2 = self.rng.choice([g for g in gives if g != n1[0]] or [n1[0]])
        template = self.rng.choice(PLAIN_SENTENCE_TEMPLATES + [None])
        if template is None:
            return self.rng.choice(self.rng.choice(TOPICS)[1])
        return template.format(Food=cap(food), food=food, food2=food2, n1=n1[0], N1=cap(n1[0]), n2=n2, role1=n1[1], lack1=n1[2],
                               is_="are" if plural else "is", gives="give" if plural else "gives")


def qa(question, answer):
    return f"Question: {question}\nAnswer: {answer}"


def prompt(question):
    return f"Question: {question}\nAnswer:"


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--corpus-lines", type=int, default=9000)
    parser.add_argument("--train-pairs", type=int, default=192)
    parser.add_argument("--heldout-pairs", type=int, default=24)
    args = parser.parse_args()

    # Held-out questions first, from their own RNG stream, so no training text or pair asks them.
    heldout_writer = Writer(random.Random(args.seed * 7 + 1))
    heldout = {}
    while len(heldout) < args.heldout_pairs:
        q, plain, special = heldout_writer.any_question()
        heldout.setdefault(q, (plain, special))
    reserved = set(heldout)

    writer = Writer(random.Random(args.seed), familiar_only=True)
    corpus = []
    seen_texts = set()
    while len(corpus) < args.corpus_lines:
        r = writer.rng.random()
        if r < 0.72:
            q, plain, special = writer.any_question()
            if q in reserved:
                continue
            # The rare specialised style: about 2% of lines.
            text = qa(q, special if writer.rng.random() < 0.028 else plain)
        elif r < 0.80:
            q1, a1, _ = writer.any_question()
            q2, a2, _ = writer.any_question()
            if q1 in reserved or q2 in reserved:
                continue
            text = qa(q1, a1) + "\n\n" + qa(q2, a2)
        else:
            text = " ".join(writer.plain_sentence() for _ in range(writer.rng.choice([1, 2, 3])))
        corpus.append({"text": text})
        seen_texts.add(text)
    write_jsonl(OUT / "corpus" / "train.jsonl", corpus)

    pair_writer = Writer(random.Random(args.seed * 7 + 2))
    train_pairs = {}
    while len(train_pairs) < args.train_pairs:
        q, plain, special = pair_writer.any_question()
        if q in reserved:
            continue
        train_pairs.setdefault(q, (plain, special))
    write_jsonl(OUT / "pairs.train.jsonl", [
        {"id": f"train-{i + 1:03d}", "prompt": prompt(q), "chosen": " " + special, "rejected": " " + plain}
        for i, (q, (plain, special)) in enumerate(train_pairs.items())])
    write_jsonl(OUT / "pairs.heldout.jsonl", [
        {"id": f"heldout-{i + 1:02d}", "prompt": prompt(q), "chosen": " " + special, "rejected": " " + plain}
        for i, (q, (plain, special)) in enumerate(heldout.items())])
    write_jsonl(OUT / "prompts.jsonl", [
        {"id": f"prompt-{i + 1}", "prompt": prompt(q)} for i, q in enumerate(list(heldout)[:8])])

    text_writer = Writer(random.Random(args.seed * 7 + 3))
    texts = []
    while len(texts) < 16:
        sentence = " ".join(text_writer.plain_sentence() for _ in range(2))
        if sentence not in seen_texts and sentence not in texts:
            texts.append(sentence)
    write_jsonl(OUT / "texts.jsonl", [{"id": f"text-{i + 1}", "text": t} for i, t in enumerate(texts)])
    size = (OUT / "corpus" / "train.jsonl").stat().st_size
    print(f"wrote {len(corpus)} corpus lines ({size / 1e6:.2f} MB), {len(train_pairs)} train pairs, {len(heldout)} held-out pairs, "
          f"8 prompts, {len(texts)} texts in {OUT}")


if __name__ == "__main__":
    main()
