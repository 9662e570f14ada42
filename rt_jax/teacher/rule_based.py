"""The offline demo's teacher: a rule-based stand-in for the large teacher on `arith_small`
(rt_jax.tasks.synthetic), a teacher backend like rt_jax.teacher.backends'.

Greedy decoding gives one fixed phrasing, sampling gives varied phrasings (diverse reasoning),
and with probability `error_rate` a sample makes an arithmetic slip that carries to a wrong final
answer, so the correctness filter has work to do. Every phrasing writes each intermediate state
and ends with an explicit read-out; the demo's pilot found that a phrasing dropping steps pulls
greedy decoding onto it and ruins accuracy.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Sequence

from rt_jax.tasks import synthetic
from rt_jax.teacher.backends import Completion
from rt_jax.teacher.generate import COT_TRIGGER

_REASONING_PROMPT = re.compile(r"Q: (.*)\nA: " + re.escape(COT_TRIGGER), re.S)

# Phrasings: (opening, one step). Every one writes each intermediate count; they are short on
# purpose, since a byte-level student pays for every character in training time.
PHRASINGS = (
    ("", "{a}{op}{n}={b}."),
    ("Has {start}. ", "{Verb} {n}: {b}."),
    ("", "{a} {word} {n} is {b}."),
    ("Start {start}. ", "{op}{n} gives {b}."),
)


def render_rationale(problem: synthetic.Problem, states: Sequence[int], phrasing: int = 0) -> str:
    """The rationale for `problem` with the given counts after each step (may hold a slip)."""
    opening, step = PHRASINGS[phrasing]
    parts = [
        step.format(
            a=a, b=b, n=n, op="+" if sign > 0 else "-", word="plus" if sign > 0 else "minus", Verb=verb.capitalize()
        )
        for (verb, sign, n), a, b in zip(problem.steps, states, states[1:])
    ]
    return " " + opening.format(start=states[0]) + " ".join(parts)


@dataclasses.dataclass
class RuleBasedTeacher:
    """A stand-in for the large teacher on `arith_small`, as a teacher backend
    (`complete(prompts, max_tokens, temperature, seed) -> [Completion]`, like
    rt_jax.teacher.backends), so rt_jax.teacher.generate fills the real cache with it.

    Reasoning step ("Q: <question>\nA: Let's think step by step."): a rationale. Greedy
    (temperature 0) always uses the first phrasing; sampling picks one at random. With
    probability `error_rate` a rationale slips by one at one step and carries the wrong count
    to the end, so its answer is wrong and Fine-tune-CoT's correctness filter drops it.
    Answer step (reasoning prompt + rationale + trigger): reads off the rationale's last count.
    """

    problems: Sequence[synthetic.Problem]
    error_rate: float = 0.2
    seed: int = 0

    def __post_init__(self):
        self._by_question = {p.question: p for p in self.problems}

    def rationale(self, problem: synthetic.Problem, temperature: float = 0.0, draw: int = 0) -> str:
        rng = random.Random(f"{self.seed}/{problem.sample_index}/{temperature}/{draw}")
        phrasing = 0 if temperature == 0 else rng.randrange(len(PHRASINGS))
        states = synthetic.running_counts(problem.start, problem.steps)
        if rng.random() < self.error_rate:
            k = rng.randrange(len(problem.steps))
            slipped = states[k + 1] + rng.choice((-1, 1))
            if slipped < 0:
                slipped = states[k + 1] + 1
            states = states[: k + 1] + synthetic.running_counts(slipped, problem.steps[k + 1 :])
        return render_rationale(problem, states, phrasing)

    def complete(self, prompts: list[str], max_tokens: int, temperature: float, seed: int | None = None):
        out = []
        for i, prompt in enumerate(prompts):
            reasoning = _REASONING_PROMPT.fullmatch(prompt)
            if reasoning:
                problem = self._by_question.get(reasoning.group(1))
                if problem is None:
                    raise ValueError(f"the rule-based teacher knows no question {reasoning.group(1)!r}")
                # Greedy ignores the seed (deterministic per problem); samples differ per draw.
                draw = 0 if temperature == 0 else (seed or 0) + i
                out.append(Completion(self.rationale(problem, temperature, draw), "stop"))
            else:  # answer step: read the last count of the rationale
                numbers = re.findall(r"\d+", prompt.rsplit(COT_TRIGGER, 1)[-1].rsplit("Therefore", 1)[0])
                out.append(Completion(f" {numbers[-1]}." if numbers else " unknown.", "stop"))
        return out
