"""NLU figures on a held-out split: intent macro-F1 and entity F1 per language.

Every fifth example of each intent (in file order) is held out; a bilingual NLU model with the production
config is trained on the rest, and the held-out examples of each language are parsed with that language's
metadata. Run with the engine venv: `make bench` (or .venv-engine/bin/python bench/nlu_eval.py)."""
import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rasa.core.agent import Agent  # noqa: E402
from rasa.core.channels import UserMessage  # noqa: E402
from rasa.model_training import train_nlu  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

METADATA = {"en": {"country": "US", "timezone": "America/New_York"}, "zh": {"country": "CN", "timezone": "Asia/Shanghai"}}
HOLD_OUT_EVERY = 5


def split(data: TrainingData) -> tuple[list, list]:
    train, test, seen = [], [], {}
    for message in data.intent_examples:
        intent = message.get("intent")
        seen[intent] = seen.get(intent, 0) + 1
        (test if seen[intent] % HOLD_OUT_EVERY == 0 else train).append(message)
    return train, test


def entity_spans(entities: list) -> set:
    return {(e["start"], e["end"], e["entity"]) for e in entities if e["entity"] in ("date", "amount", "count")}


async def evaluate(agent: Agent, test: list, language: str) -> dict:
    gold_intents, predicted_intents, raw_intents = [], [], []
    true_positives = gold_total = predicted_total = 0
    for message in test:
        parsed = await agent.processor.parse_message(UserMessage(message.get("text"), metadata=METADATA[language]))
        gold_intents.append(message.get("intent"))
        predicted_intents.append(parsed["intent"]["name"])
        raw_intents.append(next(r["name"] for r in parsed["intent_ranking"] if r["name"] != "nlu_fallback"))
        gold, predicted = entity_spans(message.get("entities") or []), entity_spans(parsed.get("entities") or [])
        true_positives += len(gold & predicted)
        gold_total += len(gold)
        predicted_total += len(predicted)
    precision = true_positives / predicted_total if predicted_total else 0.0
    recall = true_positives / gold_total if gold_total else 0.0
    entity_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "examples": len(test),
        "intent_macro_f1": f1_score(gold_intents, predicted_intents, average="macro", zero_division=0),
        "intent_accuracy": sum(g == p for g, p in zip(gold_intents, predicted_intents)) / len(test),
        "fallbacks": predicted_intents.count("nlu_fallback"),
        "classifier_macro_f1": f1_score(gold_intents, raw_intents, average="macro", zero_division=0),
        "entity_precision": precision,
        "entity_recall": recall,
        "entity_f1": entity_f1,
        "errors": [(m.get("text"), g, p) for m, g, p in zip(test, gold_intents, predicted_intents) if g != p],
    }


def main() -> None:
    held_out, training = {}, []
    for language in ("en", "zh"):
        train, test = split(load_data(str(ROOT / "data" / "nlu" / f"{language}.yml")))
        training += train
        held_out[language] = test
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.yml"
        train_file.write_text(TrainingData(training_examples=training).nlu_as_yaml(), encoding="utf-8")
        model = train_nlu(str(ROOT / "config.yml"), str(train_file), str(Path(tmp) / "models"), fixed_model_name="heldout")
        agent = Agent.load(model)
        print(f"trained on {len(training)} examples; held out every {HOLD_OUT_EVERY}th example of each intent")
        for language, test in held_out.items():
            result = asyncio.run(evaluate(agent, test, language))
            print(
                f"[{language}] held-out examples: {result['examples']}  intent macro-F1: {result['intent_macro_f1']:.3f}  "
                f"intent accuracy: {result['intent_accuracy']:.3f}  (fallbacks: {result['fallbacks']}; classifier alone, "
                f"without the fallback: macro-F1 {result['classifier_macro_f1']:.3f})  entity P/R/F1: {result['entity_precision']:.3f}/"
                f"{result['entity_recall']:.3f}/{result['entity_f1']:.3f}"
            )
            for text, gold, predicted in result["errors"]:
                print(f"    {gold:>24} -> {predicted:<24} {text}")


if __name__ == "__main__":
    main()
