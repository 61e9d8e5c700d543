"""The compile lane's optimizers, each with a small fixed budget so a compile is bounded:

- `labeled-fewshot`: `max_demos` labelled examples as demos (no LM call);
- `bootstrap-fewshot`: demos the LM reproduced correctly, then labelled ones;
- `miprov2`: DSPy's MIPROv2 (bootstrapped demo sets, instructions proposed by the LM) with
  `MIPRO_CANDIDATES` candidates of each, one thread. Its step 3 (choosing the instruction and
  demo set) is DSPy's Bayesian search through optuna, which is not a dependency here: with so
  few candidates every combination is scored instead, on the whole validation split, and the
  first best wins (the same choice the search converges to, without its randomness);
- `gepa`: DSPy's GEPA (reflective instruction evolution), the reflection LM being the same
  lane LM, with a metric-call budget of the training split plus `GEPA_EXTRA_METRIC_CALLS`.
"""

from __future__ import annotations

import itertools
from typing import Any

from trading.services.dspy_lanes.common import prediction_verdict, verdict_metric

OPTIMIZERS = ("bootstrap-fewshot", "labeled-fewshot", "miprov2", "gepa")
MIPRO_CANDIDATES = 2
GEPA_EXTRA_METRIC_CALLS = 6


def verdict_feedback(
    gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None
) -> Any:
    """GEPA's metric: the verdict metric with a sentence of feedback for the reflection LM."""
    import dspy

    verdict = prediction_verdict(pred)
    score = 1.0 if verdict == gold.verdict else 0.0
    feedback = (
        f"correct: the outcome was {gold.verdict}"
        if score
        else f"answered {verdict or 'an invalid review'}; the outcome was {gold.verdict} "
        f"({gold.rationale})"
    )
    return dspy.Prediction(score=score, feedback=feedback)


def _grid_mipro() -> Any:
    import dspy
    from dspy.teleprompt.utils import eval_candidate_program, get_signature, set_signature

    class GridMIPROv2(dspy.MIPROv2):  # type: ignore[misc]  # dspy is untyped
        """MIPROv2 whose last step scores every (instruction, demo set) combination."""

        def _optimize_prompt_parameters(
            self,
            program: Any,
            instruction_candidates: dict[int, list[str]],
            demo_candidates: list[Any] | None,
            evaluate: Any,
            valset: list[Any],
            *args: Any,
            **kwargs: Any,
        ) -> Any:
            best, best_score = program.deepcopy(), None
            predictors = range(len(program.predictors()))
            choices = [
                itertools.product(
                    range(len(instruction_candidates[i])),
                    range(len(demo_candidates[i])) if demo_candidates else [None],
                )
                for i in predictors
            ]
            for combination in itertools.product(*choices):
                candidate = program.deepcopy()
                for index, (predictor, (instruction, demos)) in enumerate(
                    zip(candidate.predictors(), combination, strict=True)
                ):
                    text = instruction_candidates[index][instruction]
                    set_signature(predictor, get_signature(predictor).with_instructions(text))
                    if demos is not None and demo_candidates:
                        predictor.demos = demo_candidates[index][demos]
                score = eval_candidate_program(len(valset), valset, candidate, evaluate).score
                if best_score is None or score > best_score:
                    best, best_score = candidate, score
            return best

    return GridMIPROv2


def optimize(
    student: Any, trainset: list[Any], *, optimizer: str, max_demos: int, seed: int, lm: Any
) -> Any:
    """`student` compiled by `optimizer` over `trainset` (the LM in context is `lm`)."""
    import dspy

    if optimizer == "labeled-fewshot":
        return dspy.LabeledFewShot(k=max_demos).compile(student, trainset=trainset)
    if optimizer == "miprov2":
        mipro = _grid_mipro()(
            metric=verdict_metric,
            auto=None,
            num_candidates=MIPRO_CANDIDATES,
            max_bootstrapped_demos=max_demos,
            max_labeled_demos=max_demos,
            num_threads=1,
            seed=seed,
            track_stats=False,
        )
        return mipro.compile(student, trainset=trainset, num_trials=1, minibatch=False, seed=seed)
    if optimizer == "gepa":
        gepa = dspy.GEPA(
            metric=verdict_feedback,
            max_metric_calls=len(trainset) + GEPA_EXTRA_METRIC_CALLS,
            reflection_lm=lm,
            num_threads=1,
            use_merge=False,
            seed=seed,
        )
        return gepa.compile(student, trainset=trainset)
    return dspy.BootstrapFewShot(
        metric=verdict_metric,
        max_bootstrapped_demos=max_demos,
        max_labeled_demos=max_demos,
        max_rounds=1,
    ).compile(student, trainset=trainset)
