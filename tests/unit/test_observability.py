"""Library modules' log lines reach the entry point's Powertools logger: JSON, with their structured fields."""

from __future__ import annotations

import io
import json
import logging

from findings_router.entrypoints.observability import build_logger


def test_a_library_warning_is_a_structured_json_line_of_the_functions_log():
    library = logging.getLogger("findings_router")
    saved = (library.handlers[:], library.level, library.propagate)
    logger = build_logger("findings-router-test")  # what each entry point does at import
    stream = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        logging.getLogger("findings_router.service.route").warning(
            "security hub write-back failed", extra={"finding_id": "F-1", "error": "ThrottlingException"}
        )
        logging.getLogger("findings_router.notify.retry").debug("below the function's level: not written")
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        library.handlers, library.level, library.propagate = saved  # the entry points' wiring, as it was
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]
    assert line["message"] == "security hub write-back failed"
    assert line["level"] == "WARNING" and line["service"] == "findings-router-test"
    assert (line["finding_id"], line["error"]) == ("F-1", "ThrottlingException")
    assert line["name"] == "findings_router.service.route"
