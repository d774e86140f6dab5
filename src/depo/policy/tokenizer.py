"""A small byte-level BPE tokenizer trained on the project's own environment texts.

The chat template puts one special token before each message and `<|end|>` after it, with no
other text between them. Special tokens are split off before BPE runs, so every message's content
is tokenised on its own: rendering `messages[:i]` with a generation prompt is a token prefix of
rendering `messages[:i+1]`, and an assistant turn's tokens are exactly `count_text_tokens(content)`.
"""
from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, SYSTEM, USER, ASSISTANT, END = "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
SPECIAL_TOKENS = (PAD, SYSTEM, USER, ASSISTANT, END)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}" + SYSTEM + "{% elif message['role'] == 'user' %}" + USER
    + "{% elif message['role'] == 'assistant' %}" + ASSISTANT
    + "{% else %}{{ raise_exception('unknown chat role: ' ~ message['role']) }}{% endif %}"
    "{{ message['content'] }}" + END + "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; any string round-trips through encode/decode."""
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(
            f"vocab_size must hold the 256 byte symbols and {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}"
        )
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: the tokenizer needs environment text to learn merges from")
    backend = Tokenizer(models.BPE())
    # No prefix space: a message's tokens then do not depend on what precedes it.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        eos_token=END,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
