"""Where text is cut for synthesis: sentences, clauses, and a hard bound on every piece."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.text_pieces import (
    MAX_SPOKEN_CHARS,
    first_pieces,
    pieces_of,
    sentence_pieces,
    split_long,
)

WORD = ("antidisestablishmentarianism" * 200)[:4900]


def letters(pieces: list[str]) -> str:
    return "".join("".join(pieces).split())


def test_one_unbroken_word_is_cut_at_the_hard_bound() -> None:
    pieces = split_long(WORD)
    assert [len(p) for p in pieces] == [MAX_SPOKEN_CHARS] * 24 + [100]
    assert "".join(pieces) == WORD


def test_a_long_clause_is_cut_between_words_only() -> None:
    words = [f"word{i}" for i in range(100)]  # 689 characters, no comma to cut at
    pieces = split_long(" ".join(words), max_chars=120, hard_max=200)
    assert all(len(p) <= 200 for p in pieces) and len(pieces) == 4
    assert [w for p in pieces for w in p.split()] == words


def test_clauses_up_to_the_hard_bound_are_not_cut_inside() -> None:
    clause = " ".join(["talking"] * 20)  # 159 characters: over 120, under 200
    assert split_long(f"{clause}, {clause}", max_chars=120) == [f"{clause},", clause]


def test_a_word_inside_a_sentence_is_cut_without_losing_the_words_around_it() -> None:
    pieces = pieces_of(f"Hello there. Say {WORD[:450]} now, please.")
    assert pieces[0] == "Hello there."
    assert max(len(p) for p in pieces) <= MAX_SPOKEN_CHARS
    assert letters(pieces) == letters([f"Hello there. Say {WORD[:450]} now, please."])


def test_the_first_piece_stays_short_even_for_a_long_word() -> None:
    pieces = first_pieces(f"Look: {WORD[:300]}")
    assert pieces[0] == "Look:" and all(len(p) <= MAX_SPOKEN_CHARS for p in pieces)


def test_a_smaller_bound_is_kept_everywhere() -> None:
    text = f"{WORD[:130]}. Short one. {' '.join(['slow'] * 40)}"
    pieces = pieces_of(text, 50, 50, 50)
    assert max(len(p) for p in pieces) <= 50
    assert letters(pieces) == letters([text])


@given(
    st.text(st.sampled_from("ab .,;!?—\n"), max_size=2000),
    st.integers(min_value=1, max_value=300),
)
def test_no_piece_is_over_the_bound_and_no_letter_is_lost(text: str, bound: int) -> None:
    pieces = pieces_of(text, 120, 60, bound)
    assert all(0 < len(p) <= bound for p in pieces)
    assert letters(pieces) == letters([text])


def test_pieces_are_grouped_by_sentence() -> None:
    opening = "The package was left at the front door near the station this morning."
    grouped = sentence_pieces(f"{opening} Thanks.")
    assert grouped[0] == [
        "The package was left at the front door near the station",
        "this morning.",
    ]
    assert grouped[1] == ["Thanks."]
    assert pieces_of(f"{opening} Thanks.") == [*grouped[0], *grouped[1]]
