"""The reader (`embed/reader.py`): the shipped weights, their export, and how answers use it.

Real model throughout: the int8 OpenVINO export made from `assistant/data/reader.npz` against
the same weights in torch fp32, and the re-ordering of real candidates of the seed index."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from assistant import Settings
from assistant.answer.extractive import Candidate, ExtractiveAnswerer
from assistant.embed.reader import (
    FROZEN,
    MAX_TOKENS,
    PASSAGE,
    QUERY,
    TOP,
    load_weights,
    reader_refusal,
    reader_use,
    reader_weights_path,
    shared_reader,
)
from assistant.records import Passage
from assistant.text.reading import Question

QUESTION = "Quelle est la surface de la Serre numérique ?"
SENTENCES = [
    "A Valenciennes, la Serre numérique fédère les experts du « 2.0 ».",
    "Le bâtiment de la Serre numérique s'étend sur 17 000 m² au cœur du campus.",
    "Il fera beau à Perpignan ce week-end.",
    "La Serre numérique accueille des étudiants, des entreprises et des chercheurs.",
]


def test_the_shipped_weights_say_how_they_were_fitted() -> None:
    tensors, meta = load_weights(reader_weights_path())
    trained = {k.split(".")[2] for k in tensors if k.startswith("encoder.layer.")}
    assert trained == {str(i) for i in range(FROZEN, 12)}
    assert tensors["head.weight"].shape == (1, 384)
    assert meta["procedure"].startswith("bench/train_reader.py")
    weight, unsure, top = reader_use()
    assert weight > 0 and 0 < unsure <= 1.01 and 2 <= top <= TOP


def test_the_export_scores_as_the_weights_do_in_torch() -> None:
    """The int8 export against the same weights in fp32 torch (what training ran), on pairs
    tokenized by transformers as in training: the same order (of scores apart by more than a
    tenth), scores within a few hundredths."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from assistant.embed.e5 import converted_model_dir

    reader = shared_reader(Settings())
    assert reader is not None
    got = reader.scores(QUESTION, SENTENCES)

    directory = converted_model_dir(Settings().model_cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    tensors, _ = load_weights(reader_weights_path())
    head = torch.nn.Linear(384, 1)
    head.load_state_dict({"weight": torch.from_numpy(tensors.pop("head.weight")),
                          "bias": torch.from_numpy(tensors.pop("head.bias"))})
    _, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()},
                                          strict=False)
    assert not unexpected
    batch = tokenizer([QUERY + QUESTION] * len(SENTENCES), [PASSAGE + s for s in SENTENCES],
                      padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    # the product's tokenizer (`tokenizers`, the export's files) cuts pairs the same way
    ids, mask = reader.encoded(QUESTION, SENTENCES)
    for i in range(len(SENTENCES)):
        assert ids[i][mask[i] == 1].tolist() == \
            batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist()
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].float()
        want = head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1).numpy()
    # sentences that say nothing of what is asked sit together near the bottom (within a few
    # hundredths): the order of the others is kept
    assert int(np.argmax(got)) == int(np.argmax(want))
    for i in range(len(want)):
        for j in range(len(want)):
            if want[i] > want[j] + 0.1:
                assert got[i] > got[j], (got, want)
    assert np.abs(got - want).max() < 0.05 * (want.max() - want.min()) + 0.05


def test_the_reader_knows_which_sentence_answers() -> None:
    reader = shared_reader(Settings())
    assert reader is not None
    scores = reader.scores(QUESTION, SENTENCES)
    assert int(np.argmax(scores)) == 1  # the surface, not the sentence that only names it
    assert scores[2] < scores[1]
    assert reader.scores(QUESTION, []).shape == (0,)


def _candidates(scores: list[float]) -> list[Candidate]:
    out = []
    for i, (text, score) in enumerate(zip(SENTENCES, scores)):
        passage = Passage(i, 1.0, text, "serre.md", "La Serre numérique", 0, len(text))
        out.append(Candidate(passage, rank=i, start=0, end=len(text), text=text, prior=1.0,
                             score=score))
    return out


def test_an_unsure_pick_is_reordered_by_the_reader_and_a_sure_one_is_not() -> None:
    answerer = ExtractiveAnswerer(Settings())
    question = Question.read(QUESTION)
    _, unsure, top = reader_use()
    # the pick puts the sentence that only names the place first, unsure
    low = min(unsure, 0.7) * 0.9
    ranked = answerer.reread(question, _candidates([low, low * 0.8, 0.02, 0.01]))
    assert [c.text for c in ranked[:2]] == [SENTENCES[1], SENTENCES[0]]
    assert [c.score for c in ranked[:2]] == [low * 0.8, low]  # the pick's probabilities kept
    assert len(ranked) == TOP
    sure = _candidates([0.97, 0.01, 0.01, 0.01])
    assert answerer.reread(question, sure) == sure
    assert sure[0].score == 0.97
    off = ExtractiveAnswerer(replace(Settings(), reader=False))
    unsure_again = _candidates([low, low * 0.8, 0.02, 0.01])
    assert [c.text for c in off.reread(question, unsure_again)] == SENTENCES


def test_the_reader_can_be_turned_off_from_the_environment() -> None:
    assert Settings.from_env({"ASSISTANT_READER": "0"}).reader is False
    assert Settings.from_env({}).reader is True


def test_the_weights_carry_their_cross_validation() -> None:
    """Out-of-fold counts (readers trained without the articles they were measured on): with
    the reader, at least as many first sentences right as the pick alone, careful and typed."""
    _, meta = load_weights(reader_weights_path())
    by = meta["cross_validated_by_article"]["by"]
    assert by["careful n"] > 1000 and by["typed n"] > 1000  # the 5 folds
    assert by["careful reader"] >= by["careful base"]
    assert by["typed reader"] >= by["typed base"]


