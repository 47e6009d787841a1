"""Checks action server responses against Rasa's schema with a validator built once.

Rasa 3.6 calls `jsonschema.validate(result, schema)` on every action response, and jsonschema 4.17 re-checks
the (constant) schema against its metaschema on every call: about 37 ms per action on these machines, most
of the engine's CPU per turn. The check itself is unchanged: the same schema, the same error."""
from functools import lru_cache
from typing import Any, Dict

from jsonschema import ValidationError, validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@lru_cache(maxsize=1)
def _validator():
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    try:
        _validator().validate(result)
        return True
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from the Action "
            f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error


def install() -> None:
    RemoteAction._validate_action_result = validate_action_result
