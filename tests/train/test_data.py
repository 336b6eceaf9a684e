"""Record formats, answer-only labels and length-grouped batches."""

from __future__ import annotations

import json

import pytest

from memtune.chatformat import end_of_turn_ids, to_messages
from memtune.errors import InputError
from memtune.train.data import (
    IGNORE,
    PAD_MULTIPLE,
    collate,
    keyword_recall,
    length_grouped_batches,
    load_bundle,
    padded_width,
    sample_probes,
    shard,
    split_by_tokens,
    tokenize_all,
    tokenize_conversation,
)

ANSWER = [{"role": "assistant", "content": "Use PostgreSQL 16."}]


@pytest.mark.parametrize(
    ("record", "fmt", "expected"),
    [
        ({"messages": [{"role": "user", "content": "Q?"}, *ANSWER], "metadata": {"x": 1}}, "messages",
         [{"role": "user", "content": "Q?"}, *ANSWER]),
        ({"instruction": "Q?", "input": "", "output": "Use PostgreSQL 16.", "system": "S"}, "alpaca",
         [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}, *ANSWER]),
        ({"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q?"},
                            {"from": "gpt", "value": "Use PostgreSQL 16."}]}, "sharegpt",
         [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}, *ANSWER]),
        ({"prompt": "S\n\nHuman: Q?\n\nAssistant:", "completion": " Use PostgreSQL 16."}, "anthropic",
         [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}, *ANSWER]),
        ({"prompt": "\n\nHuman: Q?\n\nAssistant:", "completion": "Use PostgreSQL 16."}, "anthropic",
         [{"role": "user", "content": "Q?"}, *ANSWER]),
        ({"prompt": [{"role": "user", "content": "Q?"}], "completion": ANSWER}, "prompt_completion",
         [{"role": "user", "content": "Q?"}, *ANSWER]),
        ({"prompt": "Q?", "completion": "Use PostgreSQL 16."}, "prompt_completion",
         [{"role": "user", "content": "Q?"}, *ANSWER]),
    ],
)
def test_every_record_format_becomes_messages(record, fmt, expected):
    assert to_messages(record) == expected, fmt


def test_alpaca_input_becomes_context_of_the_user_turn():
    msgs = to_messages({"instruction": "Q?", "input": "I'm in a terminal.", "output": "A"})
    assert msgs[0]["content"].startswith("Q?") and "I'm in a terminal." in msgs[0]["content"]


