from application.transcript_deltas import TranscriptDeltas


def test_drafts_add_words_and_never_take_them_back() -> None:
    deltas = TranscriptDeltas()
    assert deltas.delta("What is") == "What is"
    assert deltas.delta("What is the what") == " the what"
    assert deltas.delta("What is the weather") == ""  # rewrites sent words: waits
    assert deltas.delta("What is the what?") == "?"
    assert deltas.delta("What is the what?") == ""
    assert deltas.sent == "What is the what?"
