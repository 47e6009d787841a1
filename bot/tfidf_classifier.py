"""Intent classifier: word and character TF-IDF with a calibrated linear SVM.

Word uni- and bigrams come from the pipeline's tokens (jieba words for Chinese), so they follow
the tokenizer; character n-grams within words come from the raw lowercased text, which catches
typos, slang and Chinese words jieba cuts differently. Both use sublinear term frequency. A linear
SVM separates the intents, and a sigmoid calibration fitted by cross-validation turns its scores
into the confidences `FallbackClassifier` and the policy's `understanding.act_above` thresholds read.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

logger = logging.getLogger(__name__)

MODEL_FILE = "tfidf_intent_classifier.skops"
# Everything the persisted pipeline is made of; loading refuses any other type (skops' safe loading).
TRUSTED_TYPES = [
    "scipy.sparse._csr.csr_matrix",  # TfidfTransformer's idf diagonal
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.pipeline.Pipeline",
    "sklearn.svm._classes.LinearSVC",
]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class TfidfIntentClassifier(GraphComponent, IntentClassifier):
    """Word + char_wb TF-IDF, LinearSVC, sigmoid-calibrated confidences."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "skops"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "word_max_ngram": 2,
            "char_min_ngram": 1,
            "char_max_ngram": 4,
            "C": 1.0,
            "calibration_folds": 5,
            RANKING_LENGTH: LABEL_RANKING_LENGTH,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[Pipeline] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TfidfIntentClassifier:
        return cls(config, model_storage, resource)

    def _new_model(self) -> Pipeline:
        config = self._config
        features = ColumnTransformer(
            [
                (
                    "words",
                    TfidfVectorizer(
                        analyzer="word",
                        token_pattern=r"\S+",  # the documents are tokens joined by spaces
                        lowercase=False,
                        ngram_range=(1, config["word_max_ngram"]),
                        sublinear_tf=True,
                    ),
                    0,
                ),
                (
                    "chars",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        lowercase=True,
                        ngram_range=(config["char_min_ngram"], config["char_max_ngram"]),
                        sublinear_tf=True,
                    ),
                    1,
                ),
            ]
        )
        svm = LinearSVC(C=config["C"], class_weight="balanced", random_state=42)
        return Pipeline(
            [
                ("features", features),
                ("classifier", CalibratedClassifierCV(svm, method="sigmoid", cv=config["calibration_folds"])),
            ]
        )

    @staticmethod
    def _documents(messages: List[Message]) -> np.ndarray:
        """One row per message: its lowercased tokens joined by spaces, and its raw text."""
        rows = []
        for message in messages:
            text = message.get(TEXT) or ""
            tokens = message.get(TOKENS_NAMES[TEXT])
            words = [t.text for t in tokens] if tokens else text.split()
            rows.append((" ".join(words).lower(), text))
        return np.array(rows, dtype=object).reshape(-1, 2)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(TEXT) and e.get(INTENT)]
        intents = np.array([e.get(INTENT) for e in examples])
        if len(set(intents)) < 2:
            logger.warning("TfidfIntentClassifier needs at least two intents; not trained.")
            return self._resource
        self._model = self._new_model().fit(self._documents(examples), intents)
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self._model is None or not messages:
            return messages
        probabilities = self._model.predict_proba(self._documents(messages))
        intents = self._model.classes_
        length = self._config[RANKING_LENGTH]
        for message, row in zip(messages, probabilities):
            order = np.argsort(-row)
            ranking = [{"name": str(intents[i]), "confidence": float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking[:length] if length > 0 else ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def persist(self) -> None:
        import skops.io as sio

        with self._model_storage.write_to(self._resource) as directory:
            sio.dump(self._model, directory / MODEL_FILE)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TfidfIntentClassifier:
        import skops.io as sio

        try:
            with model_storage.read_from(resource) as directory:
                path = directory / MODEL_FILE
                untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
                if untrusted:
                    raise TypeError(f"{path} holds types we do not load: {sorted(untrusted)}")
                model = sio.load(path, trusted=TRUSTED_TYPES)
        except ValueError:  # no resource: the classifier was never trained (no intent examples)
            logger.warning("TfidfIntentClassifier has no trained model; it will not classify.")
            return cls.create(config, model_storage, resource, execution_context)
        return cls(config, model_storage, resource, model)