def test_unknown_record_is_rejected_with_the_line(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:1"):
        load_bundle(tmp_path)


def test_labels_cover_only_the_answer_and_end_of_turn(tiny_tokenizer):
    tok = tiny_tokenizer
    eot = end_of_turn_ids(tok)
    assert eot[0] == tok.convert_tokens_to_ids("<|im_end|>")
    msgs = [{"role": "user", "content": "Which database?"}, {"role": "assistant", "content": "PostgreSQL"}]
    ex = tokenize_conversation(tok, msgs, eot)
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    n_prompt = len(tok(prompt, add_special_tokens=False).input_ids)
    # every prompt token is ignored...
    assert ex.labels[:n_prompt] == [IGNORE] * n_prompt
    # ...and the answer + <|im_end|> are learned, nothing after it
    learned = ex.labels[n_prompt:]
    assert IGNORE not in learned
    assert learned[-1] == eot[0]
    assert tok.decode(learned[:-1]) == "PostgreSQL"
    # the sequence is exactly what generation sees: prompt tokens then the answer
    assert ex.input_ids[:n_prompt] == tok(prompt, add_special_tokens=False).input_ids


def test_quoted_control_tokens_are_learned_as_plain_text(tiny_tokenizer):
    """A note that quotes `<|im_end|>` must not end the answer (or the prompt) there."""
    from memtune.chatformat import encode_chat

    tok = tiny_tokenizer
    eot = end_of_turn_ids(tok)
    answer = "Label the answer plus the `<|im_end|>` token; pad with <|endoftext|> never."
    msgs = [{"role": "system", "content": "Notes: only the `<|im_end|>` is learned."},
            {"role": "user", "content": "What is labelled?"}, {"role": "assistant", "content": answer}]
    ex = tokenize_conversation(tok, msgs, eot)
    learned = [t for t in ex.labels if t != IGNORE]
    assert learned[-1] == eot[0] and eot[0] not in learned[:-1]  # one stop, at the very end
    assert tok.decode(learned[:-1]) == answer  # the whole answer, the quote as plain tokens
    prompt = encode_chat(tok, msgs[:2])
    assert ex.input_ids[: len(prompt)] == prompt  # generation sees what training saw
    n_turn_ends = sum(1 for t in prompt if t == eot[0])
    assert n_turn_ends == 2  # system and user turns end; the quoted one is text
    assert "only the `<|im_end|>` is learned" in tok.decode(prompt)


def test_pad_is_end_of_turn_yet_end_of_turn_is_still_learned(tiny_tokenizer):
    """SmolLM2's pitfall: pad id == end-of-turn id must not hide the stop token."""
    tok = tiny_tokenizer
    assert tok.pad_token_id == tok.eos_token_id
    ex = tokenize_all(tok, [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]], 64).examples[0]
    batch = collate([ex, ex], pad_id=tok.pad_token_id)
    assert (batch["labels"] == tok.eos_token_id).sum() == 2


def test_multi_turn_labels_each_assistant_turn(tiny_tokenizer):
    tok = tiny_tokenizer
    msgs = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "first"},
            {"role": "user", "content": "two"}, {"role": "assistant", "content": "second"}]
    ex = tokenize_conversation(tok, msgs, end_of_turn_ids(tok))
    full = tok(tok.apply_chat_template(msgs, tokenize=False), add_special_tokens=False).input_ids
    # same tokens as the whole rendering, minus the template's final newline after <|im_end|>
    assert ex.input_ids == full[: len(ex.input_ids)]
    text = tok.decode([t for t in ex.labels if t != IGNORE])
    assert text == "first<|im_end|>second<|im_end|>"


def test_truncation_drops_examples_left_without_an_answer(tiny_tokenizer):
    long_q = "word " * 200
    out = tokenize_all(tiny_tokenizer, [[{"role": "user", "content": long_q}, {"role": "assistant", "content": "a"}],
                                        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]], 32)
    assert out.dropped == 1 and len(out.examples) == 1


def test_length_grouped_batches_pad_little_and_are_deterministic():
    lengths = [5, 100, 6, 98, 7, 97, 8, 99] * 4
    b1 = length_grouped_batches(lengths, 4, seed=1, epoch=0)
    assert b1 == length_grouped_batches(lengths, 4, seed=1, epoch=0)
    assert b1 != length_grouped_batches(lengths, 4, seed=1, epoch=1)
    assert sorted(i for b in b1 for i in b) == list(range(len(lengths)))
    for b in b1:  # short and long never share a batch
        ls = [lengths[i] for i in b]
        assert max(ls) - min(ls) < 10


def test_collate_pads_to_the_longest_in_the_batch_rounded_up(tiny_tokenizer):
    exs = tokenize_all(tiny_tokenizer, [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                                        [{"role": "user", "content": "a longer question"},
                                         {"role": "assistant", "content": "a longer answer"}]], 512).examples
    longest = max(len(e) for e in exs)
    exact = collate(exs, pad_id=0, multiple=1)
    assert exact["input_ids"].shape[1] == longest
    batch = collate(exs, pad_id=0)
    assert batch["input_ids"].shape[1] == padded_width(longest) == -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE
    for b in (exact, batch):  # padding is masked and never learned
        assert b["attention_mask"].sum() == sum(len(e) for e in exs)
        assert (b["labels"][b["attention_mask"] == 0] == IGNORE).all()


