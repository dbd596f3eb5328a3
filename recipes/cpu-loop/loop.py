"""The Python side of the CPU loop: weights out of a GGUF file, TRL training
on rsr's exports, and the check that TRL takes those exports as written.

    python loop.py base GGUF OUT_DIR
        The GGUF's weights (de-quantized by transformers' GGUF loading) and
        its tokenizer and chat template, saved as a Hugging Face model.
    python loop.py check FILE KIND ROWS [FILE KIND ROWS ...]
        Builds TRL's trainer on each export (KIND: sft or dpo) with the
        model of --model and fails, naming the file, if TRL rejects it,
        drops a row, warns about its format, or (prompt-completion) leaves
        a row without a token in the loss.
    python loop.py sft DATA MODEL_DIR OUT_DIR   (TRL SFTTrainer)
    python loop.py dpo DATA MODEL_DIR OUT_DIR   (TRL DPOTrainer)
        Train on CPU and save the result as a Hugging Face model. Options:
        --epochs, --lr, --batch, --max-steps (smoke runs), --beta (DPO).

Training logs (loss per step) go to OUT_DIR/log_history.json.
"""

import argparse
import copy
import json
import logging
import os
import re
import sys
import time
import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def base(gguf, out):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # The GGUF-loaded model is marked quantized and cannot be saved: the
    # same architecture, built plain, takes its de-quantized weights.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tmp = out + ".tmp"
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, out)
    print(f"base: {sum(p.numel() for p in model.parameters())} parameters from {gguf} -> {out}")


def load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return model, tok


def rows_of(path):
    from datasets import load_dataset

    return load_dataset("json", data_files=path, split="train")


# Warnings about a dataset's shape: a trainer that guesses a format, drops
# or renames a column, or finds no assistant turn says so in these words.
FORMAT_WORDS = re.compile(
    r"dataset|format|column|conversational|messages|prompt|completion|chosen|rejected|"
    r"role|template|truncat",
    re.I,
)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def trainer(kind, data, model, tok, out, args, max_steps=None):
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    common = dict(
        output_dir=out,
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1,
        learning_rate=args.lr,
        num_train_epochs=args.epochs,
        max_steps=max_steps if max_steps is not None else args.max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        max_length=args.max_length,
        dataset_num_proc=1,
    )
    if kind == "sft":
        config = SFTConfig(**common)
        return SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tok)
    config = DPOConfig(beta=args.beta, **common)
    return DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tok)


def check(files, args):
    """TRL takes each export as written: no error, no row dropped, no
    warning about the format, loss tokens in every prompt-completion row."""
    model, tok = load(args.model)
    failures = []
    for path, kind, rows in files:
        handler = Collect()
        for name in ("trl", "transformers", "datasets"):
            logging.getLogger(name).addHandler(handler)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                data = rows_of(path)
                t = trainer(kind, data, model, tok, os.path.join(args.scratch, "check"), args, 1)
        except Exception as e:  # noqa: BLE001 - any rejection is the finding
            failures.append(f"{path}: TRL rejected it as {kind} data: {type(e).__name__}: {e}")
            continue
        finally:
            for name in ("trl", "transformers", "datasets"):
                logging.getLogger(name).removeHandler(handler)
        said = [str(w.message) for w in caught] + handler.messages
        about_format = [m for m in said if FORMAT_WORDS.search(m)]
        n = len(t.train_dataset)
        problems = []
        if n != rows:
            problems.append(f"{n} rows after TRL's preparation, rsr wrote {rows}")
        if about_format:
            problems.append("TRL warned: " + " | ".join(about_format))
        columns = t.train_dataset.column_names
        if "completion_mask" in columns:
            empty = sum(1 for m in t.train_dataset["completion_mask"] if sum(m) == 0)
            if empty:
                problems.append(f"{empty} rows have no completion token in the loss")
        if problems:
            failures.append(f"{path} ({kind}): " + "; ".join(problems))
        else:
            print(f"check: {path}: TRL {kind} took all {n} rows as written, no format warning"
                  f" (columns {', '.join(columns)})")
    if failures:
        for f in failures:
            print("check FAILED: " + f, file=sys.stderr)
        sys.exit(1)


def train(kind, data_path, model_dir, out, args):
    model, tok = load(model_dir)
    data = rows_of(data_path)
    t = trainer(kind, data, model, tok, out + ".run", args)
    start = time.time()
    result = t.train()
    tmp = out + ".tmp"
    t.save_model(tmp)
    tok.save_pretrained(tmp)
    with open(os.path.join(tmp, "log_history.json"), "w") as f:
        json.dump(
            {"rows": len(data), "seconds": time.time() - start, "metrics": result.metrics,
             "log_history": t.state.log_history},
            f, indent=1,
        )
    os.replace(tmp, out)
    losses = [h["loss"] for h in t.state.log_history if "loss" in h]
    print(f"{kind}: {len(data)} rows, {t.state.global_step} steps in {time.time() - start:.0f} s, "
          f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; saved {out}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["base", "check", "sft", "dpo"])
    p.add_argument("rest", nargs="+")
    p.add_argument("--model", help="the model `check` builds trainers with")
    p.add_argument("--scratch", default="/tmp")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--beta", type=float, default=0.1)
    args = p.parse_args()
    if args.command == "base":
        base(*args.rest)
    elif args.command == "check":
        r = args.rest
        if len(r) % 3:
            p.error("check takes FILE KIND ROWS triples")
        check([(r[i], r[i + 1], int(r[i + 2])) for i in range(0, len(r), 3)], args)
    else:
        train(args.command, *args.rest, args)


if __name__ == "__main__":
    main()
