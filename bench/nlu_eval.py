"""NLU figures per language: intent macro-F1 and accuracy, entity F1, and how often a high-stakes intent is acted on
by guess.

1. Split: every fifth example of each intent in data/nlu (in file order) is held out; a bilingual model with the
   production config is trained on the rest and parses the held-out examples with that language's metadata.
2. Held-out file: a model trained on all of data/nlu parses tests/heldout/nlu_<language>.yml, phrasings that appear
   nowhere in data/ (tests/engine/test_tfidf_classifier.py checks that).

Macro-F1 is averaged over the gold intents; a prediction of nlu_fallback counts against the gold intent's recall.
The figure in brackets also counts nlu_fallback (and any intent predicted but never gold) as a class of its own, as
sklearn's default does, which caps it below 1 as soon as one message falls back.

High-stakes intents are those with a threshold in the policy's `understanding.act_above` (kindly/policy.yml or
KINDLY_POLICY_FILE). A message is "acted on a guess" when its final intent is high-stakes, differs from the gold intent,
has a confidence at or above that intent's threshold and no risk phrase (bot.risk_matcher) decided it: the dialogue
would act on it without asking. A risk-phrase match acts by design; wrong ones are counted separately.

Run with the engine venv: `make bench`, or
`PYTHONPATH=. .venv-engine/bin/python bench/nlu_eval.py [--config other_config.yml]` to measure another pipeline."""
import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402
import yaml  # noqa: E402
from rasa.core.agent import Agent  # noqa: E402
from rasa.core.channels import UserMessage  # noqa: E402
from rasa.model_training import train_nlu  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

from bot.risk_matcher import ENTITY as RISK_PHRASE  # noqa: E402

METADATA = {"en": {"country": "US", "timezone": "America/New_York"}, "zh": {"country": "CN", "timezone": "Asia/Shanghai"}}
LANGUAGES = tuple(METADATA)
HOLD_OUT_EVERY = 5
HELD_OUT_FILE = "tests/heldout/nlu_{language}.yml"
FALLBACK = "nlu_fallback"


def act_above() -> dict:
    path = os.environ.get("KINDLY_POLICY_FILE") or ROOT / "kindly" / "policy.yml"
    thresholds = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["understanding"]["act_above"]
    return {intent: float(value) for intent, value in thresholds.items()}


def split(data: TrainingData) -> tuple[list, list]:
    train, test, seen = [], [], {}
    for message in data.intent_examples:
        intent = message.get("intent")
        seen[intent] = seen.get(intent, 0) + 1
        (test if seen[intent] % HOLD_OUT_EVERY == 0 else train).append(message)
    return train, test


def entity_spans(entities: list) -> set:
    return {(e["start"], e["end"], e["entity"]) for e in entities if e["entity"] in ("date", "amount", "count")}


def train(config: Path, examples: list, directory: Path, name: str) -> Agent:
    data_file = directory / f"{name}.yml"
    data_file.write_text(TrainingData(training_examples=examples).nlu_as_yaml(), encoding="utf-8")
    model = train_nlu(str(config), str(data_file), str(directory / "models"), fixed_model_name=name)
    # Training leaves Rasa's loggers at debug; each parse would print a line.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("rasa").setLevel(logging.WARNING)
    return Agent.load(model)


async def parse(agent: Agent, examples: list, language: str) -> list[dict]:
    rows = []
    for message in examples:
        parsed = await agent.processor.parse_message(UserMessage(message.get("text"), metadata=METADATA[language]))
        entities = parsed.get("entities") or []
        rows.append({
            "text": message.get("text"),
            "gold": message.get("intent"),
            "intent": parsed["intent"]["name"],
            "confidence": parsed["intent"].get("confidence") or 0.0,
            "without_fallback": next(r["name"] for r in parsed["intent_ranking"] if r["name"] != FALLBACK),
            "matched": any(e["entity"] == RISK_PHRASE for e in entities),
            "gold_spans": entity_spans(message.get("entities") or []),
            "spans": entity_spans(entities),
        })
    return rows


def macro_f1(gold: list, predicted: list, over_gold: bool = True) -> float:
    labels = sorted(set(gold)) if over_gold else None
    return f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)


def on_guess(row: dict, thresholds: dict) -> bool:
    """A wrong high-stakes reading the dialogue would act on without asking."""
    return (
        row["intent"] in thresholds and row["intent"] != row["gold"] and not row["matched"]
        and row["confidence"] >= thresholds[row["intent"]]
    )


