"""The page's lists are written from the Python the API validates with, not kept by hand."""

from __future__ import annotations

import json
import re
from importlib import resources

from algotcha import models, vocabulary
from algotcha.routes import pages

WEB = resources.files("algotcha") / "web"


def exported() -> dict[str, object]:
    found = re.findall(r"^export const (\w+) = (.*);$", pages.vocabulary_js(), re.M)
    return {name: json.loads(value) for name, value in found}


def test_vocabulary_js_is_the_python_vocabulary() -> None:
    values = exported()
    assert values["NOTIFY_CHANNELS"] == list(vocabulary.NOTIFY_CHANNELS)
    assert values["TIMEFRAMES"] == list(vocabulary.TIMEFRAMES)
    assert values["OBJECTIVES"] == list(vocabulary.OBJECTIVES)
    assert values["FINAL_STATUSES"] == list(vocabulary.FINAL_STATUSES)
    assert values["MAX_VALUES"] == models.MAX_VALUES


def test_vocabulary_js_is_served_and_no_web_file_of_that_name_shadows_it() -> None:
    assert not (WEB / "vocabulary.js").is_file()
    body, media_type, _ = pages._assets()["vocabulary.js"]
    assert body.decode() == pages.vocabulary_js() and media_type.startswith("text/javascript")


def test_no_script_lists_a_vocabulary_of_its_own() -> None:
    """A JS array (or <option>s) of every timeframe or channel means a hand-kept copy again.

    Objectives are left out: they are also metric names, which the result tables list.
    """
    for entry in WEB.iterdir():
        if not entry.name.endswith((".js", ".html")):
            continue
        text = entry.read_text()
        for words in (vocabulary.TIMEFRAMES, vocabulary.NOTIFY_CHANNELS):
            listed = re.findall(r'\[\s*"([^"]+)"', text) + re.findall(r'value="([^"]+)"', text)
            assert not set(words) <= set(listed), (entry.name, words)
