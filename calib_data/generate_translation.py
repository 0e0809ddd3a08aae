#!/usr/bin/env python3
"""Generate edge-compress's English->German parallel set (stdlib only, deterministic).

    python calib_data/generate_translation.py

writes `translation/train.tsv` and `translation/eval.tsv` next to this file: a header row `source<TAB>target`,
then one English sentence and its German translation per line (raw TSV: no quoting, no tabs in the text).

Two sources of pairs:

- HANDWRITTEN: everyday phrases and sentences translated by hand (greetings, directions, requests, and a few
  long sentences), for idioms that templates cannot produce.
- Templates: clauses built from a small bilingual lexicon, with the German grammar done explicitly rather
  than by string substitution: articles and possessives by case, gender and number; adjective endings
  (weak after der-words, mixed after ein-words, strong without an article); dative plural -n; verb-second
  order in main clauses (with inversion after a fronted time phrase or subordinate clause), verb-first in
  questions and verb-final in subordinate and relative clauses; Perfekt with haben or sein; modal verbs
  with the infinitive at the end; `kein` for negated indefinite objects, `nicht` otherwise. English gets
  its own tense per time phrase (habit: simple present, now: progressive, future: will, past: simple
  past; German uses the present for the first three and the Perfekt for the past, as spoken German does).

The sentences are grammatical but their content is random (a man may repair a fence because his sister
reads a letter); they are meant for calibration and for comparing a compressed model with its float
original, not for training a translation system.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

SEED = 20261202
HERE = Path(__file__).resolve().parent
TEMPLATE_PAIRS = 620
EVAL_SHARE = 0.2

HANDWRITTEN = [
    ("Good morning!", "Guten Morgen!"),
    ("Good night.", "Gute Nacht."),
    ("Yes, please.", "Ja, bitte."),
    ("No, thank you.", "Nein, danke."),
    ("Welcome!", "Willkommen!"),
    ("How are you?", "Wie geht es dir?"),
    ("I'm fine, thanks.", "Mir geht es gut, danke."),
    ("Where is the toilet?", "Wo ist die Toilette?"),
    ("One ticket to Hamburg, please.", "Eine Fahrkarte nach Hamburg, bitte."),
    ("The water is cold.", "Das Wasser ist kalt."),
    ("We are tired.", "Wir sind müde."),
    ("Open the window, please.", "Mach bitte das Fenster auf."),
    ("The food was excellent.", "Das Essen war ausgezeichnet."),
    ("Where are my glasses?", "Wo ist meine Brille?"),
    ("Call me later.", "Ruf mich später an."),
    ("Thank you very much.", "Vielen Dank."),
    ("Excuse me, where is the station?", "Entschuldigung, wo ist der Bahnhof?"),
    ("How much does this cost?", "Wie viel kostet das?"),
    ("I don't understand.", "Ich verstehe nicht."),
    ("Can you help me, please?", "Können Sie mir bitte helfen?"),
    ("See you tomorrow.", "Bis morgen."),
    ("Have a nice weekend!", "Schönes Wochenende!"),
    ("The bill, please.", "Die Rechnung, bitte."),
    ("What time is it?", "Wie spät ist es?"),
    ("It is raining.", "Es regnet."),
    ("Happy birthday!", "Alles Gute zum Geburtstag!"),
    ("My name is Anna.", "Ich heiße Anna."),
    ("Where do you live?", "Wo wohnst du?"),
    ("I am hungry.", "Ich habe Hunger."),
    ("The shop is closed on Sundays.", "Das Geschäft ist sonntags geschlossen."),
    ("Please close the door.", "Bitte schließ die Tür."),
    ("Is this seat free?", "Ist dieser Platz frei?"),
    ("The train is late again.", "Der Zug hat wieder Verspätung."),
    ("I would like a coffee with milk.", "Ich hätte gern einen Kaffee mit Milch."),
    ("We are going to the cinema tonight.", "Wir gehen heute Abend ins Kino."),
    ("Turn left at the next corner.", "Biegen Sie an der nächsten Ecke links ab."),
    ("The museum opens at ten o'clock.", "Das Museum öffnet um zehn Uhr."),
    ("Do you speak English?", "Sprechen Sie Englisch?"),
    ("I have been waiting for an hour.", "Ich warte schon seit einer Stunde."),
    ("The children are playing in the garden.", "Die Kinder spielen im Garten."),
    ("It is too cold to go swimming.", "Es ist zu kalt zum Schwimmen."),
    ("Could you speak more slowly, please?", "Könnten Sie bitte langsamer sprechen?"),
    ("I left my umbrella on the bus.", "Ich habe meinen Regenschirm im Bus liegen lassen."),
    ("My sister works as a nurse in a large hospital.", "Meine Schwester arbeitet als Krankenschwester in einem großen Krankenhaus."),
    ("The soup is too hot.", "Die Suppe ist zu heiß."),
    ("We need more time.", "Wir brauchen mehr Zeit."),
    ("Where can I buy a ticket?", "Wo kann ich eine Fahrkarte kaufen?"),
    ("The meeting has been moved to Thursday.", "Die Besprechung wurde auf Donnerstag verschoben."),
    ("Don't forget your keys!", "Vergiss deine Schlüssel nicht!"),
    ("He has lived in Berlin for ten years.", "Er wohnt seit zehn Jahren in Berlin."),
    ("The library is next to the post office.", "Die Bibliothek ist neben der Post."),
    ("I'm sorry, I didn't mean that.", "Es tut mir leid, das habe ich nicht so gemeint."),
    ("Which bus goes to the airport?", "Welcher Bus fährt zum Flughafen?"),
    ("The weather will be better tomorrow.", "Morgen wird das Wetter besser."),
    ("My phone battery is almost empty.", "Der Akku meines Handys ist fast leer."),
    ("We have to leave at six.", "Wir müssen um sechs Uhr aufbrechen."),
    ("The doctor says that I should rest for a few days.", "Der Arzt sagt, dass ich mich ein paar Tage ausruhen soll."),
    ("Is there a pharmacy near here?", "Gibt es hier in der Nähe eine Apotheke?"),
    ("The package arrived two days late.", "Das Paket ist zwei Tage zu spät angekommen."),
    ("I would like to return these shoes.", "Ich möchte diese Schuhe zurückgeben."),
    ("Please send me the documents by email.", "Bitte schicken Sie mir die Unterlagen per E-Mail."),
    ("The room has a view of the lake.", "Das Zimmer hat einen Blick auf den See."),
    ("How long does the journey take?", "Wie lange dauert die Fahrt?"),
    ("She has been learning German since last year.", "Sie lernt seit letztem Jahr Deutsch."),
    ("Because the road was closed, we had to take a long detour through the mountains.",
     "Weil die Straße gesperrt war, mussten wir einen langen Umweg durch die Berge fahren."),
    ("If you have any questions, you can call me at any time.",
     "Wenn Sie Fragen haben, können Sie mich jederzeit anrufen."),
    ("The old bridge, which was built more than two hundred years ago, is now closed to cars.",
     "Die alte Brücke, die vor mehr als zweihundert Jahren gebaut wurde, ist jetzt für Autos gesperrt."),
    ("After we had eaten, we went for a walk along the river and watched the boats.",
     "Nachdem wir gegessen hatten, gingen wir am Fluss spazieren und sahen den Booten zu."),
    ("I didn't know that the museum is closed on Mondays.", "Ich wusste nicht, dass das Museum montags geschlossen ist."),
    ("Our neighbours have a big dog that barks all night.", "Unsere Nachbarn haben einen großen Hund, der die ganze Nacht bellt."),
    (("When I was a child, we spent every summer at my grandparents' farm, where we fed the chickens, picked "
     "apples and swam in the small lake behind the house until the sun went down."),
     ("Als ich ein Kind war, verbrachten wir jeden Sommer auf dem Bauernhof meiner Großeltern, wo wir die Hühner "
     "fütterten, Äpfel pflückten und im kleinen See hinter dem Haus schwammen, bis die Sonne unterging.")),
    (("Although the tickets were expensive and the weather was terrible, thousands of people came to the concert "
     "in the park, and many of them stayed until the very last song, singing and dancing in the rain."),
     ("Obwohl die Karten teuer waren und das Wetter schrecklich war, kamen Tausende von Menschen zum Konzert im "
     "Park, und viele von ihnen blieben bis zum allerletzten Lied und sangen und tanzten im Regen.")),
    (("Please make sure that all windows are closed and the lights are switched off before you leave the office "
     "in the evening, because the cleaning staff only come early in the morning."),
     ("Bitte sorgen Sie dafür, dass alle Fenster geschlossen und die Lichter ausgeschaltet sind, bevor Sie am Abend "
     "das Büro verlassen, weil das Reinigungspersonal erst früh am Morgen kommt.")),
    (("The company announced on Tuesday that it will open a new factory in the north of the country next year, "
     "which is expected to create about five hundred jobs in a region where unemployment is high."),
     ("Das Unternehmen hat am Dienstag angekündigt, dass es nächstes Jahr im Norden des Landes eine neue Fabrik "
     "eröffnen wird, die etwa fünfhundert Arbeitsplätze in einer Region schaffen soll, in der die Arbeitslosigkeit hoch ist.")),
]

# --------------------------------------------------------------------------- German morphology
CASES = ("nom", "acc", "dat")
DEF = {("nom", "m"): "der", ("nom", "f"): "die", ("nom", "n"): "das", ("nom", "pl"): "die",
       ("acc", "m"): "den", ("acc", "f"): "die", ("acc", "n"): "das", ("acc", "pl"): "die",
       ("dat", "m"): "dem", ("dat", "f"): "der", ("dat", "n"): "dem", ("dat", "pl"): "den"}
EIN_ENDING = {("nom", "m"): "", ("nom", "f"): "e", ("nom", "n"): "", ("nom", "pl"): "e",
              ("acc", "m"): "en", ("acc", "f"): "e", ("acc", "n"): "", ("acc", "pl"): "e",
              ("dat", "m"): "em", ("dat", "f"): "er", ("dat", "n"): "em", ("dat", "pl"): "en"}
EIN_WORDS = {"indef": "ein", "my": "mein", "our": "unser", "kein": "kein"}


def adjective_ending(det: str, gender: str, case: str) -> str:
    """Weak after der-words, mixed after ein-words (ein, mein, unser, kein), strong with no article."""
    if gender == "pl":
        return "en" if det in ("def", "my", "our", "kein") or case == "dat" else "e"
    if det == "def":
        return "e" if case == "nom" or (case == "acc" and gender in "fn") else "en"
    if case == "dat":
        return "en"
    return {"m": "er" if case == "nom" else "en", "f": "e", "n": "es"}[gender]


@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    de: str
    de_pl: str
    gender: str
    kinds: frozenset[str]

    def de_form(self, plural: bool, case: str) -> str:
        if not plural:
            return self.de
        if case == "dat" and not self.de_pl.endswith(("n", "s")):
            return self.de_pl + "n"
        return self.de_pl


def N(en: str, en_pl: str, de: str, de_pl: str, gender: str, kinds: str) -> Noun:
    return Noun(en, en_pl, de, de_pl, gender, frozenset(kinds.split()))


OBJECTS = [
    N("table", "tables", "Tisch", "Tische", "m", "thing goods repair carry"),
    N("chair", "chairs", "Stuhl", "Stühle", "m", "thing goods repair carry"),
    N("lamp", "lamps", "Lampe", "Lampen", "f", "thing goods repair carry"),
    N("bicycle", "bicycles", "Fahrrad", "Fahrräder", "n", "thing goods repair wash"),
    N("car", "cars", "Auto", "Autos", "n", "thing goods repair wash"),
    N("computer", "computers", "Computer", "Computer", "m", "thing goods repair carry"),
    N("book", "books", "Buch", "Bücher", "n", "text prose goods read give"),
    N("newspaper", "newspapers", "Zeitung", "Zeitungen", "f", "text goods read give"),
    N("letter", "letters", "Brief", "Briefe", "m", "text prose read write open give"),
    N("report", "reports", "Bericht", "Berichte", "m", "text prose read write give"),
    N("window", "windows", "Fenster", "Fenster", "n", "thing open repair wash"),
    N("door", "doors", "Tür", "Türen", "f", "thing open repair surface"),
    N("box", "boxes", "Kiste", "Kisten", "f", "thing open goods carry"),
    N("bag", "bags", "Tasche", "Taschen", "f", "thing goods open find carry give"),
    N("key", "keys", "Schlüssel", "Schlüssel", "m", "small find give"),
    N("jacket", "jackets", "Jacke", "Jacken", "f", "thing goods wash find give"),
    N("cake", "cakes", "Kuchen", "Kuchen", "m", "food goods eat give"),
    N("apple", "apples", "Apfel", "Äpfel", "m", "food goods eat give"),
    N("soup", "soups", "Suppe", "Suppen", "f", "food eat"),
    N("bread roll", "bread rolls", "Brötchen", "Brötchen", "n", "food goods eat give"),
    N("map", "maps", "Landkarte", "Landkarten", "f", "text goods read give"),
    N("watch", "watches", "Uhr", "Uhren", "f", "thing goods repair find give"),
    N("phone", "phones", "Handy", "Handys", "n", "thing goods repair find give"),
    N("umbrella", "umbrellas", "Regenschirm", "Regenschirme", "m", "thing goods find give"),
    N("picture", "pictures", "Bild", "Bilder", "n", "thing goods art give"),
    N("house", "houses", "Haus", "Häuser", "n", "building goods surface"),
    N("wall", "walls", "Wand", "Wände", "f", "building surface"),
    N("fence", "fences", "Zaun", "Zäune", "m", "building surface repair"),
]

ADJECTIVES = {  # English, German stem, the object kinds it suits
    "new": ("neu", "thing text building small"), "old": ("alt", "thing text building small"),
    "red": ("rot", "thing building"), "blue": ("blau", "thing building"), "green": ("grün", "thing building"),
    "black": ("schwarz", "thing small"), "white": ("weiß", "thing building"), "big": ("groß", "thing building food"),
    "small": ("klein", "thing building food small"), "beautiful": ("schön", "thing building"),
    "expensive": ("teur", "thing building"), "cheap": ("billig", "thing"), "heavy": ("schwer", "thing"),
    "interesting": ("interessant", "text"), "long": ("lang", "prose"), "short": ("kurz", "prose"),
    "fresh": ("frisch", "food"), "delicious": ("lecker", "food"),
}


@dataclass(frozen=True)
class Verb:
    en: str           # base form ("look for")
    en_s: str         # third person singular
    en_past: str
    en_ing: str | None  # None: stative, no progressive
    de: str           # infinitive (also 1st/3rd plural)
    de_1sg: str
    de_3sg: str
    de_part: str
    aux: str          # haben / sein
    kind: str         # object kind it takes, "motion" or "give"


def V(en: str, en_s: str, en_past: str, en_ing: str | None, de: str, de_1sg: str, de_3sg: str, de_part: str,
      kind: str, aux: str = "haben") -> Verb:
    return Verb(en, en_s, en_past, en_ing, de, de_1sg, de_3sg, de_part, aux, kind)


VERBS = [
    V("buy", "buys", "bought", "buying", "kaufen", "kaufe", "kauft", "gekauft", "goods"),
    V("sell", "sells", "sold", "selling", "verkaufen", "verkaufe", "verkauft", "verkauft", "goods"),
    V("need", "needs", "needed", None, "brauchen", "brauche", "braucht", "gebraucht", "goods"),
    V("order", "orders", "ordered", "ordering", "bestellen", "bestelle", "bestellt", "bestellt", "goods"),
    V("repair", "repairs", "repaired", "repairing", "reparieren", "repariere", "repariert", "repariert", "repair"),
    V("read", "reads", "read", "reading", "lesen", "lese", "liest", "gelesen", "read"),
    V("write", "writes", "wrote", "writing", "schreiben", "schreibe", "schreibt", "geschrieben", "write"),
    V("open", "opens", "opened", "opening", "öffnen", "öffne", "öffnet", "geöffnet", "open"),
    V("find", "finds", "found", None, "finden", "finde", "findet", "gefunden", "find"),
    V("look for", "looks for", "looked for", "looking for", "suchen", "suche", "sucht", "gesucht", "find"),
    V("eat", "eats", "ate", "eating", "essen", "esse", "isst", "gegessen", "eat"),
    V("wash", "washes", "washed", "washing", "waschen", "wasche", "wäscht", "gewaschen", "wash"),
    V("paint", "paints", "painted", "painting", "malen", "male", "malt", "gemalt", "art"),
    V("paint", "paints", "painted", "painting", "streichen", "streiche", "streicht", "gestrichen", "surface"),
    V("carry", "carries", "carried", "carrying", "tragen", "trage", "trägt", "getragen", "carry"),
    V("see", "sees", "saw", None, "sehen", "sehe", "sieht", "gesehen", "thing"),
    V("give", "gives", "gave", "giving", "geben", "gebe", "gibt", "gegeben", "give"),
    V("show", "shows", "showed", "showing", "zeigen", "zeige", "zeigt", "gezeigt", "give"),
    V("bring", "brings", "brought", "bringing", "bringen", "bringe", "bringt", "gebracht", "give"),
    # "go" by some means is fahren; on foot (no means given, nearby places only) it is gehen.
    V("go", "goes", "went", "going", "fahren", "fahre", "fährt", "gefahren", "motion", aux="sein"),
    V("go", "goes", "went", "going", "gehen", "gehe", "geht", "gegangen", "walk", aux="sein"),
]
MODALS = {  # English (3sg, other, negated 3sg, negated other, question 3sg, question other) -> German forms
    "want": (("wants to", "want to", "doesn't want to", "don't want to", "Does", "Do", "want to"),
             ("will", "will", "wollen")),
    "can": (("can", "can", "can't", "can't", "Can", "Can", ""), ("kann", "kann", "können")),
    "must": (("has to", "have to", "doesn't have to", "don't have to", "Does", "Do", "have to"),
             ("muss", "muss", "müssen")),
}
AUX = {"haben": ("habe", "hat", "haben"), "sein": ("bin", "ist", "sind")}


@dataclass(frozen=True)
class Subject:
    en: str
    de: str
    person: str   # 1sg, 1pl, 3sg, 3pl
    gender: str   # for relative pronouns: m, f, n, pl
    relative: bool = True  # may take a relative clause


SUBJECTS = [
    Subject("I", "ich", "1sg", "-", False), Subject("we", "wir", "1pl", "pl", False),
    Subject("he", "er", "3sg", "m", False), Subject("she", "sie", "3sg", "f", False),
    Subject("my brother", "mein Bruder", "3sg", "m"), Subject("my sister", "meine Schwester", "3sg", "f"),
    Subject("my father", "mein Vater", "3sg", "m"), Subject("my mother", "meine Mutter", "3sg", "f"),
    Subject("my uncle", "mein Onkel", "3sg", "m"), Subject("my aunt", "meine Tante", "3sg", "f"),
    Subject("the old man", "der alte Mann", "3sg", "m"), Subject("the young woman", "die junge Frau", "3sg", "f"),
    Subject("the child", "das Kind", "3sg", "n"), Subject("the girl", "das Mädchen", "3sg", "n"),
    Subject("the boy", "der Junge", "3sg", "m"), Subject("the teacher", "der Lehrer", "3sg", "m"),
    Subject("the baker", "der Bäcker", "3sg", "m"), Subject("Anna", "Anna", "3sg", "f"),
    Subject("Thomas", "Thomas", "3sg", "m"), Subject("Lena", "Lena", "3sg", "f"), Subject("Jonas", "Jonas", "3sg", "m"),
    Subject("the children", "die Kinder", "3pl", "pl"), Subject("my parents", "meine Eltern", "3pl", "pl"),
    Subject("the students", "die Studenten", "3pl", "pl"), Subject("our neighbours", "unsere Nachbarn", "3pl", "pl"),
    Subject("the workers", "die Arbeiter", "3pl", "pl"),
]
RELATIVE = [  # English 3sg, English plural, German verb-final singular, plural
    ("lives in Hamburg", "live in Hamburg", "in Hamburg wohnt", "in Hamburg wohnen"),
    ("works at the bakery", "work at the bakery", "in der Bäckerei arbeitet", "in der Bäckerei arbeiten"),
    ("speaks three languages", "speak three languages", "drei Sprachen spricht", "drei Sprachen sprechen"),
    ("plays the piano", "play the piano", "Klavier spielt", "Klavier spielen"),
    ("has two dogs", "have two dogs", "zwei Hunde hat", "zwei Hunde haben"),
    ("knows everyone in town", "know everyone in town", "jeden in der Stadt kennt", "jeden in der Stadt kennen"),
    ("is always late", "are always late", "immer zu spät kommt", "immer zu spät kommen"),
]
RECIPIENTS = [("the child", "dem Kind"), ("my sister", "meiner Schwester"), ("my father", "meinem Vater"),
              ("the children", "den Kindern"), ("our neighbour", "unserem Nachbarn"), ("the teacher", "dem Lehrer"),
              ("my grandmother", "meiner Großmutter"), ("the guests", "den Gästen")]
PLACES = [("in the kitchen", "in der Küche"), ("in the garden", "im Garten"), ("at the market", "auf dem Markt"),
          ("in the city", "in der Stadt"), ("at home", "zu Hause"), ("in the office", "im Büro"),
          ("at the station", "am Bahnhof"), ("in the garage", "in der Garage"), ("in Berlin", "in Berlin"),
          ("in Vienna", "in Wien"), ("in Munich", "in München"), ("at school", "in der Schule")]
NEARBY = [("to the station", "zum Bahnhof"), ("to the market", "zum Markt"), ("to school", "zur Schule"),
          ("home", "nach Hause"), ("to the doctor", "zum Arzt"), ("to work", "zur Arbeit"), ("to the lake", "an den See")]
DESTINATIONS = NEARBY + [("to the city", "in die Stadt"), ("to Berlin", "nach Berlin"), ("to Vienna", "nach Wien")]
MEANS = [("by train", "mit dem Zug"), ("by bus", "mit dem Bus"), ("by bike", "mit dem Fahrrad"),
         ("by car", "mit dem Auto"), ("by tram", "mit der Straßenbahn")]
TIMES = {  # class: [(English, German)]
    "habit": [("every morning", "jeden Morgen"), ("on Mondays", "montags"), ("every weekend", "jedes Wochenende"),
              ("in the evening", "abends"), ("every day", "jeden Tag")],
    "now": [("today", "heute"), ("now", "jetzt"), ("this afternoon", "heute Nachmittag")],
    "future": [("tomorrow", "morgen"), ("next week", "nächste Woche"), ("on Friday", "am Freitag"),
               ("tomorrow morning", "morgen früh")],
    "past": [("yesterday", "gestern"), ("last week", "letzte Woche"), ("on Saturday", "am Samstag"),
             ("two days ago", "vor zwei Tagen")],
}
NUMBERS = [("two", "zwei"), ("three", "drei"), ("four", "vier"), ("several", "mehrere")]
THAT_CLAUSES = [("I think that", "Ich glaube, dass"), ("She says that", "Sie sagt, dass"),
                ("We know that", "Wir wissen, dass"), ("It is good that", "Es ist gut, dass"),
                ("Nobody believes that", "Niemand glaubt, dass"), ("I am sure that", "Ich bin sicher, dass")]


# --------------------------------------------------------------------------- noun phrases
def a_or_an(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


@dataclass
class NP:
    noun: Noun
    det: str          # def, indef, my, our, num, bare (plural, no article)
    plural: bool
    adjective: str | None
    number: tuple[str, str] | None = None

    def en(self) -> str:
        words = ([self.adjective] if self.adjective else []) + [self.noun.en_pl if self.plural else self.noun.en]
        head = " ".join(words)
        if self.det == "def":
            return "the " + head
        if self.det == "indef":
            return f"{a_or_an(head)} {head}"
        if self.det in ("my", "our"):
            return f"{self.det} {head}"
        if self.det == "num":
            return f"{self.number[0]} {head}"
        return head

    def de(self, case: str, negated: bool = False) -> str:
        gender = "pl" if self.plural else self.noun.gender
        det = "kein" if negated and self.det in ("indef", "bare") else self.det
        if det == "def":
            article = DEF[(case, gender)]
        elif det in EIN_WORDS and not (det == "indef" and self.plural):
            article = EIN_WORDS[det] + EIN_ENDING[(case, gender)]
        elif det == "num":
            article = self.number[1]
        else:
            article = ""
        adjective = ""
        if self.adjective:
            ending = adjective_ending("bare" if det in ("num", "bare") else det, gender, case)
            adjective = ADJECTIVES[self.adjective][0] + ending
        return " ".join(w for w in (article, adjective, self.noun.de_form(self.plural, case)) if w)

    @property
    def indefinite(self) -> bool:
        return self.det in ("indef", "bare")


def random_np(rng: random.Random, kind: str, allow_numbers: bool = True) -> NP:
    noun = rng.choice([n for n in OBJECTS if kind in n.kinds])
    det = rng.choice(["def", "indef", "indef", "my", "our", "plural"] + (["num"] if allow_numbers else []))
    plural = det in ("plural", "num") or (det in ("def", "my", "our") and rng.random() < 0.25)
    det = "bare" if det == "plural" else det
    fitting = [a for a, (_, kinds) in ADJECTIVES.items() if set(kinds.split()) & noun.kinds]
    adjective = rng.choice(fitting) if fitting and rng.random() < 0.6 else None
    return NP(noun, det, plural, adjective, rng.choice(NUMBERS) if det == "num" else None)


# --------------------------------------------------------------------------- clauses
@dataclass
class Clause:
    subject: Subject
    verb: Verb
    time: tuple[str, str, str] | None   # (class, English, German)
    negated: bool = False
    modal: str | None = None
    obj: NP | None = None
    recipient: tuple[str, str] | None = None
    place: tuple[str, str] | None = None
    means: tuple[str, str] | None = None
    destination: tuple[str, str] | None = None
    relative: tuple[str, str, str, str] | None = None

    # ---------------------------------------------------------------- German
    def _finite_de(self, form: tuple[str, str, str]) -> str:
        person = self.subject.person
        return form[0] if person == "1sg" else form[1] if person == "3sg" else form[2]

    def _de_parts(self) -> tuple[str, list[str], list[str]]:
        """(finite verb, middle field without subject, verb-final words)."""
        past = self.time is not None and self.time[0] == "past"
        if self.modal:
            finite, final = self._finite_de(MODALS[self.modal][1]), [self.verb.de]
        elif past:
            finite, final = self._finite_de(AUX[self.verb.aux]), [self.verb.de_part]
        else:
            finite, final = self._finite_de((self.verb.de_1sg, self.verb.de_3sg, self.verb.de)), []
        middle = [self.time[2]] if self.time else []
        if self.recipient:
            middle.append(self.recipient[1])
        if self.verb.kind in ("motion", "walk"):
            middle += (["nicht"] if self.negated else []) + [x[1] for x in (self.means, self.destination) if x]
        else:
            if self.place:
                middle.append(self.place[1])
            middle.append(self.obj.de("acc", negated=self.negated))
            if self.negated and not self.obj.indefinite:
                middle.append("nicht")
        return finite, middle, final

    def _subject_de(self) -> str:
        if not self.relative:
            return self.subject.de
        rel = DEF[("nom", self.subject.gender)]
        words = self.relative[3] if self.subject.person == "3pl" else self.relative[2]
        return f"{self.subject.de}, {rel} {words},"

    def de_main(self, front_time: bool = False) -> str:
        finite, middle, final = self._de_parts()
        if front_time and self.time:
            return " ".join([self.time[2], finite, self.subject.de] + middle[1:] + final)
        return " ".join([self._subject_de(), finite] + middle + final)

    def de_inverted(self) -> str:
        """Finite verb first, as after a fronted subordinate clause."""
        finite, middle, final = self._de_parts()
        return " ".join([finite, self.subject.de] + middle + final)

    def de_question(self) -> str:
        return self.de_inverted() + "?"

    def de_sub(self) -> str:
        finite, middle, final = self._de_parts()
        return " ".join([self.subject.de] + middle + final + [finite])

    # ---------------------------------------------------------------- English
    def _en_verb(self, question: bool = False, tense: str | None = None) -> tuple[str, str]:
        """(auxiliary that goes before the subject in a question, verb phrase after the subject).

        `tense` overrides the time phrase's class: an if-clause about tomorrow takes the simple present, and
        its main clause takes `will` without a time phrase of its own.
        """
        third = self.subject.person == "3sg"
        cls = tense or (self.time[0] if self.time else "habit")
        v = self.verb
        if self.modal:
            forms = MODALS[self.modal][0]
            if question:
                return forms[4] if third else forms[5], (forms[6] + " " + v.en).strip()
            if self.negated:
                return "", f"{forms[2] if third else forms[3]} {v.en}"
            return "", f"{forms[0] if third else forms[1]} {v.en}"
        if cls == "now" and v.en_ing:
            be = {"1sg": "am", "3sg": "is"}.get(self.subject.person, "are")
            if question:
                return be.capitalize(), v.en_ing
            return "", f"{be} not {v.en_ing}" if self.negated else f"{be} {v.en_ing}"
        if cls == "future":
            return ("Will", v.en) if question else ("", f"won't {v.en}" if self.negated else f"will {v.en}")
        if cls == "past":
            return ("Did", v.en) if question else ("", f"didn't {v.en}" if self.negated else v.en_past)
        do = "does" if third else "do"
        if question:
            return do.capitalize(), v.en
        return "", f"{do}n't {v.en}" if self.negated else (v.en_s if third else v.en)

    def _en_rest(self, with_time: bool) -> list[str]:
        rest = []
        if self.recipient:
            rest.append(self.recipient[0])
        if self.verb.kind in ("motion", "walk"):
            rest += [x[0] for x in (self.destination, self.means) if x]
        else:
            rest.append(self.obj.en())
            if self.place:
                rest.append(self.place[0])
        if with_time and self.time:
            rest.append(self.time[1])
        return rest

    def _subject_en(self) -> str:
        if not self.relative:
            return self.subject.en
        words = self.relative[1] if self.subject.person == "3pl" else self.relative[0]
        if self.subject.en.startswith("the "):
            return f"{self.subject.en} who {words}"
        return f"{self.subject.en}, who {words},"

    def en_main(self, front_time: bool = False, tense: str | None = None) -> str:
        _, phrase = self._en_verb(tense=tense)
        if front_time and self.time:
            return " ".join([self.time[1], self._subject_en(), phrase] + self._en_rest(False))
        return " ".join([self._subject_en(), phrase] + self._en_rest(True))

    def en_question(self) -> str:
        aux, phrase = self._en_verb(question=True)
        return " ".join([aux, self.subject.en, phrase] + self._en_rest(True)) + "?"


def random_clause(rng: random.Random, *, time_class: str | None = None, allow_modal: bool = True,
                  allow_relative: bool = False, subject: Subject | None = None, negation: bool = True) -> Clause:
    verb = rng.choice(VERBS)
    chosen_subject = subject is not None
    subject = subject or rng.choice(SUBJECTS)
    cls = time_class or rng.choice(list(TIMES))
    time = (cls, *rng.choice(TIMES[cls])) if rng.random() < 0.85 or time_class else None
    modal = None
    if allow_modal and verb.en != "need" and (time is None or time[0] != "past") and rng.random() < 0.25:
        modal = rng.choice(list(MODALS))
    clause = Clause(subject, verb, time, modal=modal)
    if verb.kind == "motion":
        clause.destination, clause.means = rng.choice(DESTINATIONS), rng.choice(MEANS)
    elif verb.kind == "walk":
        clause.destination = rng.choice(NEARBY)
    else:
        clause.obj = random_np(rng, verb.kind)
        if verb.kind == "give":
            clause.recipient = rng.choice([r for r in RECIPIENTS if r[0] != subject.en])
        elif rng.random() < 0.5:
            clause.place = rng.choice(PLACES)
    # No negation with numbers ("not three chairs") or with habits: in "doesn't buy a chair every morning" the
    # negation scopes over "every morning", which "kauft jeden Morgen keinen Stuhl" does not say.
    clause.negated = (negation and rng.random() < 0.2 and not (clause.obj and clause.obj.det == "num")
                      and not (time and time[0] == "habit"))
    if allow_relative and not chosen_subject and clause.subject.relative and rng.random() < 0.5:
        clause.relative = rng.choice(RELATIVE)
    return clause


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


# --------------------------------------------------------------------------- sentence shapes
def phrase(rng: random.Random) -> tuple[str, str]:
    """A bare noun phrase (nominative) or a `with` + dative phrase: 2-4 words."""
    np = random_np(rng, rng.choice(["thing", "text", "food"]), allow_numbers=True)
    if rng.random() < 0.5:
        return cap(np.en()), cap(np.de("nom"))
    return f"With {np.en()}", f"Mit {np.de('dat')}"


def simple(rng: random.Random) -> tuple[str, str]:
    clause = random_clause(rng, allow_relative=True)
    front = clause.time is not None and clause.relative is None and rng.random() < 0.4
    return cap(clause.en_main(front)) + ".", cap(clause.de_main(front)) + "."


def question(rng: random.Random) -> tuple[str, str]:
    clause = random_clause(rng, negation=False)
    while clause.subject.person == "1sg":
        clause = random_clause(rng, negation=False)
    return cap(clause.en_question()), cap(clause.de_question())


def because(rng: random.Random) -> tuple[str, str]:
    first, second = random_clause(rng, allow_relative=True), random_clause(rng)
    en_conj, de_conj = rng.choice([("because", "weil"), ("although", "obwohl"), ("while", "während")])
    en = f"{cap(first.en_main())}, {en_conj} {second.en_main()}."
    return en, f"{cap(first.de_main())}, {de_conj} {second.de_sub()}."


def that(rng: random.Random) -> tuple[str, str]:
    en_head, de_head = rng.choice(THAT_CLAUSES)
    clause = random_clause(rng)
    return f"{en_head} {clause.en_main()}.", f"{de_head} {clause.de_sub()}."


def condition(rng: random.Random) -> tuple[str, str]:
    """If + present (German wenn + verb-final), then a main clause with will / inverted German verb."""
    cond = random_clause(rng, time_class="future", allow_modal=False)
    main = random_clause(rng, time_class="future")
    main.time = None
    return (f"If {cond.en_main(tense='habit')}, {main.en_main(tense='future')}.",
            f"Wenn {cond.de_sub()}, {main.de_inverted()}.")


def coordinated(rng: random.Random) -> tuple[str, str]:
    first, second = random_clause(rng, allow_relative=True), random_clause(rng)
    en_conj, de_conj = rng.choice([("and", "und"), ("but", ", aber")])
    front = second.time is not None and rng.random() < 0.5
    de_joint = f" {de_conj}" if de_conj == "und" else de_conj
    return (f"{cap(first.en_main())}, {en_conj} {second.en_main(front)}.",
            f"{cap(first.de_main())}{de_joint} {second.de_main(front)}.")


def long_sentence(rng: random.Random) -> tuple[str, str]:
    """Three or four clauses: relative-clause subject, a reason, and a coordinated clause (often 40+ words)."""
    first = random_clause(rng, allow_relative=True)
    while first.relative is None:
        first = random_clause(rng, allow_relative=True)
    reason, third = random_clause(rng), random_clause(rng, allow_relative=False)
    en_conj, de_conj = rng.choice([("because", "weil"), ("although", "obwohl")])
    en_head, de_head = rng.choice(THAT_CLAUSES)
    fourth = random_clause(rng)
    en_head = en_head if en_head.startswith("I ") else en_head[0].lower() + en_head[1:]
    de_head = de_head[0].lower() + de_head[1:]  # German lower-cases ich, sie, es, wir mid-sentence too
    en = f"{cap(first.en_main())}, {en_conj} {reason.en_main()}, and {third.en_main()}; {en_head} {fourth.en_main()}."
    de = f"{cap(first.de_main())}, {de_conj} {reason.de_sub()}, und {third.de_main()}; {de_head} {fourth.de_sub()}."
    return en, de


SHAPES = [(phrase, 0.10), (simple, 0.30), (question, 0.12), (because, 0.14), (that, 0.08), (condition, 0.08),
          (coordinated, 0.10), (long_sentence, 0.08)]


def build(rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    pairs, seen = list(HANDWRITTEN), {en for en, _ in HANDWRITTEN}
    makers, weights = zip(*SHAPES)
    while len(pairs) < len(HANDWRITTEN) + TEMPLATE_PAIRS:
        en, de = rng.choices(makers, weights)[0](rng)
        if en not in seen:
            seen.add(en)
            pairs.append((en, de))
    for en, de in pairs:
        if "\t" in en + de or "  " in en + de:
            raise SystemExit(f"bad whitespace in pair: {en!r} / {de!r}")
    rng.shuffle(pairs)
    n_eval = int(len(pairs) * EVAL_SHARE)
    return pairs[n_eval:], pairs[:n_eval]


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("source\ttarget\n" + "".join(f"{en}\t{de}\n" for en, de in pairs), encoding="utf-8")


def main() -> None:
    train, evals = build(random.Random(SEED))
    write_tsv(HERE / "translation" / "train.tsv", train)
    write_tsv(HERE / "translation" / "eval.tsv", evals)
    for name, pairs in (("train", train), ("eval", evals)):
        words = [len(en.split()) for en, _ in pairs]
        buckets = {"1-4": sum(w <= 4 for w in words), "5-14": sum(5 <= w <= 14 for w in words),
                   "15-29": sum(15 <= w <= 29 for w in words), "30-39": sum(30 <= w <= 39 for w in words),
                   "40+": sum(w >= 40 for w in words)}
        print(f"translation/{name}.tsv: {len(pairs)} pairs, English words per sentence {buckets}")


if __name__ == "__main__":
    main()