def figures(rows: list[dict], thresholds: dict) -> dict:
    gold = [r["gold"] for r in rows]
    predicted = [r["intent"] for r in rows]
    high_stakes = [r for r in rows if r["gold"] in thresholds]
    return {
        "examples": len(rows),
        "macro_f1": macro_f1(gold, predicted),
        "macro_f1_all_labels": macro_f1(gold, predicted, over_gold=False),
        "accuracy": sum(g == p for g, p in zip(gold, predicted)) / len(rows),
        "fallbacks": predicted.count(FALLBACK),
        "without_fallback_macro_f1": macro_f1(gold, [r["without_fallback"] for r in rows]),
        "high_stakes_correct": sum(r["intent"] == r["gold"] for r in high_stakes),
        "high_stakes": len(high_stakes),
        "on_guess": sum(on_guess(r, thresholds) for r in rows),
        # correct high-stakes readings the dialogue acts on at once; the rest get a confirming question first
        "acted_at_once": sum(r["matched"] or r["confidence"] >= thresholds[r["gold"]] for r in high_stakes if r["intent"] == r["gold"]),
        # per high-stakes intent, the most confident wrong reading: a threshold must stay above it
        "worst_guess": {
            intent: max(r["confidence"] for r in wrong)
            for intent in thresholds
            if (wrong := [r for r in rows if r["intent"] == intent != r["gold"] and not r["matched"]])
        },
        "matched": sum(r["matched"] for r in rows),
        "matched_wrong": sum(r["matched"] and r["intent"] != r["gold"] for r in rows),
    }


def entity_figures(rows: list[dict]) -> tuple[float, float, float]:
    true_positives = sum(len(r["gold_spans"] & r["spans"]) for r in rows)
    predicted = sum(len(r["spans"]) for r in rows)
    gold = sum(len(r["gold_spans"]) for r in rows)
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def report(language: str, title: str, rows: list[dict], thresholds: dict, entities: bool) -> None:
    f = figures(rows, thresholds)
    high_stakes_accuracy = f["high_stakes_correct"] / f["high_stakes"] if f["high_stakes"] else 0.0
    line = (
        f"[{language}] {title}: {f['examples']}  intent macro-F1: {f['macro_f1']:.3f} ({f['macro_f1_all_labels']:.3f} "
        f"counting nlu_fallback as a class)  intent accuracy: {f['accuracy']:.3f}  (fallbacks: {f['fallbacks']}; "
        f"without the fallback: macro-F1 {f['without_fallback_macro_f1']:.3f})"
    )
    if entities:
        line += "  entity P/R/F1: {:.3f}/{:.3f}/{:.3f}".format(*entity_figures(rows))
    print(line)
    print(
        f"     high-stakes intents: accuracy {high_stakes_accuracy:.3f} ({f['high_stakes_correct']}/{f['high_stakes']})  "
        f"acted on a guess: {f['on_guess']}/{f['examples']} = {f['on_guess'] / f['examples']:.3f}  "
        f"risk-phrase overrides: {f['matched']} (wrong: {f['matched_wrong']})"
    )
    worst = ", ".join(f"{intent} {confidence:.2f}/{thresholds[intent]:.2f}" for intent, confidence in f["worst_guess"].items())
    print(
        f"     correct high-stakes readings acted on at once: {f['acted_at_once']}/{f['high_stakes_correct']} (the rest are "
        f"confirmed first)  most confident wrong reading/threshold: {worst or 'none'}"
    )
    for r in rows:
        if r["intent"] != r["gold"]:
            mark = "GUESS " if on_guess(r, thresholds) else "match " if r["matched"] else "      "
            print(f"    {mark}{r['gold']:>24} -> {r['intent']:<24} {r['confidence']:.2f}  {r['text']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml", help="NLU pipeline to measure")
    config = parser.parse_args().config
    thresholds = act_above()
    data = {language: load_data(str(ROOT / "data" / "nlu" / f"{language}.yml")) for language in LANGUAGES}
    held_out_files = {language: ROOT / HELD_OUT_FILE.format(language=language) for language in LANGUAGES}
    with tempfile.TemporaryDirectory() as tmp:
        splits = {language: split(data[language]) for language in LANGUAGES}
        agent = train(config, [m for train_part, _ in splits.values() for m in train_part], Path(tmp), "split")
        print(f"{config.name}: trained on {sum(len(t) for t, _ in splits.values())} examples; "
              f"held out every {HOLD_OUT_EVERY}th example of each intent")
        for language, (_, test) in splits.items():
            rows = asyncio.run(parse(agent, test, language))
            report(language, "held-out examples", rows, thresholds, entities=True)

        agent = train(config, [m for d in data.values() for m in d.intent_examples], Path(tmp), "all")
        print(f"\n{config.name}: trained on all of data/nlu; the held-out files")
        for language, path in held_out_files.items():
            rows = asyncio.run(parse(agent, load_data(str(path)).intent_examples, language))
            report(language, f"{path.relative_to(ROOT)}", rows, thresholds, entities=False)


if __name__ == "__main__":
    main()
