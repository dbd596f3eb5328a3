"""Loads rsr's exports where users train, and trains two steps on each.

    python check_trainers.py trl EXPORTS_DIR
    python check_trainers.py llamafactory EXPORTS_DIR

EXPORTS_DIR holds the files scripts/check-trainers.sh exported, named
`{formatter}.{reasoning}.{format}.{jsonl|parquet}`, and `counts.json` (the
rows rsr wrote per file). A tiny random Llama model and a byte-level BPE
tokenizer trained on the exported text are made in EXPORTS_DIR/model, with
a ChatML template that refuses unknown roles (as strict templates do), so
a row that would lose a message fails loudly.

For each file it checks that every row loads (no row dropped), that the
trainer runs two steps, and, for `think_tags` SFT rows, that the thinking
reaches the tokens that carry the loss. Exits non-zero on the first
failure, naming the file.
"""

import json
import os
import sys

CHATML = (
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unsupported role: ' + m['role']) }}{% endif %}"
    "{% if m['role'] == 'assistant' %}<|im_start|>assistant\n"
    "{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def exported(d):
    counts = json.load(open(os.path.join(d, "counts.json")))
    for name in sorted(counts):
        formatter, reasoning, shape = name.split(".")[:3]
        yield os.path.join(d, name), formatter, reasoning, shape, counts[name]


def texts(d):
    for path, *_ in exported(d):
        if path.endswith(".jsonl"):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    yield line


def tiny_model(d):
    """A 2-layer Llama and a BPE tokenizer trained on the exports."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = os.path.join(d, "model")
    if os.path.isdir(out):
        return out
    special = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts(d), trainers.BpeTrainer(vocab_size=1500, special_tokens=special)
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>", bos_token=None
    )
    fast.chat_template = CHATML
    fast.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=4096, pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def fail(path, why):
    sys.exit(f"check_trainers: {os.path.basename(path)}: {why}")


def check_trl(d):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    model_dir = tiny_model(d)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    checked = 0
    for path, formatter, reasoning, shape, rows in exported(d):
        if shape not in ("trl", "trl_prompt_completion", "parquet"):
            continue
        kind = "parquet" if path.endswith(".parquet") else "json"
        data = datasets.load_dataset(kind, data_files=path, split="train")
        if len(data) != rows:
            fail(path, f"{len(data)} rows loaded, rsr wrote {rows}")
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        common = dict(
            output_dir=os.path.join(d, "out"), max_steps=2, per_device_train_batch_size=2,
            report_to="none", use_cpu=True, save_strategy="no", logging_steps=1,
        )
        try:
            if formatter == "dpo":
                trainer = DPOTrainer(
                    model=model, args=DPOConfig(**common), train_dataset=data,
                    processing_class=tokenizer,
                )
            else:
                trainer = SFTTrainer(
                    model=model, args=SFTConfig(**common, assistant_only_loss=True),
                    train_dataset=data, processing_class=tokenizer,
                )
            trainer.train()
        except Exception as e:  # the file is named with the cause
            fail(path, f"{type(e).__name__}: {e}")
        if formatter == "sft" and reasoning == "think_tags":
            example = trainer.train_dataset[0]
            mask = example.get("assistant_masks") or example.get("completion_mask")
            if mask is not None:
                ids = [t for t, m in zip(example["input_ids"], mask) if m]
                if "<think>" not in tokenizer.decode(ids):
                    fail(path, "the thinking is not in the tokens that carry the loss")
        checked += 1
        print(f"trl: {os.path.basename(path)}: {rows} rows, trained 2 steps")
    print(f"trl: {checked} files loaded and trained")


class DroppedRows:
    """Counts the rows LLaMA-Factory drops as invalid (it only logs them)."""

    def __init__(self):
        import logging

        self.dropped = []
        handler = logging.Handler()
        handler.emit = self.emit
        for name in ("llamafactory", "llamafactory.data", ""):
            logging.getLogger(name).addHandler(handler)

    def emit(self, record):
        text = record.getMessage()
        if "Dropped invalid example" in text or "abnormal example" in text:
            self.dropped.append(text[:200])


def check_llamafactory(d):
    from llamafactory.train.tuner import run_exp

    model_dir = tiny_model(d)
    info = {}
    runs = []
    for path, formatter, reasoning, shape, rows in exported(d):
        if shape not in ("sharegpt", "alpaca"):
            continue
        name = os.path.basename(path)
        pairs = formatter == "dpo"
        entry = {"file_name": name, "formatting": shape}
        if pairs:
            entry["ranking"] = True
        if shape == "sharegpt":
            entry["columns"] = {"messages": "conversations"}
            if pairs:
                entry["columns"].update(chosen="chosen", rejected="rejected")
        else:
            entry["columns"] = {"prompt": "instruction", "query": "input", "system": "system", "history": "history"}
            if pairs:
                entry["columns"].update(chosen="chosen", rejected="rejected")
            else:
                entry["columns"]["response"] = "output"
        info[name] = entry
        runs.append((path, name, pairs, rows))
    with open(os.path.join(d, "dataset_info.json"), "w") as f:
        json.dump(info, f, indent=2)
    for path, name, pairs, rows in runs:
        watch = DroppedRows()
        args = dict(
            model_name_or_path=model_dir, stage="dpo" if pairs else "sft", do_train=True,
            finetuning_type="full", dataset=name, dataset_dir=d, template="qwen3",
            cutoff_len=2048, output_dir=os.path.join(d, "lf-out"), overwrite_output_dir=True,
            per_device_train_batch_size=2, max_steps=2, report_to="none", use_cpu=True,
            save_strategy="no", logging_steps=1, preprocessing_num_workers=1,
            overwrite_cache=True,
        )
        try:
            run_exp(args)
        except Exception as e:
            fail(path, f"{type(e).__name__}: {e}")
        if watch.dropped:
            fail(path, f"LLaMA-Factory dropped {len(watch.dropped)} row(s): {watch.dropped[0]}")
        print(f"llamafactory: {name}: {rows} rows, none dropped, trained 2 steps")
    print(f"llamafactory: {len(runs)} files trained")


if __name__ == "__main__":
    which, d = sys.argv[1], sys.argv[2]
    {"trl": check_trl, "llamafactory": check_llamafactory}[which](d)
