"""The chapters' live headline figures over three training seeds: mean ± standard deviation.

    python -m benchmarks.seeds          # writes benchmarks/seeds_results.json and
                                        # book/appendix/times/seeds.md
    python -m benchmarks.seeds --quick  # tiny models, a smoke run into benchmarks/out/

Each chapter trains its model once, live, with seed 0; a second run with another
seed gives another figure. This benchmark trains each family's book model
(``BOOK_CONFIG``, through :func:`companion.comparison.train_family`) with seeds
0, 1 and 2 and evaluates every run the same way (seed 0: the same 1,000
samples' noise, the same test binarisation, the same importance samples), so the
spread is the training seed's alone. The chapter index pages include the table.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from companion import comparison, models  # noqa: E402

SEEDS = (0, 1, 2)
RESULTS_JSON = ROOT / "benchmarks" / "seeds_results.json"
RESULTS_MARKDOWN = ROOT / "book" / "appendix" / "times" / "seeds.md"
QUICK_DIR = ROOT / "benchmarks" / "out"
HEADLINES = {  # family -> the figures its chapter leads with
    "gan": ("frechet", "label_entropy"),
    "vae": ("nll_nats", "frechet", "label_entropy"),
    "rnn": ("nll_nats", "frechet", "label_entropy"),
}
_TITLES = {"frechet": "Fréchet distance", "label_entropy": "label entropy",
           "nll_nats": "test NLL (nats)"}


def measure(families=models.FAMILIES, seeds=SEEDS, quick=False):
    """Train each family with each seed and return its headline figures.

    Returns:
        ``{family: {figure: [value for each seed]}}`` plus ``"seeds"`` and
        ``"epochs"`` (each family's).
    """
    results = {"seeds": list(seeds), "epochs": {}, "figures": {}}
    for family in families:
        epochs = 1 if quick else models.family(family).module.BOOK_CONFIG["epochs"]
        results["epochs"][family] = epochs
        figures = {key: [] for key in HEADLINES[family]}
        for seed in seeds:
            print(f"{family}, seed {seed}: {epochs} epochs ...", flush=True)
            model, seconds, _ = comparison.train_family(family, epochs, seed=seed)
            row = comparison.evaluate(family, model, seconds, num_samples=1000, seed=0)
            for key in figures:
                figures[key].append(float(row[key]))
        results["figures"][family] = figures
    return results


def summary(values):
    """``(mean, sample standard deviation)`` of a list of figures."""
    values = np.asarray(values, dtype="float64")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def markdown(results):
    """The results as a Markdown table: a row a figure, a column a seed, then mean ± sd."""
    seeds = results["seeds"]
    lines = ["| chapter's model | figure | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean ± sd |", "|---|---|" + "---|" * (len(seeds) + 1)]
    for family, figures in results["figures"].items():
        for key, values in figures.items():
            form = "{:.3f}" if key == "label_entropy" else "{:.1f}"
            mean, sd = summary(values)
            cells = [form.format(v) for v in values] + [f"{form.format(mean)} ± {form.format(sd)}"]
            lines.append(f"| {models.REGISTRY[family].title}, {results['epochs'][family]} "
                         f"epochs | {_TITLES[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PAGES = {"gan": ROOT / "book" / "02_gan" / "index.md",
         "vae": ROOT / "book" / "03_vae" / "index.md",
         "rnn": ROOT / "book" / "04_rnn" / "index.md"}
"""The chapter index page that quotes each family's :func:`sentence`."""


def sentence(results, family):
    """The sentence a chapter's index page quotes: each headline figure as mean ± sd."""
    parts = []
    for key, values in results["figures"][family].items():
        form = "{:.3f}" if key == "label_entropy" else "{:.1f}"
        mean, sd = summary(values)
        parts.append(f"{_TITLES[key]} {form.format(mean)} ± {form.format(sd)}")
    seeds = results["seeds"]
    listed = ", ".join(str(s) for s in seeds[:-1]) + f" and {seeds[-1]}"
    return (f"Trained with seeds {listed}, the chapter's configuration reaches: "
            + "; ".join(parts) + " (mean ± standard deviation over the seeds).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args(argv)
    results = measure(quick=arguments.quick)
    json_path, markdown_path = RESULTS_JSON, RESULTS_MARKDOWN
    if arguments.quick:
        QUICK_DIR.mkdir(exist_ok=True)
        json_path, markdown_path = QUICK_DIR / "seeds.json", QUICK_DIR / "seeds.md"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    markdown_path.write_text(markdown(results))
    print(markdown(results))
    for family in results["figures"]:
        print(f"{family}: {sentence(results, family)}")


if __name__ == "__main__":
    main()
