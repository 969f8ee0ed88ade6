"""Topic validation, filter matching and the subscription trie against a simple reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.broker.topics import (
    FilterTrie,
    TopicValidationError,
    matches,
    parse_shared,
    validate_filter,
    validate_topic_name,
)


def reference_match(topic_filter: str, topic: str) -> bool:
    """Straight from the spec text, recursively on levels."""
    if topic.startswith("$") and topic_filter.split("/", maxsplit=1)[0] in ("+", "#"):
        return False

    def walk(f: list[str], t: list[str]) -> bool:
        if not f:
            return not t
        if f[0] == "#":
            return True
        if not t:
            return False
        return (f[0] == "+" or f[0] == t[0]) and walk(f[1:], t[1:])

    return walk(topic_filter.split("/"), topic.split("/"))


topic_levels = st.sampled_from(["a", "b", "", "$s", "ab"])
topics = st.lists(topic_levels, min_size=1, max_size=5).map("/".join)
filter_levels = st.sampled_from(["a", "b", "", "+", "$s"])
filters = st.builds(
    lambda levels, hash_: "/".join([*levels, "#"] if hash_ else levels),
    st.lists(filter_levels, min_size=0, max_size=4),
    st.booleans(),
).filter(bool)


@given(filters, topics)
def test_matches_agrees_with_reference(topic_filter: str, topic: str) -> None:
    assert matches(topic_filter, topic) == reference_match(topic_filter, topic)


@given(st.lists(filters, max_size=12, unique=True), topics)
def test_trie_finds_exactly_the_matching_filters(stored: list[str], topic: str) -> None:
    trie: FilterTrie[str] = FilterTrie()
    for topic_filter in stored:
        trie.set(topic_filter, topic_filter)
    assert sorted(trie.match(topic)) == sorted(f for f in stored if reference_match(f, topic))


@given(st.lists(filters, max_size=12, unique=True), st.data())
def test_trie_pop_removes_only_that_filter(stored: list[str], data: st.DataObject) -> None:
    trie: FilterTrie[str] = FilterTrie()
    for topic_filter in stored:
        trie.set(topic_filter, topic_filter)
    gone = data.draw(st.sampled_from(stored)) if stored else "x"
    assert trie.pop(gone) == (gone if stored else None)
    assert len(trie) == len(stored) - (1 if stored else 0)
    for topic_filter in stored:
        assert trie.get(topic_filter) == (None if topic_filter == gone else topic_filter)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("sport/tennis/#", "sport/tennis", True),
        ("sport/#", "sport", True),
        ("#", "$SYS/x", False),
        ("+/monitor", "$SYS/monitor", False),
        ("$SYS/#", "$SYS/x", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("sport/+", "sport/", True),
    ],
)
def test_spec_examples(topic_filter: str, topic: str, expected: bool) -> None:
    trie: FilterTrie[str] = FilterTrie()
    trie.set(topic_filter, topic_filter)
    assert matches(topic_filter, topic) is expected
    assert (trie.match(topic) == [topic_filter]) is expected


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00b", "#"])
def test_invalid_topic_names(topic: str) -> None:
    with pytest.raises(TopicValidationError):
        validate_topic_name(topic)


@pytest.mark.parametrize(
    "topic_filter", ["", "a/#/b", "a#", "a/b+", "x\x00", "$share/g", "$share//a", "$share/g+/a", "$share/g/a/#/b"]
)
def test_invalid_filters(topic_filter: str) -> None:
    with pytest.raises(TopicValidationError):
        validate_filter(topic_filter)


def test_shared_filter_parses() -> None:
    assert parse_shared("$share/hub/gs/v1/+/+/status") == ("hub", "gs/v1/+/+/status")
    assert parse_shared("gs/#") == (None, "gs/#")
