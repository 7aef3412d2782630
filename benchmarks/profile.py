"""Where a training step's time goes: XLA's operations of each family, profiled.

    python -m benchmarks.profile            # the three families, about a minute on 2 cores
    python -m benchmarks.profile --families gan --steps 40

For each family the book's model (``models.build``, ``BOOK_CONFIG``'s batch) runs
its own stateless ``train_step`` in a ``jax.jit`` loop
(:class:`benchmarks.throughput.RawLoop`) for `steps` steps under
``jax.profiler.trace``. The trace names every operation XLA's
CPU runtime executed (``convolution.3``, ``fusion.12``, ...); the compiled program's
HLO text says what each one is. Operations are grouped by kind:

- ``convolution``: a convolution run by XLA's own (Eigen) kernel, forward or backward;
- ``matrix product / convolution (XNNPACK)``: a fusion XLA hands to the XNNPACK
  library, which holds a ``dot`` or a ``convolution`` with what is fused around it;
- ``element-wise``: XLA's own fused loops (activations, normalisation, the optimiser);
- ``copy / transpose``: moving data into another layout;
- ``loop``: a ``while`` loop's own bookkeeping (the LSTM's 28 steps);
- ``other``.

and the table keeps the largest single operations with their shapes. It also times
compiling the training step (``jax.jit(train_step).lower(...).compile()``). Writes
``benchmarks/profile_results.{json,md}``; the Performance page includes the Markdown.
"""

import argparse
import collections
import datetime
import gzip
import json
import os
import pathlib
import re
import tempfile
import time

import companion  # noqa: F401  (selects Keras' JAX backend first)
import jax

from benchmarks import throughput
from companion import models

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "profile_results.json"
RESULTS_MARKDOWN = ROOT / "benchmarks" / "profile_results.md"
FAMILIES = ("gan", "vae", "rnn")
NAMES = {"gan": "DCGAN", "vae": "conv. VAE", "rnn": "row LSTM"}
KINDS = ("convolution", "matrix product / convolution (XNNPACK)", "element-wise",
         "copy / transpose", "loop", "other")
INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\S+)\s+([\w\-]+)\((.*)$")
COMPUTATION = re.compile(r"^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


def hlo_instructions(text):
    """``name -> (opcode, result shape, called computation's opcodes)`` of HLO text."""
    computations, current = collections.defaultdict(set), None
    instructions = {}
    for line in text.splitlines():
        match = INSTRUCTION.match(line)
        if match:
            name, shape, opcode, rest = match.groups()
            called = re.search(r"calls=%?([\w.\-]+)", rest)
            instructions[name] = (opcode, shape, called.group(1) if called else None)
            if current is not None:
                computations[current].add(opcode)
            continue
        match = COMPUTATION.match(line)
        if match:
            current = match.group(1)
    return {name: (opcode, shape, computations.get(called, set()))
            for name, (opcode, shape, called) in instructions.items()}


def kind_of(name, instruction):
    """The group of :data:`KINDS` an executed operation belongs to."""
    opcode, _, inside = instruction if instruction else ("", "", set())
    if opcode == "convolution":
        return KINDS[0]
    if opcode == "fusion" and inside & {"dot", "convolution"}:
        return KINDS[1] if name.startswith("ynn") else KINDS[0]
    if opcode == "dot":
        return KINDS[1]
    if opcode in ("copy", "transpose") or "copy" in name or "transpose" in name:
        return KINDS[3]
    if opcode == "while" or name.startswith("while"):
        return KINDS[4]
    if opcode == "fusion":
        return KINDS[2]
    return KINDS[5]


def profile_family(family, steps, kwargs=None):
    """Milliseconds a step of each executed XLA operation, from a profiler trace,
    and the seconds compiling the step took."""
    batch_size = models.family(family).module.BOOK_CONFIG["batch_size"]
    images = throughput.training_images(family, steps * batch_size)
    model = models.build(family, len(images), epochs=1, batch_size=batch_size, seed=0,
                         **(kwargs or {}))
    state = throughput.model_state(model, images[:batch_size])
    start = time.perf_counter()  # before the raw loop compiles the same program
    compiled = jax.jit(model.train_step).lower(state, images[:batch_size]).compile()
    compile_seconds = time.perf_counter() - start
    instructions = hlo_instructions(compiled.as_text())
    runner = throughput.RawLoop(model, images, batch_size)  # compiles, runs an epoch
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            seconds = runner.epoch()
        trace = next(pathlib.Path(folder).rglob("*perfetto_trace.json.gz"))
        events = json.loads(gzip.decompress(trace.read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    per_operation = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and event.get("name") in instructions:
            per_operation[event["name"]] += event["dur"] / 1000.0 / steps
    operations = [{"name": name, "kind": kind_of(name, instructions[name]),
                   "opcode": instructions[name][0], "shape": instructions[name][1],
                   "ms": ms} for name, ms in per_operation.most_common()]
    kinds = {kind: sum(o["ms"] for o in operations if o["kind"] == kind) for kind in KINDS}
    return {"steps": steps, "step_ms": 1000.0 * seconds / steps,
            "compile_seconds": compile_seconds, "kinds": kinds,
            "operations": operations}


def to_markdown(results, top=4):
    lines = ["| model | compiling the step (s) | step (ms, traced) | "
             + " | ".join(KINDS) + " |", "|---|---:|---:|" + "---:|" * len(KINDS)]
    for family, row in results["families"].items():
        lines.append(f"| {NAMES[family]} | {row['compile_seconds']:.1f} | "
                     f"{row['step_ms']:.1f} | " + " | ".join(
            f"{row['kinds'][kind]:.1f}" for kind in KINDS) + " |")
    lines += ["", "| model | largest operations (ms a step: kind, result shape) |",
              "|---|---|"]
    for family, row in results["families"].items():
        largest = "; ".join(f"{o['ms']:.1f}: {o['kind']}, `{o['shape'].split('{')[0]}`"
                            for o in row["operations"][:top])
        lines.append(f"| {NAMES[family]} | {largest} |")
    lines += ["", f"Profiled {results['date'][:10]} on {results['cpu_count']} CPU cores "
              f"(JAX {jax.__version__}), {results['steps']} steps a family under "
              "`jax.profiler.trace`; milliseconds of each operation a step, from the "
              "trace (tracing adds a little to the step)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=FAMILIES)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", type=pathlib.Path, default=RESULTS_JSON)
    parser.add_argument("--markdown", type=pathlib.Path, default=RESULTS_MARKDOWN)
    args = parser.parse_args(argv)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "cpu_count": os.cpu_count(), "steps": args.steps,
        "families": {f: profile_family(f, args.steps) for f in args.families}}
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    args.markdown.write_text(to_markdown(results))
    print(to_markdown(results))


if __name__ == "__main__":
    main()
