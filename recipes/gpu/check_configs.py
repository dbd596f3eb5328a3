"""Parses every GPU recipe's TRL config with TRL's own parser, failing on
an unknown or mistyped key, as `trl sft/dpo --config` would at start-up.

    python recipes/gpu/check_configs.py     # in a venv with trl (recipes/cpu-loop/requirements.txt)

Runs on a CPU: `bf16` is switched off for the parse (TRL refuses it
without a GPU); everything else is read as written.
"""

import glob
import os
import sys

from trl import DatasetMixtureConfig, DPOConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

here = os.path.dirname(os.path.abspath(__file__))
failed = 0
for path in sorted(glob.glob(os.path.join(here, "*", "trl_*.yaml"))):
    config = SFTConfig if os.path.basename(path) == "trl_sft.yaml" else DPOConfig
    parser = TrlParser((ScriptArguments, config, ModelConfig, DatasetMixtureConfig))
    try:
        _, train, model, data = parser.parse_args_and_config(
            args=["--config", path, "--bf16", "false"], fail_with_unknown_args=True
        )
    except (Exception, SystemExit) as e:  # noqa: BLE001 - report every file
        failed += 1
        print(f"FAILED {os.path.relpath(path)}: {e}", file=sys.stderr)
        continue
    files = [d.data_files for d in data.datasets]
    print(f"ok {os.path.relpath(path)}: {model.model_name_or_path} on {files}, "
          f"lr {train.learning_rate}, {train.num_train_epochs} epochs")
sys.exit(1 if failed else 0)
