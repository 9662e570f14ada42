"""rt_jax: Fine-tune-CoT (Ho, Schmid & Yun, ACL 2023) in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="rt_jax",
    version="0.1.0",
    description="Large Language Models Are Reasoning Teachers (Fine-tune-CoT) in JAX/Flax",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["rt_jax", "rt_jax.*"]),
    package_data={"rt_jax": ["resources/*.csv", "resources/*.md"]},
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.8.5",
        "optax>=0.2.2",
        "orbax-checkpoint>=0.5.20",
        "transformers>=4.44",
        "tokenizers>=0.19",
        "safetensors>=0.4.3",
        "tensorflow-datasets>=4.9.6",
        "array_record>=0.5.1",
        "importlib_resources>=6",  # tfds builders need it when TensorFlow is absent
        "absl-py>=2.1",
        "ml_collections>=0.1.1",
        "etils[epath]>=1.7",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",
        "tqdm>=4.60",  # teacher generation progress (rate, ETA)
    ],
    extras_require={
        # torch is only the reference implementation in parity tests and benchmarks.
        "test": ["pytest>=8", "hypothesis>=6.100", "torch>=2.2", "sentencepiece>=0.2", "ruff>=0.6"],
        # gcsfs: etils.epath's backend for gs:// workdirs and sweep roots; google-cloud-storage:
        # orbax asks it about the bucket before checkpointing to gs://.
        "tpu": ["jax[tpu]", "gcsfs", "google-cloud-storage"],
        "gpu": ["jax[cuda12]", "gcsfs", "google-cloud-storage"],
    },
    entry_points={
        "console_scripts": [
            "rt-jax-data=rt_jax.data.__main__:run",
            "rt-jax-teacher=rt_jax.teacher.__main__:run",
            "rt-jax-train=rt_jax.train.__main__:run",
            "rt-jax-export=rt_jax.train.export:run",
            "rt-jax-evaluate=rt_jax.evaluate:run",
            "rt-jax-report=rt_jax.report:run",
            "rt-jax-demo=rt_jax.demo:run",
        ]
    },
)