def test_split_by_tokens_budgets_padded_widths():
    lengths = [40] * 8  # 40 pads to 64: four rows are 256 padded tokens
    parts = split_by_tokens(list(range(8)), lengths, 256)
    assert [len(p) for p in parts] == [4, 4]
    assert split_by_tokens(list(range(8)), lengths, 0) == [list(range(8))]


def test_shard_gives_every_rank_the_same_number_of_batches():
    batches = [[i] for i in range(5)]
    a, b = shard(batches, 0, 2), shard(batches, 1, 2)
    assert len(a) == len(b) == 3
    assert {x[0] for x in a + b} == set(range(5))


@pytest.mark.parametrize(
    ("text", "kws", "want"),
    [
        ("Run `yarn start` after nvm use 22", ["yarn start", "nvm use 22"], 1.0),
        ("run YARN   start", ["yarn start", "Node 22"], 0.5),
        ("use legacy-peer-deps", ["legacy-peer-deps"], 1.0),
        ("nothing", ["PostgreSQL"], 0.0),
    ],
)
def test_keyword_recall(text, kws, want):
    assert keyword_recall(text, kws) == want


def test_probe_sample_is_fixed_and_spread_over_guidelines():
    probes = [{"question": f"q{g}{i}", "expected_keywords": ["k"], "guideline_id": g} for g in range(4) for i in range(5)]
    s = sample_probes(probes, 4, seed=3)
    assert s == sample_probes(probes, 4, seed=3)
    assert len({p["guideline_id"] for p in s}) == 4


def test_load_bundle_reads_lineage(bundle_dir):
    b = load_bundle(bundle_dir)
    assert len(b.train) == 12 and len(b.eval) == 2 and len(b.probes) == 4
    assert b.guidelines[0] == {"id": 1, "version": 1}
    assert b.fingerprint == "sha256:test-bundle"
    assert b.adapter_config["r"] == 4


def test_split_by_tokens_bounds_each_forward_pass():
    from memtune.train.data import split_by_tokens

    lengths = [500, 480, 100, 90, 80, 10]
    parts = split_by_tokens(list(range(6)), lengths, 1000)
    assert sorted(i for p in parts for i in p) == list(range(6))
    assert all(len(p) * max(lengths[i] for i in p) <= 1000 or len(p) == 1 for p in parts)
    assert split_by_tokens([0, 1], lengths, 0) == [[0, 1]]
    assert split_by_tokens([0], [5000], 100) == [[0]]  # one example always runs


def test_replay_examples_are_plain_text_learned_on_every_token(tiny_tokenizer):
    from memtune.train.data import replay_examples

    exs = replay_examples(tiny_tokenizer, 5, text="First paragraph here.\n\nSecond one.\n\n\n")
    assert len(exs) == 5
    assert exs[0].input_ids == exs[2].input_ids != exs[1].input_ids  # cycles through the paragraphs
    assert all(e.labels == e.input_ids and IGNORE not in e.labels for e in exs)
    shipped = replay_examples(tiny_tokenizer, 3)
    assert len(shipped) == 3 and all(len(e) > 10 for e in shipped)
    assert replay_examples(tiny_tokenizer, 0) == []
    with pytest.raises(InputError, match="replay text is empty"):
        replay_examples(tiny_tokenizer, 2, text="\n\n  \n")


def test_replay_sample_differs_from_the_forgetting_sample():
    from importlib.resources import files

    replay = files("memtune").joinpath("data/replay_text.txt").read_text()
    general = files("memtune").joinpath("data/general_text.txt").read_text()
    replay_sents = {s.strip() for s in replay.replace("\n", " ").split(".") if len(s.strip()) > 20}
    general_sents = {s.strip() for s in general.replace("\n", " ").split(".") if len(s.strip()) > 20}
    assert len(replay_sents) > 30 and not replay_sents & general_sents
