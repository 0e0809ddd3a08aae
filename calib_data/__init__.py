"""Data sets this project wrote itself (see README.md here); paths for the code that uses them."""
from pathlib import Path

ROOT = Path(__file__).parent
INTENTS_TRAIN = ROOT / "intents" / "train.csv"
INTENTS_EVAL = ROOT / "intents" / "eval.csv"
LM_TEXT_TRAIN = ROOT / "lm_text" / "train.txt"
LM_TEXT_EVAL = ROOT / "lm_text" / "eval.txt"
QA_TRAIN = ROOT / "qa" / "train.json"
QA_EVAL = ROOT / "qa" / "eval.json"
QA_UNANSWERABLE_TRAIN = ROOT / "qa" / "unanswerable_train.json"
QA_UNANSWERABLE_EVAL = ROOT / "qa" / "unanswerable_eval.json"
TRANSLATION_TRAIN = ROOT / "translation" / "train.tsv"
TRANSLATION_EVAL = ROOT / "translation" / "eval.tsv"
