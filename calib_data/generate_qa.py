#!/usr/bin/env python3
"""Generate edge-compress's extractive-QA set (SQuAD format; stdlib only, deterministic).

    python calib_data/generate_qa.py

writes, next to this file:

    qa/train.json, qa/eval.json                            answerable questions (SQuAD v1.1 layout)
    qa/unanswerable_train.json, qa/unanswerable_eval.json  distractors (SQuAD v2 layout, is_impossible: true)

Each paragraph is about one invented entity (a town, a company, a scientist, a voyage, a sports club,
an animal species, a museum or a band). A paragraph is a sequence of *fact groups*; each group has
full sentence variants (whose slot values become answers) and, for some groups, a *bare* variant that
mentions the same entity without the asked attribute. A bare variant yields unanswerable questions
("Who designed the Clock Tower?" when the paragraph names the tower but not its architect), which go
to the separate `unanswerable_*.json` files so that SQuAD v1.1 readers see answerable questions only.

Answer offsets are recorded while the sentences are rendered, then checked again against the finished
context; the script stops with an error if any span does not match. All facts are fictional.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

SEED = 20261201
HERE = Path(__file__).resolve().parent
PER_KIND = 8                 # paragraphs per kind
SIZES = ["short", "short", "medium", "medium", "medium", "long", "long", "long"]
EVAL_INDEXES = (3, 7)        # one medium and one long paragraph per kind go to eval
BARE_RATE = 0.3              # share of optional groups rendered as their bare (attribute-less) variant
SECOND_QUESTION_RATE = 0.35  # chance a fact gets a second, differently worded question
SLOT = re.compile(r"\{(\w+)\}")

FIRST = ["Maren", "Tobias", "Ilse", "Rafael", "Nadia", "Oskar", "Leontine", "Emeric", "Saskia", "Dorian",
         "Wilhelmina", "Anselm", "Priya", "Kofi", "Helga", "Matthias", "Aurelie", "Casimir", "Yara", "Bertram",
         "Lucia", "Fenwick", "Ottilie", "Jasper", "Rosalind", "Teodor", "Imogen", "Valentin", "Greta", "Cyril",
         "Esther", "Lorcan", "Mirela", "Anders", "Beatrix", "Hamish", "Solveig", "Ignatius", "Rhiannon", "Elias"]
LAST = ["Varga", "Holloway", "Brennecke", "Achterberg", "Quennell", "Marchetti", "Oyelaran", "Falkner",
        "Dunmore", "Kristiansen", "Pellegrin", "Ashcombe", "Threlkeld", "Vasquez", "Lindqvist", "Okonkwo",
        "Harrowgate", "Delacroix", "Szabo", "Winterbourne", "Castellanos", "Mbeki", "Rowntree", "Halvorsen",
        "Petrakis", "Gallagher", "Nakamura", "Fairbairn", "Dragomir", "Ellingham", "Kowalczyk", "Abernethy"]
FEMALE = {"Maren", "Ilse", "Nadia", "Leontine", "Saskia", "Wilhelmina", "Priya", "Helga", "Aurelie", "Yara",
          "Lucia", "Ottilie", "Rosalind", "Imogen", "Greta", "Esther", "Mirela", "Beatrix", "Solveig", "Rhiannon"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
CITIES = ["Caldwell", "Port Essary", "Brannock", "Linthorpe", "Morvane", "Saltmere", "Eskerby", "Dunhallow",
          "Kettering Cross", "Ravensholt", "Ambleford", "Tolvern", "Westmarch", "Heddon Bay", "Orrin", "Gallowmere"]
JOBS = ["schoolteacher", "nurse", "bus driver", "lawyer", "carpenter", "journalist", "police officer", "pharmacist",
        "bank clerk", "librarian", "civil engineer", "baker"]


def _year(rng: random.Random, lo: int, hi: int) -> str:
    return str(rng.randrange(lo, hi + 1))


def _count(rng: random.Random, lo: int, hi: int) -> str:
    return f"{rng.randrange(lo, hi + 1):,}"


def _people(rng: random.Random, n: int) -> list[str]:
    firsts, lasts = rng.sample(FIRST, n), rng.sample(LAST, n)
    return [f"{f} {l}" for f, l in zip(firsts, lasts)]


def _pronouns(name: str) -> dict[str, str]:
    she = name.split()[0] in FEMALE
    return {"pron": "she" if she else "he", "Pron": "She" if she else "He", "poss": "her" if she else "his",
            "Poss": "Her" if she else "His"}


# --------------------------------------------------------------------------- kinds
# A kind: "entity" (the main slot, also the title), "names" (one per paragraph), "values" (slot values
# for one paragraph), "groups" (in paragraph order; the first is always rendered in full) and "fillers"
# (sentences without answers that make long paragraphs long).
# A group: "full" (sentence variants), "q" ({slot: question variants}), optional "bare" and "imp"
# ([(question, slot the bare variant leaves out)]).

def town_values(rng: random.Random, name: str) -> dict[str, str]:
    founder, mayor, architect = _people(rng, 3)
    return {
        "town": name, "region": rng.choice(["Northmarch", "Eastern Fells", "Saltcoast", "Green Hollow", "Upper Dene",
                                            "Calder Plain", "Westerlands", "Harrow Downs"]),
        "river": rng.choice(["Ysel", "Marrow", "Tarne", "Welland", "Oska", "Brannow", "Leddon", "Cray"]),
        "founded": _year(rng, 1150, 1720), "founder": founder,
        "founder_role": rng.choice(["a wool merchant", "a salt trader", "a retired sea captain", "a local abbot",
                                    "a wealthy miller", "a knight returning from war"]),
        "census_year": _year(rng, 2011, 2022), "population": _count(rng, 4000, 90000),
        "mayor": mayor, "mayor_year": _year(rng, 2008, 2023), "mayor_job": rng.choice(JOBS),
        "industry": rng.choice(["fishing and boat building", "the manufacture of glass", "cheese making", "tourism",
                                "paper milling", "small software companies", "apple orchards and cider presses"]),
        "share": rng.choice(["a quarter", "a third", "40 percent", "nearly half", "one in five"]),
        "festival": rng.choice(["Lantern Festival", "Harvest Fair", "River Regatta", "Winter Market", "Kite Festival",
                                "Brass Band Week", "Festival of Bread"]),
        "festival_month": rng.choice(MONTHS), "visitors": _count(rng, 3000, 60000),
        "landmark": rng.choice(["Old Corn Exchange", "Clock Tower", "Stone Bridge", "Guildhall", "Harbour Lighthouse",
                                "Covered Market", "Church of St. Aldric"]),
        "architect": architect, "landmark_year": _year(rng, 1760, 1960),
        "city2": rng.choice(CITIES), "rail_year": _year(rng, 1841, 1912), "minutes": str(rng.randrange(18, 96)),
    }


TOWN = {
    "entity": "town",
    "names": ["Tarrowby", "Eskendal", "Marrowgate", "Wenholt", "Quillan Bay", "Drummore", "Halvik", "Pennock",
              "Ludcombe", "Askern Vale"],
    "values": town_values,
    "groups": [
        {"full": ["{town} is a market town in the {region} region, on the northern bank of the River {river}.",
                  "Lying on the River {river}, {town} is one of the oldest towns in the {region} region."],
         "q": {"region": ["In which region is {town}?", "What region is {town} part of?"],
               "river": ["On which river does {town} lie?", "Which river flows past {town}?"]}},
        {"full": ["{town} was founded in {founded} by {founder}, {founder_role}, who built the first mill beside the river.",
                  ("The settlement dates from {founded}, when {founder}, {founder_role}, was granted the right to hold a "
                  "weekly market there.")],
         "q": {"founded": ["When was {town} founded?", "In what year was {town} founded?"],
               "founder": ["Who founded {town}?", "Who is credited with founding {town}?"],
               "founder_role": ["What was the founder of {town}?"]},
         "bare": ["The exact origins of {town} are uncertain, although the market square is thought to be its oldest part."],
         "imp": [("When was {town} founded?", "founded"), ("Who founded {town}?", "founder")]},
        {"full": ["According to the census of {census_year}, {town} had {population} inhabitants.",
                  "The {census_year} census counted {population} people living in {town} and its surrounding villages."],
         "q": {"population": ["How many inhabitants did {town} have according to the {census_year} census?",
                              "What was the population of {town} in {census_year}?"],
               "census_year": ["In what year did a census count {population} people in {town}?"]},
         "bare": ["{town} has grown steadily over the last century, and new housing estates now surround the old centre."],
         "imp": [("How many people live in {town}?", "population")]},
        {"full": ["Since {mayor_year}, {town} has been led by mayor {mayor}, a former {mayor_job}.",
                  "The current mayor of {town}, {mayor}, worked as a {mayor_job} before being elected in {mayor_year}."],
         "q": {"mayor": ["Who is the mayor of {town}?", "Who leads the town of {town}?"],
               "mayor_year": ["Since when has {mayor} been mayor of {town}?"],
               "mayor_job": ["What did {mayor} work as before becoming mayor?"]},
         "bare": ["The town council of {town} meets once a month in the town hall."],
         "imp": [("Who is the mayor of {town}?", "mayor")]},
        {"full": ["The economy of {town} depends mainly on {industry}, which employs {share} of the working population.",
                  "About {share} of the working population of {town} earn their living from {industry}."],
         "q": {"industry": ["What does the economy of {town} mainly depend on?",
                            "Which industry employs the most people in {town}?"],
               "share": ["What share of the working population of {town} works in its main industry?"]}},
        {"full": ["Every {festival_month}, {town} hosts the {festival}, which draws around {visitors} visitors.",
                  "The {festival}, held in {town} each {festival_month}, attracts about {visitors} visitors."],
         "q": {"festival_month": ["In which month is the {festival} held in {town}?"],
               "festival": ["Which festival takes place in {town} every {festival_month}?"],
               "visitors": ["How many visitors does the {festival} attract?",
                            "About how many people come to the {festival} in {town}?"]},
         "bare": ["{town} is also known for its {festival}, a tradition that local families have kept alive for generations."],
         "imp": [("In which month is the {festival} held in {town}?", "festival_month"),
                 ("How many visitors does the {festival} attract?", "visitors")]},
        {"full": ["The best-known building in {town} is the {landmark}, designed by {architect} and completed in {landmark_year}.",
                  ("Visitors to {town} usually start at the {landmark}, which was completed in {landmark_year} to plans "
                  "by {architect}.")],
         "q": {"architect": ["Who designed the {landmark} in {town}?", "Whose plans was the {landmark} built to?"],
               "landmark_year": ["When was the {landmark} in {town} completed?"],
               "landmark": ["Which building in {town} did {architect} design?"]},
         "bare": ["Visitors to {town} usually start at the {landmark}, which stands at the end of the high street."],
         "imp": [("Who designed the {landmark} in {town}?", "architect"),
                 ("When was the {landmark} completed?", "landmark_year")]},
        {"full": ["A railway line opened in {rail_year} connects {town} with {city2}, a journey of about {minutes} minutes.",
                  "Trains have run between {town} and {city2} since {rail_year}; the trip takes about {minutes} minutes."],
         "q": {"city2": ["Which city is linked to {town} by rail?"],
               "minutes": ["How long does the train journey from {town} to {city2} take?"],
               "rail_year": ["When did the railway between {town} and {city2} open?"]},
         "bare": ["A railway line connects {town} with {city2}."],
         "imp": [("How long does the train journey from {town} to {city2} take?", "minutes"),
                 ("When did the railway between {town} and {city2} open?", "rail_year")]},
    ],
    "fillers": [
        ("The streets of the old centre of {town} are narrow and paved with grey cobbles, so most visitors leave their "
        "cars in the car parks at the edge of town."),
        "In wet winters the river floods the meadows to the south, and the footpaths along the water are closed for weeks.",
        "Several cafés around the square stay open late in summer, when musicians play in the open air.",
        "The town library keeps a collection of old maps, letters and photographs that show how the streets once looked.",
        "Farmers from the surrounding villages still bring vegetables, eggs and honey to the Saturday market.",
        "A walking trail follows the old towpath along the river and passes two restored locks.",
        "Local schools run a project in which pupils interview older residents about their memories of {town}.",
        "Many of the houses on the main street were rebuilt in brick after a fire destroyed the wooden buildings.",
        "On clear evenings the hills to the north of {town} give a wide view over the valley and the river.",
        "The covered bus station next to the square was renovated recently and now has a small waiting room.",
        "Some families have run the same shops on the high street for several generations.",
        "Cyclists use the quiet lanes around {town}, which wind between hedges, fields and small woods.",
        "Street lamps in the old quarter were converted from gas to electricity only in the middle of the last century.",
        "The weekly newspaper of {town} is still printed in a small works behind the post office.",
        "A community orchard on the edge of {town} is looked after by volunteers, who press the apples each autumn.",
        "The old grammar school now houses a music school, a youth club and a small theatre.",
        "Heavy lorries have been banned from the centre, and a ring road now carries most of the traffic.",
        "Boats can be hired by the hour from a jetty below the bridge during the summer.",
        "Residents have campaigned for years to reopen the old swimming baths near the river.",
        "A ferry once crossed the river here, and the stone steps where it landed can still be seen.",
    ],
}


COMPANIES = {  # name: (products, best-selling models)
    "Brightwater Optics": ("binoculars and camera lenses", ["Kestrel 8x42", "Heron 50", "Osprey Pro"]),
    "Halden Robotics": ("warehouse robots", ["Mule R4", "Porter 2", "Stacker X"]),
    "Northwind Ceramics": ("kitchen tiles and sinks", ["Fjord Basin", "Aster Tile", "Glacier Sink"]),
    "Corvel Foods": ("frozen meals and soups", ["Harvest Pot", "Green Bowl", "Sunday Roast Box"]),
    "Tessaline Software": ("accounting software for small shops", ["Ledgerly", "TillBook 5", "Shopkeep Cloud"]),
    "Marlow Bicycles": ("city bicycles and cargo bikes", ["Marlow Courier", "Townie 3", "Longtail 7"]),
    "Quarry Lane Paper": ("recycled paper and notebooks", ["Field Journal", "Ruled Classic", "Pocket Ledger"]),
    "Auster Audio": ("headphones and speakers", ["Auster One", "Studio Q", "Boombox Mini"]),
    "Velder Tools": ("garden tools and lawnmowers", ["Velder Trim 40", "Rake Master", "Hedgeline"]),
    "Pelican Marine": ("inflatable boats and life jackets", ["Pelican Dinghy 3", "Seabird Vest", "Harbour 280"]),
}


def company_values(rng: random.Random, name: str) -> dict[str, str]:
    founder, ceo = _people(rng, 2)
    founded = int(_year(rng, 1952, 2004))
    product, models = COMPANIES[name]
    rival = rng.choice(["Larkspur Industries", "Fenmore Group", "Kitteridge Ltd", "Orbison & Daughters",
                        "Crestline Works", "Bellamy Brothers", "Tidewater Holdings"])
    return {
        "company": name, "product": product, "hq": rng.choice(CITIES), "countries": str(rng.randrange(12, 80)),
        "founded": str(founded), "founder": founder,
        "founder_job": rng.choice(["an engineer at a car factory", "a chemistry teacher", "a sales manager",
                                   "a professional cyclist", "a ship's electrician", "a shop owner"]),
        "employees": _count(rng, 120, 9800),
        "factory": rng.choice([c for c in CITIES]), "ceo": ceo, "ceo_year": _year(rng, 2009, 2023),
        "rival": rival, "acq_year": str(rng.randrange(max(founded + 5, 1995), 2023)),
        "price": f"${rng.randrange(12, 480)} million",
        "revenue": f"${rng.randrange(30, 900)} million", "profit": f"${rng.randrange(2, 29)} million",
        "model": rng.choice(models), "model_year": _year(rng, 2012, 2024), "model_price": f"${rng.randrange(19, 900)}",
    }


COMPANY = {
    "entity": "company",
    "names": list(COMPANIES),
    "values": company_values,
    "groups": [
        {"full": ["{company} is a manufacturer of {product} with its headquarters in {hq}.",
                  "Based in {hq}, {company} makes {product} that are sold in more than {countries} countries."],
         "q": {"product": ["What does {company} make?", "What kind of products does {company} produce?"],
               "hq": ["Where is {company} based?", "In which city are the headquarters of {company}?"],
               "countries": ["In how many countries are the products of {company} sold?"]}},
        {"full": ["The company was founded in {founded} by {founder}, who had previously worked as {founder_job}.",
                  "{founder}, formerly {founder_job}, started {company} in a rented garage in {founded}."],
         "q": {"founded": ["When was {company} founded?", "In which year did {company} start?"],
               "founder": ["Who founded {company}?", "Who started {company}?"],
               "founder_job": ["What did the founder of {company} do before starting it?"]},
         "bare": ["{company} began as a small workshop with only a handful of employees."],
         "imp": [("Who founded {company}?", "founder"), ("When was {company} founded?", "founded")]},
        {"full": ["Today {company} employs {employees} people, most of them at its main factory in {factory}.",
                  "Most of the {employees} employees of {company} work at the main factory in {factory}."],
         "q": {"employees": ["How many people does {company} employ?", "How large is the workforce of {company}?"],
               "factory": ["Where is the main factory of {company}?"]},
         "bare": ["Most of the staff of {company} work at its main factory in {factory}."],
         "imp": [("How many people does {company} employ?", "employees")]},
        {"full": ["{ceo} has served as chief executive of {company} since {ceo_year}.",
                  "In {ceo_year} the board of {company} appointed {ceo} as chief executive."],
         "q": {"ceo": ["Who is the chief executive of {company}?", "Who runs {company}?"],
               "ceo_year": ["Since when has {ceo} been chief executive of {company}?"]},
         "bare": ["{company} is run by a small board of directors that meets every quarter."],
         "imp": [("Who is the chief executive of {company}?", "ceo")]},
        {"full": ["In {acq_year}, {company} bought its rival {rival} for {price}.",
                  "{company} took over its rival {rival} in {acq_year}, paying {price}."],
         "q": {"acq_year": ["When did {company} buy {rival}?"],
               "rival": ["Which rival did {company} take over?"],
               "price": ["How much did {company} pay for {rival}?", "What was the price of the takeover of {rival}?"]},
         "bare": ["{company} later took over its rival {rival}."],
         "imp": [("How much did {company} pay for {rival}?", "price"), ("When did {company} take over {rival}?", "acq_year")]},
        {"full": ["In its latest annual report, {company} announced revenue of {revenue} and a profit of {profit}."],
         "q": {"revenue": ["What revenue did {company} report in its latest annual report?"],
               "profit": ["How much profit did {company} make according to its latest annual report?"]},
         "bare": ["{company} publishes an annual report every spring."],
         "imp": [("What revenue did {company} report?", "revenue")]},
        {"full": ["The best-selling product of {company} is the {model}, which was launched in {model_year} and costs {model_price}.",
                  "Launched in {model_year}, the {model} is the best-selling product of {company} and sells for {model_price}."],
         "q": {"model": ["What is the best-selling product of {company}?"],
               "model_year": ["When was the {model} launched?"],
               "model_price": ["How much does the {model} cost?", "What is the price of the {model}?"]},
         "bare": ["The best-selling product of {company} is the {model}."],
         "imp": [("When was the {model} launched?", "model_year"), ("How much does the {model} cost?", "model_price")]},
    ],
    "fillers": [
        "The company offers apprenticeships to school leavers, and many of its managers started on the factory floor.",
        "Its products are sold through specialist shops as well as through its own online store.",
        "In recent years {company} has invested in solar panels on the roofs of its warehouses.",
        "Customers can send damaged products back for repair, and spare parts are kept for many years.",
        "The design team works in a converted warehouse next to the river, where prototypes are tested by hand.",
        "Like many manufacturers, the company struggled when the prices of raw materials rose sharply.",
        "Staff receive a share of the profits at the end of each year, a tradition that began in the early days.",
        "Several trade magazines have praised the reliability of its products and the quality of its service.",
        "The company sponsors a local youth football team and a summer science camp for children.",
        "New products are usually presented at a trade fair in the autumn and reach the shops in the spring.",
        "A visitor centre at the factory explains how the products are made and how the company began.",
        "Every new product is tested for months in the homes of employees before it goes on sale.",
        "The company publishes repair guides so that customers can replace worn parts themselves.",
        "A night shift was introduced at the factory when demand grew faster than expected.",
        "Its delivery vans were replaced with electric models, and charging points were built at every depot.",
        "The first catalogue of {company} was a single folded sheet, printed by hand.",
        "Engineers at the company hold regular open days for students from nearby colleges.",
        "Packaging is made from recycled cardboard, and plastic wrapping was phased out completely.",
        "Some of the original machines are still in use, kept running by a team of mechanics.",
    ],
}


def scientist_values(rng: random.Random, name: str) -> dict[str, str]:
    advisor, = _people(rng, 1)
    while advisor.split()[1] == name.split()[1]:
        advisor, = _people(rng, 1)
    born = int(_year(rng, 1850, 1948))
    phd = born + rng.randrange(24, 31)
    disc = phd + rng.randrange(3, 13)
    award = disc + rng.randrange(2, 11)
    died = max(award + rng.randrange(3, 25), born + 62)
    field, subject, findings, topic = rng.choice([
        ("marine biology", "zoology", "some deep-sea bacteria can live without sunlight", "life on the ocean floor"),
        ("soil chemistry", "chemistry", "earthworms double the rate at which fallen leaves decay", "forest soils"),
        ("astronomy", "mathematics", "the faint star near the Plough changes its brightness every eleven days",
         "variable stars"),
        ("plant genetics", "botany", "the colour of the meadow poppy is controlled by a single gene", "flower colour"),
        ("glaciology", "physics", "mountain glaciers move faster in summer than in winter", "ice flow"),
        ("seismology", "geology", "small tremors often come days before large earthquakes", "earthquake warnings"),
        ("bird migration", "biology", "young swallows find their way south without following their parents",
         "animal navigation"),
        ("food chemistry", "chemistry", "bread goes stale because its starch crystallises, not because it dries out",
         "the chemistry of baking"),
    ])
    return {
        "person": name, **_pronouns(name), "field": field, "subject": subject,
        "university": "University of " + rng.choice(CITIES), "born": str(born), "birthplace": rng.choice(CITIES),
        "father_job": rng.choice(["a railway signalman", "a village doctor", "a blacksmith", "a bookseller",
                                  "a tailor", "a ferryman"]),
        "advisor": advisor, "phd_year": str(phd), "disc_year": str(disc), "finding": findings,
        "award": rng.choice(["Halvorsen Medal", "Copperfield Prize", "Ambleford Award", "Marchetti Prize",
                             "Lindqvist Medal"]),
        "award_year": str(award), "award_topic": topic,
        "book": rng.choice(["The Quiet Deep", "Under the Leaves", "Counting Light", "A Year of Small Things",
                            "The Restless Earth", "Notes from the Field"]),
        "languages": str(rng.randrange(3, 30)), "died": str(died), "deathplace": rng.choice(CITIES),
        "age": str(died - born),
    }


SCIENTIST = {
    "entity": "person",
    "names": ["Maren Achterberg", "Tobias Quennell", "Ilse Oyelaran", "Casimir Falkner", "Leontine Dunmore",
              "Anselm Kristiansen", "Rosalind Pellegrin", "Teodor Ashcombe", "Solveig Threlkeld", "Hamish Lindqvist"],
    "values": scientist_values,
    "groups": [
        {"full": ["{person} was a researcher in {field} who spent most of {poss} career at the {university}.",
                  "Known for {poss} work in {field}, {person} taught for almost thirty years at the {university}."],
         "q": {"field": ["In which field did {person} work?", "What was the research field of {person}?"],
               "university": ["At which university did {person} spend most of {poss} career?",
                              "Where did {person} teach?"]}},
        {"full": ["{person} was born in {born} in {birthplace}, where {poss} father worked as {father_job}.",
                  "Born in {birthplace} in {born}, {person} was the child of {father_job}."],
         "q": {"born": ["When was {person} born?", "In what year was {person} born?"],
               "birthplace": ["Where was {person} born?", "In which city was {person} born?"],
               "father_job": ["What did the father of {person} do for a living?"]},
         "bare": ["Little is known about the childhood of {person}, and few letters from those years survive."],
         # Not "When was ... born?": the death sentence gives the age, so the year could be worked out.
         "imp": [("Where was {person} born?", "birthplace")]},
        {"full": ["{person} studied {subject} under {advisor} and completed a doctorate in {phd_year}.",
                  "After studying {subject}, {person} earned a doctorate in {phd_year} under the supervision of {advisor}."],
         "q": {"subject": ["What did {person} study?"],
               "advisor": ["Who supervised the doctorate of {person}?", "Under whom did {person} study?"],
               "phd_year": ["When did {person} complete {poss} doctorate?"]},
         "bare": ["{person} later said that the years as a doctoral student shaped everything that followed."],
         "imp": [("Who supervised the doctorate of {person}?", "advisor"),
                 ("When did {person} complete {poss} doctorate?", "phd_year")]},
        {"full": ["The best-known work of {person}, published in {disc_year}, showed that {finding}.",
                  "In {disc_year} {person} published the paper for which {pron} is best remembered: it showed that {finding}."],
         "q": {"disc_year": ["When did {person} publish {poss} best-known work?"],
               "finding": ["What did the best-known work of {person} show?", "What was the main finding of {person}?"]}},
        {"full": ["In {award_year} {person} received the {award} for {poss} work on {award_topic}.",
                  "The {award} was awarded to {person} in {award_year} in recognition of {poss} work on {award_topic}."],
         "q": {"award": ["Which prize did {person} receive in {award_year}?"],
               "award_year": ["When did {person} receive the {award}?"],
               "award_topic": ["For what work did {person} receive the {award}?"]},
         "bare": ["{person} received several prizes, among them the {award}."],
         "imp": [("When did {person} receive the {award}?", "award_year"),
                 ("For what work was {person} given the {award}?", "award_topic")]},
        {"full": ["{person} also wrote a popular book, {book}, which was translated into {languages} languages."],
         "q": {"book": ["What was the title of the popular book by {person}?"],
               "languages": ["Into how many languages was {book} translated?"]},
         "bare": ["{person} also wrote a popular book, {book}, for readers without a scientific background."],
         "imp": [("Into how many languages was {book} translated?", "languages")]},
        {"full": ["{person} died in {deathplace} in {died}, at the age of {age}.",
                  "{person} died in {died} in {deathplace}, aged {age}."],
         "q": {"died": ["When did {person} die?", "In what year did {person} die?"],
               "deathplace": ["Where did {person} die?"],
               "age": ["How old was {person} at the time of death?"]}},
    ],
    "fillers": [
        "Colleagues remembered {person} as a patient teacher who answered every letter from students.",
        "Much of the early work was done with home-made instruments, because the laboratory had little money.",
        "During the summer months {person} often worked outdoors, collecting samples from dawn until dark.",
        "The notebooks from those years are full of sketches, measurements and short notes about the weather.",
        "Not every colleague accepted the results at first, and the debate went on for more than a decade.",
        "Later experiments by other groups confirmed the main result and extended it to new cases.",
        "{person} insisted that students check every measurement twice and record their mistakes as well.",
        "Public lectures given in the evenings were popular, and tickets were often sold out weeks in advance.",
        "The university still awards a scholarship in the name of {person} to young researchers.",
        "Some of the original equipment is now kept in a glass case in the entrance hall of the institute.",
        "In interviews {person} said that curiosity mattered more than talent.",
        "Many of the letters exchanged with other researchers have been collected and published.",
        "{person} was known for long walks, during which many of the important ideas were first sketched out.",
        "The early results were presented at a small meeting attended by fewer than thirty people.",
        "Funding was always difficult, and some experiments were paid for out of a modest salary.",
        "Several former students went on to lead research groups of their own.",
        "A portrait of {person} hangs in the reading room of the university library.",
        "The methods developed in those years are still taught in introductory courses today.",
        "Work often continued late into the night, lit by a single lamp on a crowded desk.",
    ],
}


def voyage_values(rng: random.Random, name: str) -> dict[str, str]:
    captain, doctor, namesake, logkeeper = _people(rng, 4)
    return {
        "ship": name, "year": _year(rng, 1821, 1908),
        "port": rng.choice(["Port Essary", "Saltmere", "Heddon Bay", "Gallowmere", "Westmarch"]),
        "captain": captain,
        "destination": rng.choice(["the southern ice fields", "the Farrow Islands", "the coast of Veldana",
                                   "the Straits of Orm", "the Cape of Storms"]),
        "crew": str(rng.randrange(24, 120)), "scientists": rng.choice(["three", "four", "five", "six", "seven"]),
        "doctor": doctor, "sponsor": rng.choice(["Royal Geographic Circle", "Merchant Venturers of Saltmere",
                                                "Northern Whaling Company", "Academy of Natural Sciences"]),
        "purpose": rng.choice(["new fishing grounds", "a shorter trade route", "seals and whales",
                               "the breeding grounds of the great albatross"]),
        "days_out": str(rng.randrange(20, 90)), "mast": rng.choice(["mainmast", "foremast", "rudder"]),
        "shelter": rng.choice(["Gull Harbour", "Crab Island", "the bay of Tessel", "Anchor Point"]),
        "island": rng.choice(["Hope Island", "Fairweather Isle", "Little Dorrit", "Saint Brenna", "Mist Island"]),
        "namesake": namesake, "months": rng.choice(["eleven", "fourteen", "nineteen", "twenty-two", "thirty"]),
        "samples": _count(rng, 400, 6000), "logkeeper": logkeeper,
        "archive": rng.choice(["Maritime Museum of Saltmere", "National Sea Archive", "Westmarch City Library"]),
    }


VOYAGE = {
    "entity": "ship",
    "names": ["Albatross", "Northern Star", "Persephone", "Resolute Wren", "Marigold", "Iron Heron",
              "Endeavour Bay", "Silver Petrel", "Good Hope", "Cormorant"],
    "values": voyage_values,
    "groups": [
        {"full": ["In {year}, the ship {ship} left {port} under the command of {captain}, bound for {destination}.",
                  "Under {captain}, the {ship} sailed from {port} in {year}, heading for {destination}."],
         "q": {"year": ["When did the {ship} leave {port}?", "In what year did the voyage of the {ship} begin?"],
               "port": ["From which port did the {ship} sail?"],
               "captain": ["Who commanded the {ship}?", "Who was the captain of the {ship}?"],
               "destination": ["Where was the {ship} heading?", "What was the destination of the {ship}?"]}},
        {"full": ["The {ship} carried a crew of {crew}, including {scientists} scientists and a ship's doctor named {doctor}.",
                  "Of the {crew} people on board the {ship}, {scientists} were scientists; the ship's doctor was {doctor}."],
         "q": {"crew": ["How many people were in the crew of the {ship}?"],
               "scientists": ["How many scientists sailed on the {ship}?"],
               "doctor": ["Who was the doctor on the {ship}?", "What was the name of the ship's doctor on the {ship}?"]},
         "bare": ["The crew of the {ship} included several scientists and a ship's doctor."],
         "imp": [("How many people were in the crew of the {ship}?", "crew"),
                 ("What was the name of the ship's doctor on the {ship}?", "doctor")]},
        {"full": ["The voyage was paid for by the {sponsor}, which hoped to find {purpose}.",
                  "The {sponsor} paid for the voyage in the hope of finding {purpose}."],
         "q": {"sponsor": ["Who paid for the voyage of the {ship}?"],
               "purpose": ["What did the sponsors of the voyage hope to find?"]},
         "bare": ["The voyage of the {ship} was expensive, and raising the money took several years."],
         "imp": [("Who paid for the voyage of the {ship}?", "sponsor")]},
        {"full": ["After {days_out} days at sea, a storm broke the {mast} of the {ship} and forced the crew to shelter at {shelter}."],
         "q": {"days_out": ["After how many days at sea did the storm hit the {ship}?"],
               "mast": ["What did the storm break on the {ship}?"],
               "shelter": ["Where did the crew of the {ship} shelter after the storm?"]},
         "bare": ["A storm damaged the {ship} on the way out, but the crew repaired her at sea."],
         "imp": [("Where did the crew of the {ship} shelter after the storm?", "shelter")]},
        {"full": ["On the return journey the crew mapped an uncharted island, which {captain} named {island} after {namesake}.",
                  "{captain} named an uncharted island {island}, after {namesake}, when the crew mapped it on the way home."],
         "q": {"island": ["What name did {captain} give to the uncharted island?"],
               "namesake": ["After whom was {island} named?"]},
         "bare": ["On the return journey the crew of the {ship} mapped an uncharted island."],
         "imp": [("What name did {captain} give to the uncharted island?", "island")]},
        {"full": ["The {ship} arrived back in {port} after {months} months, carrying {samples} samples of plants and rocks.",
                  "When the {ship} returned to {port} after {months} months, she carried {samples} samples of plants and rocks."],
         "q": {"months": ["How long did the voyage of the {ship} last?", "After how many months did the {ship} return?"],
               "samples": ["How many samples did the {ship} bring back?"]},
         "bare": ["The {ship} returned to {port} with a large collection of plants and rocks."],
         "imp": [("How many samples did the {ship} bring back?", "samples"),
                 ("How long did the voyage of the {ship} last?", "months")]},
        {"full": ["The logbook kept by {logkeeper} during the voyage is now held at the {archive}."],
         "q": {"logkeeper": ["Who kept the logbook of the {ship}?"],
               "archive": ["Where is the logbook of the {ship} now kept?"]},
         "bare": ["A logbook of the voyage of the {ship} still survives."],
         "imp": [("Where is the logbook of the {ship} kept today?", "archive"),
                 ("Who kept the logbook of the {ship}?", "logkeeper")]},
    ],
    "fillers": [
        "Fresh water was rationed from the first week, and every sailor received the same small cup each morning.",
        "The cook baked bread on calm days only, because the oven could not be used in heavy seas.",
        "At night the scientists took turns at the telescope, recording the positions of the stars.",
        "Fog often hid the coast for days, and the crew listened for the sound of waves on rocks.",
        "Letters written on board were carried home by passing whalers and arrived months later.",
        "The ship's carpenter made new shelves in the hold to store the growing collection of samples.",
        "Several sailors fell ill with fever in the tropics, but all of them recovered.",
        "In the evenings the crew sang, played cards and mended their clothes by lamplight.",
        "The instruments were packed in straw and wrapped in oilcloth to protect them from salt water.",
        "Sketches made by the scientists during the voyage show seabirds, seals and unfamiliar plants.",
        "Newspapers at home followed the voyage closely and printed every report that reached them.",
        "The ship's cat was said to have caught more rats than any cat in the fleet.",
        "Ice formed on the rigging in the southern waters, and the sailors had to knock it off with wooden clubs.",
        "Each scientist kept a private diary as well as the official records of the expedition.",
        "Whales were seen almost every day during the second month of the voyage.",
        "The charts drawn on board were later used by fishing boats for many decades.",
        "A small rowing boat was used to land on beaches where the ship could not come close.",
        "Salted meat, dried peas and hard biscuits made up most of the food on board.",
        "The arrival of the ship was celebrated with a parade through the streets near the harbour.",
    ],
}


def club_values(rng: random.Random, name: str) -> dict[str, str]:
    coach, scorer = _people(rng, 2)
    founded = int(_year(rng, 1872, 1925))
    sport, unit, pos = rng.choice([("football", "goals", "goalkeeper"), ("ice hockey", "goals", "defenceman"),
                                   ("basketball", "points", "point guard"), ("rugby", "tries", "scrum-half"),
                                   ("handball", "goals", "left back")])
    rivals = rng.sample(["Tolvern United", "Caldwell Athletic", "Ravensholt City", "Morvane Wanderers",
                         "Saltmere Harriers", "Eskerby Rangers"], 2)
    return {
        "club": name, "sport": sport, "city": rng.choice(CITIES), "founded": str(founded),
        "stadium": rng.choice(["Mill Lane Ground", "Riverside Arena", "Victoria Park", "Hollins Stadium",
                               "Northgate Field"]),
        "stadium_year": str(rng.randrange(founded + 10, 2012)), "capacity": _count(rng, 3000, 42000),
        "works": rng.choice(["railway works", "brewery", "steel mill", "shipyard", "cotton mill"]),
        "colours": rng.choice(["red and white stripes", "green shirts with black shorts", "blue shirts and white socks",
                               "yellow and black hoops", "claret and sky blue"]),
        "nickname": rng.choice(["the Millers", "the Foxes", "the Lanterns", "the Herons", "the Ironsides"]),
        "titles": rng.choice(["two", "three", "four", "six", "nine", "eleven"]), "title_year": _year(rng, 1961, 2023),
        "coach": coach, "coach_year": _year(rng, 2015, 2024), "coach_pos": pos, "rival": rivals[0],
        "scorer": scorer, "goals": str(rng.randrange(14, 40) if unit != "points" else rng.randrange(400, 900)),
        "score_unit": unit, "rival2": rivals[1],
        "derby": rng.choice(["River Derby", "Valley Derby", "Old Road Derby", "Battle of the Bridge"]),
    }


CLUB = {
    "entity": "club",
    "names": ["Ashford Rovers", "Kettering Cross Albion", "Dunhallow Town", "Linthorpe Lions", "Brannock Park",
              "Ambleford Olympic", "Orrin Valley", "Heddon Bay Pirates", "Westmarch Borough", "Gallowmere Rose"],
    "values": club_values,
    "groups": [
        {"full": ["{club} is a {sport} club from {city} that plays its home games at the {stadium}.",
                  "Based in {city}, {club} is a {sport} club whose home ground is the {stadium}."],
         "q": {"sport": ["What sport does {club} play?"],
               "city": ["Which city is {club} from?", "Where is {club} based?"],
               "stadium": ["Where does {club} play its home games?", "What is the home ground of {club}?"]}},
        {"full": ["The {stadium}, opened in {stadium_year}, holds {capacity} spectators.",
                  "Opened in {stadium_year}, the {stadium} has room for {capacity} spectators."],
         "q": {"stadium_year": ["When did the {stadium} open?"],
               "capacity": ["How many spectators does the {stadium} hold?", "What is the capacity of the {stadium}?"]},
         "bare": ["The {stadium} was rebuilt after a fire destroyed the old main stand."],
         "imp": [("How many spectators does the {stadium} hold?", "capacity"),
                 ("When did the {stadium} open?", "stadium_year")]},
        {"full": ["{club} was formed in {founded} by workers from the local {works}.",
                  "Workers from the {works} in {city} formed {club} in {founded}."],
         "q": {"founded": ["When was {club} formed?", "In which year was {club} founded?"],
               "works": ["Where did the founders of {club} work?"]}},
        {"full": ["The players of {club} wear {colours}, and supporters call the team {nickname}.",
                  "Supporters call {club} {nickname}; the players wear {colours}."],
         "q": {"colours": ["What do the players of {club} wear?"],
               "nickname": ["What do supporters call {club}?", "What is the nickname of {club}?"]}},
        {"full": ["{club} has won the national championship {titles} times, most recently in {title_year}.",
                  "The most recent of the {titles} national titles won by {club} came in {title_year}."],
         "q": {"titles": ["How many national championships has {club} won?"],
               "title_year": ["When did {club} last win the national championship?"]},
         "bare": ["{club} has won the national championship several times."],
         "imp": [("When did {club} last win the national championship?", "title_year"),
                 ("How many national championships has {club} won?", "titles")]},
        {"full": ["Since {coach_year} the team has been coached by {coach}, a former {coach_pos} who once played for {rival}.",
                  "{coach}, who played as a {coach_pos} for {rival}, became head coach of {club} in {coach_year}."],
         "q": {"coach": ["Who is the head coach of {club}?", "Who coaches {club}?"],
               "coach_year": ["Since when has {coach} coached {club}?"],
               "coach_pos": ["In which position did {coach} play?"],
               "rival": ["Which club did {coach} once play for?"]},
         "bare": ["{club} appointed a new head coach at the start of the season."],
         "imp": [("Who is the head coach of {club}?", "coach")]},
        {"full": ["Last season the top scorer of {club} was {scorer} with {goals} {score_unit}.",
                  "{scorer} finished last season as the top scorer of {club}, with {goals} {score_unit}."],
         "q": {"scorer": ["Who was the top scorer of {club} last season?"],
               "goals": ["How many {score_unit} did {scorer} score last season?"]},
         "bare": ["{scorer} was the top scorer of {club} last season."],
         "imp": [("How many {score_unit} did {scorer} score last season?", "goals")]},
        {"full": ["Matches between {club} and {rival2} are known locally as the {derby}."],
         "q": {"derby": ["What are matches between {club} and {rival2} called?"],
               "rival2": ["Which team does {club} play in the {derby}?"]}},
    ],
    "fillers": [
        "On match days the streets around the ground fill with supporters hours before kick-off.",
        "The youth academy trains more than two hundred children every week on the fields behind the main stand.",
        "Season tickets are cheaper for students and pensioners, and children under twelve enter free.",
        "The club shop sells scarves, shirts and a history of the club written by a long-serving supporter.",
        "A statue of the first captain stands outside the main entrance.",
        "The team travels to away games by coach, and the longest journey takes almost six hours.",
        "Local businesses sponsor the shirts, and the names of the sponsors change every few seasons.",
        "Former players often return as coaches for the youth teams.",
        "The supporters' club organises trips to away games and collects money for local charities.",
        "In bad winters the pitch is covered with straw to protect it from frost.",
        "The club museum displays old boots, medals and photographs from the early years.",
        "Floodlights were installed at the ground in the same decade as the first radio commentary of its matches.",
        "The club almost went bankrupt once, and supporters raised money door to door to save it.",
        "A women's team was formed later and now plays in front of growing crowds.",
        "The dressing rooms were modernised, but the old wooden benches were kept for tradition.",
        "Match programmes from the early years are now valuable collectors' items.",
        "Training takes place on the fields by the river on weekday evenings.",
        "The club song is sung before every home match, even in the pouring rain.",
        "Ticket prices have been frozen for several seasons to keep matches affordable for families.",
    ],
}


SPECIES = {  # name: (class, region, habitat, diet, young noun, young verb)
    "silver-backed marsh vole": ("mammal", "give birth to", "young"),
    "Tarrow rock lizard": ("reptile", "lay", "eggs"),
    "crested fen owl": ("bird", "lay", "eggs"),
    "spotted reed frog": ("amphibian", "lay", "eggs"),
    "long-eared cave bat": ("mammal", "give birth to", "young"),
    "golden moss beetle": ("insect", "lay", "eggs"),
    "blue-throated river warbler": ("bird", "lay", "eggs"),
    "lesser dune tortoise": ("reptile", "lay", "eggs"),
    "mountain pika": ("mammal", "give birth to", "young"),
    "banded pond newt": ("amphibian", "lay", "eggs"),
}


def species_values(rng: random.Random, name: str) -> dict[str, str]:
    cls, verb, noun = SPECIES[name]
    discoverer, = _people(rng, 1)
    small = cls in ("insect", "amphibian")
    return {
        "species": name, "class": cls, "young_verb": verb, "young_noun": noun,
        "habitat": rng.choice(["wet meadows", "reed beds", "rocky hillsides", "old beech forests", "sand dunes",
                               "limestone caves", "mountain streams"]),
        "region": rng.choice(["the Northmarch", "the Saltcoast", "the Eastern Fells", "the Calder Plain",
                              "the islands of the Farrow chain"]),
        "length": f"{rng.randrange(2, 9)} centimetres" if small else f"{rng.randrange(11, 45)} centimetres",
        "weight": f"{rng.randrange(2, 40)} grams" if small else f"{rng.randrange(60, 900)} grams",
        "diet": rng.choice(["insects and spiders", "seeds and berries", "snails and worms", "small fish",
                            "grasses and moss", "flies and moths"]),
        "when": rng.choice(["at dusk", "in the early morning", "at night", "on warm afternoons"]),
        "young": rng.choice(["two to four", "three", "five to eight", "up to twelve", "one or two"]),
        "season": rng.choice(["spring", "summer", "year"]), "lifespan": str(rng.randrange(2, 31)),
        "disc_year": _year(rng, 1781, 1948), "discoverer": discoverer,
        "found_where": rng.choice(["under a fallen oak", "near a mountain spring", "on a boat trip along the coast",
                                   "in a farmer's barn", "while mapping the caves"]),
        "population": _count(rng, 900, 20000),
        "threat": rng.choice(["the draining of wetlands", "new roads and housing", "warmer and drier summers",
                              "pesticides used on farms", "the loss of old forests"]),
        "protected_year": _year(rng, 1965, 2016),
    }


SPECIES_KIND = {
    "entity": "species",
    "names": list(SPECIES),
    "values": species_values,
    "groups": [
        {"full": ["The {species} is a small {class} found in {habitat} across {region}.",
                  "Found in {habitat} across {region}, the {species} is a small {class}."],
         "q": {"habitat": ["In what kind of habitat does the {species} live?"],
               "region": ["In which region does the {species} live?"],
               "class": ["What kind of animal is the {species}?"]}},
        {"full": ["Adult {species}s reach a length of about {length} and weigh around {weight}.",
                  "An adult {species} weighs around {weight} and is about {length} long."],
         "q": {"length": ["How long is an adult {species}?"],
               "weight": ["How much does an adult {species} weigh?", "What is the weight of an adult {species}?"]},
         "bare": ["Adult {species}s are larger than the young, and the males are slightly larger than the females."],
         "imp": [("How much does an adult {species} weigh?", "weight"), ("How long is an adult {species}?", "length")]},
        {"full": ["The {species} feeds mainly on {diet}, which it hunts {when}.",
                  "Mostly {when}, the {species} hunts for {diet}, its main food."],
         "q": {"diet": ["What does the {species} eat?", "What is the main food of the {species}?"],
               "when": ["When does the {species} hunt?"]}},
        {"full": ["Females {young_verb} {young} {young_noun} each {season}."],
         "q": {"young": ["How many {young_noun} does a female {species} produce each {season}?"]}},
        {"full": ["In the wild the {species} lives for up to {lifespan} years.",
                  "A {species} can live for up to {lifespan} years in the wild."],
         "q": {"lifespan": ["How long can a {species} live in the wild?", "What is the lifespan of the {species}?"]}},
        {"full": ["The {species} was first described in {disc_year} by the naturalist {discoverer}, who found it {found_where}.",
                  "The naturalist {discoverer} first described the {species} in {disc_year}, after finding it {found_where}."],
         "q": {"disc_year": ["When was the {species} first described?"],
               "discoverer": ["Who first described the {species}?"],
               "found_where": ["Where did {discoverer} find the {species}?"]},
         "bare": ["The {species} has been known to local farmers for centuries, but it was studied scientifically much later."],
         "imp": [("Who first described the {species}?", "discoverer"),
                 ("In which year was the {species} first described?", "disc_year")]},
        {"full": [("Numbers of the {species} have fallen to about {population} animals because of {threat}, and it has "
                  "been protected by law since {protected_year}."),
                  ("Because of {threat}, only about {population} {species}s remain; the species has been protected by law "
                  "since {protected_year}.")],
         "q": {"population": ["How many {species}s are left in the wild?"],
               "threat": ["What has caused the numbers of the {species} to fall?"],
               "protected_year": ["Since when has the {species} been protected by law?"]},
         "bare": ["Numbers of the {species} have fallen in recent decades, and conservation groups are watching it closely."],
         "imp": [("How many {species}s are left in the wild?", "population"),
                 ("Since when has the {species} been protected by law?", "protected_year")]},
    ],
    "fillers": [
        "Its colours blend well with its surroundings, which makes it hard to spot even for experienced observers.",
        "Volunteers count the animals every year along fixed routes, always in the same week.",
        "Young animals stay close to the place where they were born during their first months.",
        "In cold weather it becomes less active and hides in cracks, burrows or thick vegetation.",
        "Foxes, herons and birds of prey are among its natural enemies.",
        "Photographs taken with hidden cameras have shown behaviour that had never been seen before.",
        "Some landowners leave strips of wild land along their fields to give the animals shelter.",
        "Scientists fit a few animals with tiny tags to learn how far they travel.",
        "Its call is soft and easy to miss, especially on windy days.",
        "Local schools have built shelters and planted native plants to help the species.",
        "Several nature reserves were created partly to protect the places where it lives.",
        "It is most easily seen in late spring, when the vegetation is still low.",
        "Its tracks are small and are often found in soft mud near water.",
        "The animals are mostly solitary outside the breeding season.",
        "Farmers once considered it a pest, although it does little damage to crops.",
        "Records kept by amateur naturalists have helped scientists to map where it lives.",
        "In a few places, small populations have been moved to new sites to reduce the risk of local extinction.",
        "Its skin or feathers change colour slightly between summer and winter.",
        "The first photograph of it in the wild was taken only a few decades ago.",
    ],
}


MUSEUMS = {  # name: (most famous object, buildings it could occupy)
    "Halloway Museum of Clocks": "brass astronomical clock",
    "Museum of River Trade": "painted river barge",
    "Calder Gallery of Print": "hand-coloured map of the harbour",
    "Ambleford Toy Museum": "wooden rocking horse",
    "Museum of Everyday Life": "kitchen from a farmhouse",
    "Saltmere Museum of the Sea": "whale skeleton",
    "Dunmore House of Textiles": "silk wedding dress",
    "Eskerby Museum of Science": "steam-powered calculating machine",
    "Westmarch Museum of Music": "church organ",
    "Tolvern Railway Museum": "steam locomotive",
}


def museum_values(rng: random.Random, name: str) -> dict[str, str]:
    architect, maker, director = _people(rng, 3)
    return {
        "museum": name, "city": rng.choice(CITIES),
        "building": rng.choice(["a former textile mill", "an old fire station", "a converted grain warehouse",
                                "the former town prison", "a nineteenth-century bathhouse", "an empty department store"]),
        "opened": _year(rng, 1961, 2016), "architect": architect,
        "objects": _count(rng, 2000, 90000), "on_show": _count(rng, 300, 1900),
        "object": MUSEUMS[name], "maker": maker, "object_year": _year(rng, 1602, 1899),
        "director": director, "director_year": _year(rng, 2004, 2023),
        "prev": rng.choice(["a university library", "the national archive", "an auction house", "a children's museum"]),
        "visitors": _count(rng, 20000, 400000), "price": rng.choice(["£6", "£8.50", "£12", "€9", "€14", "$15"]),
        "closed_day": rng.choice(["Monday", "Tuesday", "Wednesday"]),
        "open_time": rng.choice(["9 a.m.", "10 a.m.", "half past nine"]),
        "close_time": rng.choice(["5 p.m.", "6 p.m.", "half past four", "8 p.m."]),
    }


MUSEUM = {
    "entity": "museum",
    "names": list(MUSEUMS),
    "values": museum_values,
    "groups": [
        {"full": ["The {museum} in {city} occupies {building}.",
                  "Housed in {building}, the {museum} is one of the most visited attractions in {city}."],
         "q": {"city": ["In which city is the {museum}?"],
               "building": ["What building does the {museum} occupy?", "In what kind of building is the {museum} housed?"]}},
        {"full": ["The {museum} opened to the public in {opened} after a conversion designed by {architect}.",
                  "After a conversion designed by {architect}, the {museum} opened in {opened}."],
         "q": {"opened": ["When did the {museum} open?", "In what year did the {museum} open to the public?"],
               "architect": ["Who designed the conversion of the {museum}?"]},
         "bare": ["The {museum} opened to the public after a long and expensive conversion."],
         "imp": [("When did the {museum} open to the public?", "opened"),
                 ("Who designed the conversion of the {museum}?", "architect")]},
        {"full": [("The collection of the {museum} contains more than {objects} objects, of which about {on_show} are on "
                  "display at any time.")],
         "q": {"objects": ["How many objects does the collection of the {museum} contain?"],
               "on_show": ["How many objects does the {museum} display at any time?"]},
         "bare": ["Only a small part of the collection of the {museum} is on display at any time."],
         "imp": [("How many objects are in the collection of the {museum}?", "objects")]},
        {"full": ["The most famous piece in the {museum} is a {object}, made by {maker} in {object_year}.",
                  "Made by {maker} in {object_year}, a {object} is the most famous piece in the {museum}."],
         "q": {"object": ["What is the most famous piece in the {museum}?"],
               "maker": ["Who made the {object} in the {museum}?"],
               "object_year": ["When was the {object} in the {museum} made?"]},
         "bare": ["The most famous piece in the {museum} is a {object}."],
         "imp": [("Who made the {object} in the {museum}?", "maker"),
                 ("When was the {object} in the {museum} made?", "object_year")]},
        {"full": ["Since {director_year} the {museum} has been run by {director}, who previously worked at {prev}.",
                  "{director}, who came from {prev}, has been director of the {museum} since {director_year}."],
         "q": {"director": ["Who is the director of the {museum}?", "Who runs the {museum}?"],
               "director_year": ["Since when has {director} run the {museum}?"],
               "prev": ["Where did {director} work before joining the {museum}?"]},
         "bare": ["The {museum} is run by a small team of curators and volunteers."],
         "imp": [("Who is the director of the {museum}?", "director")]},
        {"full": [("About {visitors} people visited the {museum} last year; admission costs {price} for adults, and "
                  "children enter free.")],
         "q": {"visitors": ["How many people visited the {museum} last year?"],
               "price": ["How much does adult admission to the {museum} cost?", "What does an adult ticket cost?"]},
         "bare": ["Children enter the {museum} free of charge."],
         "imp": [("How much does adult admission to the {museum} cost?", "price"),
                 ("How many people visited the {museum} last year?", "visitors")]},
        {"full": ["The {museum} is open every day except {closed_day}, from {open_time} to {close_time}."],
         "q": {"closed_day": ["On which day is the {museum} closed?"],
               "open_time": ["At what time does the {museum} open?"],
               "close_time": ["At what time does the {museum} close?"]},
         "bare": ["The {museum} is open on most days of the week."],
         "imp": [("On which day is the {museum} closed?", "closed_day")]},
    ],
    "fillers": [
        "School classes visit on weekday mornings, and a special room is set aside for their workshops.",
        "A small café on the ground floor serves soup, sandwiches and cakes baked on the premises.",
        "Labels are written in plain language, and a free audio guide is available in several languages.",
        "Every few months a temporary exhibition shows objects borrowed from other collections.",
        "Volunteers clean and repair objects in a workshop that visitors can watch through a glass wall.",
        "The shop sells postcards, books and copies of some of the best-loved objects.",
        "Many objects were given by local families, often together with letters explaining their history.",
        "The building has lifts to every floor, and wheelchairs can be borrowed at the entrance.",
        "In the evenings the main hall is sometimes used for concerts and lectures.",
        "Photography is allowed in most rooms, but flash is not permitted near old textiles and paper.",
        "Researchers can ask to see objects that are kept in storage.",
        "The museum shop was enlarged recently and now also sells books for children.",
        "Guided tours start every hour from the main entrance and last about forty minutes.",
        "A garden behind the building has benches where visitors can rest in summer.",
        "Objects that need repair are taken to a workshop in the basement.",
        "The museum lends objects to other museums for special exhibitions.",
        "Late openings on Thursdays are popular with people who work during the day.",
        "Families can borrow activity backpacks with games and drawing materials.",
        "A newsletter tells members about new objects, events and exhibitions.",
    ],
}


def band_values(rng: random.Random, name: str) -> dict[str, str]:
    singer, producer = _people(rng, 2)
    formed = int(_year(rng, 1984, 2014))
    album_year = formed + rng.randrange(1, 4)
    return {
        "band": name, "genre": rng.choice(["folk", "indie rock", "jazz", "electronic", "punk", "bluegrass"]),
        "city": rng.choice(CITIES), "formed": str(formed),
        "members": rng.choice(["three", "four", "five", "six"]), "singer": singer,
        "album": rng.choice(["Paper Boats", "Lighthouse Hours", "The Long Field", "Static and Salt", "Northern Lines",
                             "Small Weather"]),
        "album_year": str(album_year), "label": rng.choice(["Copperleaf", "Brown Owl Records", "Sidestreet", "Fenlight"]),
        "rec_weeks": rng.choice(["two", "three", "six", "nine"]), "producer": producer,
        "single": rng.choice(["Glass Harbour", "Run to the River", "Midnight Ferry", "Postcards", "Tin Roof Rain"]),
        "chart": str(rng.randrange(2, 40)), "tour_year": str(album_year + rng.randrange(1, 5)),
        "tour_countries": str(rng.randrange(4, 25)), "shows": str(rng.randrange(30, 160)),
        "award": rng.choice(["Golden Reel Award", "Northern Music Prize", "Independent Album of the Year"]),
        "award_year": str(album_year + rng.randrange(1, 6)),
        "award_for": rng.choice(["their second album", "the song Winter Orchard", "their live shows",
                                 "the soundtrack of a documentary"]),
    }


BAND = {
    "entity": "band",
    "names": ["The Paper Kites of Orrin", "Lanterns at Dusk", "Halfway Harbour", "The Saltmere Seven", "Quiet Engines",
              "Velvet Ferry", "The Marrow Brothers", "Grey Wool Choir", "Copper Moth", "North by Dawn"],
    "values": band_values,
    "groups": [
        {"full": ["{band} is a {genre} band formed in {city} in {formed}.",
                  "Formed in {formed} in {city}, {band} plays {genre}."],
         "q": {"genre": ["What kind of music does {band} play?"],
               "city": ["Where was {band} formed?"],
               "formed": ["When was {band} formed?", "In what year did {band} form?"]}},
        {"full": ["The group has {members} members and is led by the singer {singer}, who also writes most of the songs.",
                  "Singer {singer}, who writes most of the songs, leads the {members} members of {band}."],
         "q": {"members": ["How many members does {band} have?"],
               "singer": ["Who is the singer of {band}?", "Who writes most of the songs of {band}?"]},
         "bare": ["{band} is led by its singer, who also writes most of the songs."],
         "imp": [("Who is the singer of {band}?", "singer"), ("How many members does {band} have?", "members")]},
        {"full": ["The debut album of {band}, {album}, was released in {album_year} on the {label} label.",
                  "{band} released its debut album, {album}, on the {label} label in {album_year}."],
         "q": {"album": ["What is the name of the debut album of {band}?"],
               "album_year": ["When was {album} released?"],
               "label": ["On which label was {album} released?"]},
         "bare": ["The debut album of {band}, {album}, sold well in independent record shops."],
         "imp": [("When was {album} released?", "album_year"), ("On which label was {album} released?", "label")]},
        {"full": ["{album} was recorded in {rec_weeks} weeks at a farmhouse studio and produced by {producer}.",
                  "Produced by {producer}, {album} was recorded at a farmhouse studio in just {rec_weeks} weeks."],
         "q": {"rec_weeks": ["How long did it take to record {album}?"],
               "producer": ["Who produced {album}?"]},
         "bare": ["{album} was recorded at a farmhouse studio."],
         "imp": [("Who produced {album}?", "producer"), ("How long did it take to record {album}?", "rec_weeks")]},
        {"full": ["The single {single} reached number {chart} in the national charts.",
                  "The single {single} by {band} climbed to number {chart} in the national charts."],
         "q": {"single": ["Which single by {band} entered the national charts?"],
               "chart": ["What chart position did {single} reach?"]},
         "bare": ["The single {single} was played often on national radio."],
         "imp": [("What chart position did {single} reach?", "chart")]},
        {"full": ["In {tour_year} {band} toured {tour_countries} countries, playing {shows} shows.",
                  "The {tour_year} tour of {band} took in {tour_countries} countries and {shows} shows."],
         "q": {"tour_year": ["In which year did {band} tour {tour_countries} countries?"],
               "tour_countries": ["How many countries did {band} visit on its {tour_year} tour?"],
               "shows": ["How many shows did {band} play on its {tour_year} tour?"]}},
        {"full": ["{band} won the {award} in {award_year} for {award_for}."],
         "q": {"award": ["Which award did {band} win in {award_year}?"],
               "award_year": ["When did {band} win the {award}?"],
               "award_for": ["For what did {band} win the {award}?"]},
         "bare": ["{band} has been nominated for several music prizes, including the {award}."],
         "imp": [("When did {band} win the {award}?", "award_year"),
                 ("For what did {band} win the {award}?", "award_for")]},
    ],
    "fillers": [
        "The band rehearses in a room above a bicycle shop, where the walls are covered with old posters.",
        "Their concerts often end with the whole audience singing the last chorus.",
        "Several songs tell stories about the coast, the weather and the people of small towns.",
        "The musicians swap instruments during concerts, and some songs are played without any amplification.",
        "Fans collect the hand-printed posters that the band makes for each tour.",
        "Critics have praised the simple arrangements and the honest lyrics.",
        "The band records most of its demos on an old tape machine bought at a flea market.",
        "Between albums the members work on side projects, from children's music to film scores.",
        "A short documentary about the band was filmed during a winter tour.",
        "Tickets for their hometown concerts usually sell out within a day.",
        "The band has said that it prefers small venues, where it can see the faces of the audience.",
        "The band's first concert was played in the back room of a pub in front of a dozen friends.",
        "Their van broke down so often on early tours that fans started a fund to replace it.",
        "The sleeve of each record is designed by a friend of the band who works as an illustrator.",
        "Some of their songs have been used in films and television series.",
        "The members met at school and have played together ever since.",
        "Local radio stations were the first to play their songs.",
        "Their live recordings are released on vinyl in small numbers.",
        "The band often invites guest musicians to join them on stage.",
    ],
}

KINDS = {"town": TOWN, "company": COMPANY, "scientist": SCIENTIST, "voyage": VOYAGE, "club": CLUB,
         "species": SPECIES_KIND, "museum": MUSEUM, "band": BAND}


# --------------------------------------------------------------------------- rendering
def render(template: str, values: dict[str, str]) -> tuple[str, dict[str, int]]:
    """Fill `{slot}`s and return the text with each slot's first character offset in it."""
    parts, offsets, pos, last = [], {}, 0, 0
    for match in SLOT.finditer(template):
        literal = template[last:match.start()]
        parts.append(literal)
        pos += len(literal)
        value = values[match.group(1)]
        offsets.setdefault(match.group(1), pos)
        parts.append(value)
        pos += len(value)
        last = match.end()
    parts.append(template[last:])
    text = "".join(parts)
    return text[0].upper() + text[1:], offsets


