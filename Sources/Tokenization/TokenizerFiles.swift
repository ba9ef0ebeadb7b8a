import Foundation

/// The two files of a new byte-level BPE tokenizer learned from a text: `tokenizer.json` and
/// `tokenizer_config.json`, as the `tokenizers` library and transformers read them. `dpo-dist init`
/// writes them beside a fresh model.
public enum TokenizerFiles {
    /// `<|endoftext|>` (BOS and pad), and `<|im_start|>` and `<|im_end|>`, which frame ChatML turns.
    /// They take ids 0, 1, 2, before the byte tokens, as SmolLM2's do.
    public static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    public static let endOfText = specialTokens[0]
    /// EOS is the turn end of the chat template, as in SmolLM2-Instruct's and Qwen2.5-Instruct's
    /// configs: generation stops where the assistant's turn ends, and DPO and SFT append it to
    /// plain-text completions, so a model trained on them learns to end its turn.
    public static let endOfTurn = specialTokens[2]

    /// ChatML, the same template as SmolLM2-Instruct's and TRL's `clone_chat_template` default.
    public static let chatTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// A complete byte-level BPE `tokenizer.json`: specials at ids 0-2, the 256 bytes (GPT-2's
    /// byte-to-character map) at 3-258 in byte order, then the merged tokens in merge order. The
    /// pre-tokenizer is GPT-2's ByteLevel (its regex, no prefix space), the decoder ByteLevel, and
    /// there is no normalizer and no post-processor, so no BOS is added (as SmolLM2).
    public static func makeTokenizerJSON(corpus: String, merges: Int) -> [String: Any] {
        var trainer = BPETrainer(corpus: corpus)
        let trained = trainer.train(merges: merges)
        let addedTokens: [[String: Any]] = specialTokens.enumerated().map { id, content in
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false,
                                        "trim_offsets": true, "use_regex": true]
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(),
            "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": trained.vocab,
            "merges": trained.merges.map { [$0.0, $0.1] },
        ]
        return ["version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": addedTokens,
                "normalizer": NSNull(), "pre_tokenizer": byteLevel, "post_processor": NSNull(),
                "decoder": byteLevel, "model": model]
    }

    /// `tokenizer_config.json`. `PreTrainedTokenizerFast` is the class name transformers 4 and 5
    /// both resolve (5 maps it to its `TokenizersBackend`).
    public static func makeTokenizerConfig(maxLength: Int) -> [String: Any] {
        ["tokenizer_class": "PreTrainedTokenizerFast",
         "bos_token": endOfText, "eos_token": endOfTurn, "pad_token": endOfText,
         "additional_special_tokens": Array(specialTokens.dropFirst()),
         "model_max_length": maxLength,
         "clean_up_tokenization_spaces": false,
         "chat_template": chatTemplate]
    }

    /// A short English text for `dpo-dist init` without `--tokenizer-from`: enough to learn a few
    /// hundred common English merges. A task-specific corpus (the demo has data/demo/corpus.txt)
    /// gives merges that fit the data better.
    public static let defaultCorpus = """
    Direct preference optimization trains a language model on pairs of answers to the same prompt: \
    one answer that people preferred, and one that they rejected. There is no separate reward model. \
    The policy starts as a copy of the reference model, which was first trained on good examples \
    with supervised fine-tuning. During training, the loss pushes the policy to give the chosen \
    answer a higher probability than the reference gives it, and the rejected answer a lower one.

    The strength of that push is set by beta. With a small beta the policy may move far from the \
    reference; with a large beta it stays close. If the model starts to repeat itself or to forget \
    what it knew, lower the learning rate or raise beta. If the preferences do not show in its \
    answers, train for longer, or lower beta. Keep an eye on the rewards and the accuracies: the \
    share of pairs where the chosen answer gets the higher reward should rise above one half.

    A good data set has thousands of pairs, written for the task the model should learn. The \
    prompts should be varied, and the chosen and rejected answers should differ in the way that \
    matters, not in length or in style. Short answers are fine. Check a few hundred pairs by hand \
    before training: a wrong label teaches the model the wrong thing, and it does so with the \
    same confidence as a right one.

    The model reads text as tokens. This tokenizer starts from the 256 bytes, so it can read any \
    text in any language, and then learns which pairs of tokens are common enough to become new \
    tokens of their own. The words that appear most often, such as the, and, of, to, in, is, that, \
    for, with, on and as, are learned first. Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100 \
    and 2024 and signs like +, -, =, ?, !, (, ), :, ; and . are kept as they are written.

    Training runs on every core of the machine, and across many machines at once with MPI: each \
    process takes its share of the pairs, computes the gradients of its share, and all processes \
    average their gradients before each step, so the result is the same as one large batch.
    """
}
