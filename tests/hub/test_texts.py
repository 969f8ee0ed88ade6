"""The message catalogue: every key in both languages with the same parameters; language choice."""

from __future__ import annotations

import pytest

from hub.rules.loader import default_rules
from hub.rules.titles import rule_title
from hub.texts.catalogue import CATALOGUE, LANGS, both, choose_lang, fields, msg, render, text


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_text_has_both_languages_with_the_same_parameters(key: str) -> None:
    entry = CATALOGUE[key]
    assert set(entry) == set(LANGS)
    assert all(entry[lang].strip() for lang in LANGS)
    assert fields(entry["en"]) == fields(entry["zh"]), key
    # renders with its own parameters in both languages
    params = dict.fromkeys(fields(entry["en"]), "x")
    assert all(text(key, lang, **params) for lang in LANGS)


def test_render_takes_literals_and_nested_messages_and_refuses_what_it_does_not_know() -> None:
    note = msg("case.escalated", stage=msg("stage.handle"), level=msg("level.street"), area="110105001")
    assert render(note, "en") == "handle overdue: escalated to the street (110105001)"
    assert render(note, "zh") == "处置环节超时：已升级至街道（110105001）"
    title = msg("incident.on_device", rule=both("Smoke detected", "检测到烟雾"), device="smoke-3")
    assert render(title, "zh") == "检测到烟雾（设备 smoke-3）"
    assert render(msg("incident.on_device", rule=both("Own rule"), device="d"), "zh") == "Own rule（设备 d）"
    assert render({"key": "no.such.text", "params": {}}, "zh") is None  # the stored English stays
    assert render({"key": "incident.on_device", "params": {"rule": "r"}}, "en") is None  # a parameter gone
    assert render("plain text", "zh") is None
    with pytest.raises(KeyError):
        msg("no.such.text")


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        (None, None, "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        (None, "fr-FR, zh-TW;q=0.5", "zh"),
        (None, "en;q=0.4, zh;q=0.7", "zh"),
        (None, "zh;q=0, en", "en"),
        (None, "de, fr", "en"),
        (None, "zh;q=bad, en;q=0.1", "en"),
        (None, "zh-CN;x=1;q=0.9, en;q=0.5", "zh"),
        (None, "en;q=nan, zh;q=0.2", "zh"),
        ("zh", "en", "zh"),
        ("en", "zh-CN", "en"),
        ("zh-Hans", None, "zh"),
        ("klingon", "zh", "zh"),
    ],
)
def test_language_is_the_lang_parameter_then_accept_language_then_english(
    query: str | None, header: str | None, expected: str
) -> None:
    assert choose_lang(query, header) == expected


def test_every_default_rule_has_a_chinese_title() -> None:
    for rule in default_rules():
        title = rule_title(rule)
        assert rule.title_zh and title == {"en": rule.title, "zh": rule.title_zh}, rule.id


def test_a_stored_default_rule_without_title_zh_takes_the_shipped_one_unless_retitled() -> None:
    smoke = next(r for r in default_rules() if r.id == "smoke")
    seeded_before = smoke.model_copy(update={"title_zh": ""})
    assert rule_title(seeded_before) == {"en": "Smoke detected", "zh": "检测到烟雾"}
    retitled = smoke.model_copy(update={"title_zh": "", "title": "Smoke in the archive"})
    assert rule_title(retitled) == {"en": "Smoke in the archive", "zh": "Smoke in the archive"}