def slots_present(template: str, values: dict[str, str], context: str) -> bool:
    return all(values[s] in context for s in SLOT.findall(template))


def distinct(values: dict[str, str], kind: dict) -> bool:
    """No answer value equals another or appears in it as whole words, so every question has one clear span."""
    answers = sorted({values[k] for g in kind["groups"] for k in g["q"]})
    if len(answers) < sum(len(g["q"]) for g in kind["groups"]):
        return False
    return not any(a != b and re.search(rf"\b{re.escape(a)}\b", b) for a in answers for b in answers)


def paragraph(kind: dict, name: str, size: str, rng: random.Random, qid: str) -> tuple[dict, dict]:
    """One SQuAD paragraph (answerable questions) and its twin holding only the unanswerable ones."""
    for _ in range(1000):
        values = kind["values"](rng, name)
        if distinct(values, kind):
            break
    else:
        raise SystemExit(f"no distinct slot values for {name} after 1000 draws")
    groups = kind["groups"]
    if size == "short":
        chosen = [0] + sorted(rng.sample(range(1, len(groups)), 2 + rng.randrange(2)))
    elif size == "medium":
        chosen = [0] + sorted(rng.sample(range(1, len(groups)), len(groups) - 2 - rng.randrange(2)))
    else:
        chosen = list(range(len(groups)))
    fillers = {"short": 0, "medium": rng.randrange(1, 3), "long": rng.randrange(15, 19)}[size]
    pieces: list[tuple[dict | None, bool, str]] = []  # (group, bare?, template)
    for i in chosen:
        group = groups[i]
        bare = i > 0 and "bare" in group and rng.random() < BARE_RATE
        pieces.append((group, bare, rng.choice(group["bare"] if bare else group["full"])))
    for filler in rng.sample(kind["fillers"], fillers):
        pieces.insert(rng.randrange(1, len(pieces) + 1), (None, False, filler))

    sentences, cursor, spans = [], 0, []
    for group, bare, template in pieces:
        text, offsets = render(template, values)
        sentences.append(text)
        spans.append((group, bare, template, cursor, offsets))
        cursor += len(text) + 1
    context = " ".join(sentences)

    answerable, impossible, asked = [], [], set()

    def add(target: list, question: str, answers: list[dict], is_impossible: bool) -> None:
        if question in asked:
            return
        asked.add(question)
        target.append({"id": f"{qid}-{len(asked):02d}", "question": question, "answers": answers,
                       "is_impossible": is_impossible})

    for group, bare, template, start, offsets in spans:
        if group is None:
            continue
        if bare:
            for question, missing in group.get("imp", []):
                if slots_present(question, values, context) and values[missing] not in context:
                    add(impossible, render(question, values)[0], [], True)
            continue
        for key, questions in group["q"].items():
            if key not in offsets:
                continue
            picks = rng.sample(questions, 2 if len(questions) > 1 and rng.random() < SECOND_QUESTION_RATE else 1)
            for question in picks:
                if slots_present(question, values, context):
                    add(answerable, render(question, values)[0],
                        [{"text": values[key], "answer_start": start + offsets[key]}], False)
    return ({"context": context, "qas": answerable}, {"context": context, "qas": impossible})