def test_the_weights_carry_how_the_reader_weighs_in_the_refusal() -> None:
    """Chosen out of fold: more unanswerable questions refused with the reader than by the
    answers head alone, no more answerable ones, reading few questions."""
    _, meta = load_weights(reader_weights_path())
    use = reader_refusal()
    assert use is not None and 1 <= use.top <= TOP and use.weight > 0 and use.band > 0
    by = meta["refuse"]["by"]
    assert by["answerable n"] > 2000 and by["near n"] > 500
    assert by["answerable refused with reader"] <= by["answerable refused"]
    unanswerable = [by[f"{kind} refused"] for kind in ("near", "far")]
    with_reader = [by[f"{kind} refused with reader"] for kind in ("near", "far")]
    assert sum(with_reader) > sum(unanswerable) and with_reader[0] > unanswerable[0]
    assert by["read"] <= 0.3 * meta["refuse"]["questions"]


def test_an_unsure_answers_head_asks_the_reader_and_a_sure_one_does_not() -> None:
    """At the answers head's threshold the reader decides: the sentence giving the surface
    answers "Quelle est la surface ... ?", the weather in Perpignan does not; far from the
    threshold the head's decision stands, and without the reader the threshold alone."""
    use = reader_refusal()
    assert use is not None
    answerer = ExtractiveAnswerer(Settings())
    question = Question.read(QUESTION)
    right = _candidates([0.9, 0.05, 0.03, 0.02])[1:2] * use.top
    wrong = _candidates([0.9, 0.05, 0.03, 0.02])[2:3] * use.top
    threshold = 0.3
    assert answerer.weighed(question, right, threshold, threshold)
    assert not answerer.weighed(question, wrong, threshold, threshold)
    sure, doubtful = 0.99, 0.001  # log-odds far beyond any band
    assert not use.reads(sure, threshold) and not use.reads(doubtful, threshold)
    assert answerer.weighed(question, wrong, sure, threshold)
    assert not answerer.weighed(question, right, doubtful, threshold)
    off = ExtractiveAnswerer(replace(Settings(), reader=False))
    assert off.weighed(question, wrong, threshold, threshold)
    assert not off.weighed(question, right, threshold * 0.99, threshold)


def test_the_reader_keeps_its_last_scores() -> None:
    """The refusal and the re-ordering of one answer read the same pairs once: the scores of
    pairs already read come back the same, alone or among new ones."""
    reader = shared_reader(Settings())
    assert reader is not None
    first = reader.scores(QUESTION, SENTENCES)
    again = reader.scores(QUESTION, [SENTENCES[2], SENTENCES[1]])
    assert again.tolist() == [first[2], first[1]]
    assert reader.scores(QUESTION + " ", SENTENCES[:1]).shape == (1,)


def test_a_pair_is_cut_as_training_cut_it() -> None:
    """A sentence too long for `MAX_TOKENS` loses its end (transformers' longest-first cut,
    the question being shorter), as does a question longer than half of them."""
    from transformers import AutoTokenizer

    from assistant.embed.e5 import converted_model_dir

    reader = shared_reader(Settings())
    assert reader is not None
    tokenizer = AutoTokenizer.from_pretrained(converted_model_dir(Settings().model_cache_dir))
    long = " ".join(SENTENCES * 12)
    ids, mask = reader.encoded(QUESTION, [long, SENTENCES[0]])
    assert int(mask[0].sum()) == MAX_TOKENS and ids.shape[1] % 16 == 0
    want = tokenizer(QUERY + QUESTION, PASSAGE + long, truncation=True,
                     max_length=MAX_TOKENS)["input_ids"]
    assert ids[0][mask[0] == 1].tolist()[:-2] == want[:-2]  # the cut word may split otherwise
    ids, mask = reader.encoded(long, [SENTENCES[0]])
    assert int(mask[0].sum()) <= MAX_TOKENS


@pytest.mark.parametrize("question", ["", " "])
def test_an_empty_question_still_gets_scores(question: str) -> None:
    reader = shared_reader(Settings())
    assert reader is not None
    assert reader.scores(question, SENTENCES[:2]).shape == (2,)


def test_a_reader_that_cannot_be_made_is_said_once_and_answers_go_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A failing export step (a broken install): a warning naming the way out, no half-made
    directory, and the pick alone orders the sentences."""
    from assistant.embed import e5_export, reader

    monkeypatch.setattr(reader, "_READERS", {})
    monkeypatch.setattr(e5_export, "READER_STEPS", ("nonexistent-step",))
    monkeypatch.setattr(e5_export, "reader_key", lambda: "000000000000")
    target = e5_export.reader_dir(Settings())
    assert not target.exists()
    with caplog.at_level("WARNING"):
        assert shared_reader(Settings()) is None
        assert shared_reader(Settings()) is None  # not tried again
    warnings = [r.getMessage() for r in caplog.records if "Lecteur indisponible" in r.getMessage()]
    assert len(warnings) == 1 and "ASSISTANT_READER=0" in warnings[0]
    assert not target.exists()
    _, unsure, _ = reader_use()
    low = min(unsure, 0.7) * 0.9
    ranked = ExtractiveAnswerer(Settings()).reread(Question.read(QUESTION),
                                                   _candidates([low, low * 0.8, 0.02, 0.01]))
    assert [c.text for c in ranked] == SENTENCES
