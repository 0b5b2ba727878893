"""A search, its verdict and its best loss from Python, without the command line (seconds on CPU).

    python docs/examples/python_api/search_from_python.py [run folder]

The same overrides as `python evolve.py ...`; the same folder again resumes the search.
"""

from __future__ import annotations

import sys

import torch

import lossevo
from lossevo.errors import LossevoError


def main(run_dir: str) -> None:
    tiny = ["dataset=digits", "surrogate.steps=60", "surrogate.val_every=30", "surrogate.batch_size=32",
            "surrogate.precheck.step=null", "surrogate.early_stop.step=null",
            "trainer.accelerator=cpu", "logger=none"]  # fmt: skip
    search = [*tiny, "search.budget=4", "search.initial_population=4", "search.fidelity.rungs=null",
              "validate.runs=2", "validate.baselines=[reference]"]  # fmt: skip
    result = lossevo.evolve(search, run_dir=run_dir)
    print("verdict:", result.sentence)
    print("best losses:", [str(path) for path in result.loss_files])

    # The best loss is a torch module with CrossEntropyLoss's call: drop it into any training.
    best = result.losses()[0]
    logits = torch.randn(8, 10, requires_grad=True)
    value = best(logits, torch.randint(0, 10, (8,)))
    value.backward()
    print(f"best_1 on a random batch: {value.item():.4f} (gradient norm {logits.grad.norm():.4f})")
    # The same loss as one file that needs only torch, for a code base without lossevo.
    print("standalone:", result.standalone_files[0])

    # More runs of the verdict, from the journal: nothing else is trained again.
    again = lossevo.validate(run_dir, ["runs=3"])  # trains only the third run of each loss
    print("with 3 runs:", again.sentence)

    # Retrain the best loss with the same recipe on another seed.
    best_1 = ["loss=file", f"loss.path={result.loss_files[0]}", "seed=7"]
    trained = lossevo.train([*tiny, *best_1], run_dir=f"{run_dir}/retrain")
    print("retrained: test accuracy", trained.test_accuracies())

    # Mistakes are LossevoError with the command line's one-line message.
    try:
        lossevo.evolve([*search, "validate.alpha=2"], run_dir=f"{run_dir}/refused")
    except LossevoError as err:
        print("refused:", err)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "outputs/python_api")