def check(data: dict) -> None:
    for article in data["data"]:
        for par in article["paragraphs"]:
            for qa in par["qas"]:
                for answer in qa["answers"]:
                    start, text = answer["answer_start"], answer["text"]
                    if par["context"][start:start + len(text)] != text:
                        raise SystemExit(f"answer span mismatch in {qa['id']}: {text!r} at {start}")


def build(rng: random.Random) -> dict[str, dict]:
    files = {name: {"version": version, "data": []} for name, version in
             [("train", "1.1"), ("eval", "1.1"), ("unanswerable_train", "v2.0"), ("unanswerable_eval", "v2.0")]}
    for kind_name, kind in KINDS.items():
        names = rng.sample(kind["names"], PER_KIND)
        for index, (name, size) in enumerate(zip(names, SIZES)):
            qid = f"{kind_name}-{index:02d}"
            answerable, impossible = paragraph(kind, name, size, rng, qid)
            split = "eval" if index in EVAL_INDEXES else "train"
            title = f"{name} ({kind_name})"
            files[split]["data"].append({"title": title, "paragraphs": [answerable]})
            if impossible["qas"]:
                files["unanswerable_" + split]["data"].append({"title": title, "paragraphs": [impossible]})
    for data in files.values():
        check(data)
    return files


def main() -> None:
    files = build(random.Random(SEED))
    folder = HERE / "qa"
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paragraphs = [p for a in data["data"] for p in a["paragraphs"]]
        questions = sum(len(p["qas"]) for p in paragraphs)
        words = Counter(len(p["context"].split()) // 100 * 100 for p in paragraphs)
        print(f"qa/{name}.json: {len(paragraphs)} paragraphs, {questions} questions, context words by hundreds "
              f"{dict(sorted(words.items()))}")


if __name__ == "__main__":
    main()
