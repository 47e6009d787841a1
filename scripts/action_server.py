"""The action server: rasa-sdk's own (`python -m rasa_sdk --actions actions`) but for its answer to an action
that raised. rasa-sdk answers with the whole request, which is the tracker: every message the customer typed,
dates of birth and card numbers as typed, and the engine writes that answer to its log. Here the answer names
the error's type only; the traceback stays in this server's log.

`python -m scripts.action_server -p PORT`"""
import argparse
import logging
import os

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from sanic import Sanic, response

logger = logging.getLogger("kindly.actions")


def build_app() -> Sanic:
    app = create_app("actions")

    # Registered after rasa-sdk's handler for Exception, so it takes its place.
    @app.exception(Exception)
    async def error_without_the_request(request, exception: Exception):
        logger.error("action server error on %s %s", request.method, request.path, exc_info=exception)
        return response.json({"error": type(exception).__name__}, status=500)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--port", type=int, default=5055)
    args = parser.parse_args()
    utils.configure_colored_logging("WARNING")
    utils.update_sanic_log_level()
    build_app().run(os.environ.get("SANIC_HOST", "127.0.0.1"), args.port, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    main()
