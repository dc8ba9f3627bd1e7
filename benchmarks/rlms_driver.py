"""One question through the official `rlms` package, run by its own venv's python.

It imports nothing from this project: argv[1] is a JSON object (base_url, context, question,
environment, image, max_iterations, batch_concurrency); the answer goes to stdout.
"""

import functools
import json
import sys

import rlm.core.rlm
from rlm import RLM
from rlm.core.lm_handler import LMHandler


def main() -> None:
    args = json.loads(sys.argv[1])
    if args.get("batch_concurrency"):
        # rlms builds its LMHandler per completion with a fixed batch concurrency (16): set it here.
        rlm.core.rlm.LMHandler = functools.partial(LMHandler, batch_max_concurrent=args["batch_concurrency"])
    with open(args["context"]) as source:
        context = source.read()
    environment_kwargs = {"image": args["image"]} if args["environment"] == "docker" else {}
    model = RLM(
        backend="openai",
        backend_kwargs={"model_name": "scripted", "base_url": args["base_url"], "api_key": "unused"},
        environment=args["environment"],
        environment_kwargs=environment_kwargs,
        max_iterations=args["max_iterations"],
    )
    print(model.completion(context, root_prompt=args["question"]).response)


if __name__ == "__main__":
    main()
