"""Parses every GPU recipe's TRL config with TRL's own parser, failing on
an unknown or mistyped key, as `trl sft/dpo --config` would at start-up;
in a venv that has LLaMA-Factory instead, its configs with LLaMA-Factory's
(`get_train_args`, as `llamafactory-cli train` does).

    python recipes/gpu/check_configs.py     # in a venv with trl (recipes/cpu-loop/requirements.txt)
    python recipes/gpu/check_configs.py     # in a venv with llamafactory

Runs on a CPU: `bf16` is switched off for the parse (TRL refuses it
without a GPU); everything else is read as written.
"""

import glob
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
failed = 0


def check_llamafactory():
    import yaml
    from llamafactory.hparams import get_train_args

    bad = 0
    for path in sorted(glob.glob(os.path.join(here, "*", "llamafactory_*.yaml"))):
        with open(path) as f:
            args = yaml.safe_load(f)
        args.update(bf16=False, use_cpu=True)
        try:
            model, data, train, _, _ = get_train_args(args)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - report every file
            bad += 1
            print(f"FAILED {os.path.relpath(path)}: {e}", file=sys.stderr)
            continue
        print(f"ok {os.path.relpath(path)}: {model.model_name_or_path} on {data.dataset}, "
              f"template {data.template}, lr {train.learning_rate}")
    return bad


def check_trl():
    from trl import DatasetMixtureConfig, DPOConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

    bad = 0
    for path in sorted(glob.glob(os.path.join(here, "*", "trl_*.yaml"))):
        config = SFTConfig if os.path.basename(path) == "trl_sft.yaml" else DPOConfig
        parser = TrlParser((ScriptArguments, config, ModelConfig, DatasetMixtureConfig))
        try:
            _, train, model, data = parser.parse_args_and_config(
                args=["--config", path, "--bf16", "false"], fail_with_unknown_args=True
            )
        except (Exception, SystemExit) as e:  # noqa: BLE001 - report every file
            bad += 1
            print(f"FAILED {os.path.relpath(path)}: {e}", file=sys.stderr)
            continue
        files = [d.data_files for d in data.datasets]
        print(f"ok {os.path.relpath(path)}: {model.model_name_or_path} on {files}, "
              f"lr {train.learning_rate}, {train.num_train_epochs} epochs")
    return bad


checked = []
for name, check in (("trl", check_trl), ("llamafactory", check_llamafactory)):
    try:
        __import__(name)
    except ImportError:
        print(f"{name} is not installed here: its configs are not checked", file=sys.stderr)
        continue
    failed += check()
    checked.append(name)
if not checked:
    sys.exit("neither trl nor llamafactory is installed: nothing checked")
sys.exit(1 if failed else 0)
