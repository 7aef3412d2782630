"""Build the book's site: the English edition at its root, the Chinese one under zh/.

    python tools/editions.py [--strict] [OUTPUT]

Both editions render the notebooks' stored outputs from the same sources; the
Chinese build (``language: zh_CN``) replaces each English message by its
translation from ``locales/zh_CN`` (see ``tools/translations.py``). The site is
``OUTPUT/_build/html`` (OUTPUT defaults to the repository, so ``_build/html``);
the Chinese build's own folder is ``OUTPUT/_build/zh``. ``--strict`` turns every
warning and every missing reference into an error (``-W -n``) in both builds.
"""

import pathlib
import shutil
import subprocess
import sys

import yaml

from sphinx_editions import EDITIONS

ROOT = pathlib.Path(__file__).resolve().parent.parent
# `python -m jupyter_book` does nothing in Jupyter Book 1.x: call its CLI entry point.
JUPYTER_BOOK = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"
CHINESE = {"title": "图像深度生成模型", "author": "本书作者", "language": "zh_CN"}
# Interface texts that Sphinx's own catalogues do not translate: the hints of the
# folded boxes (sphinx-togglebutton).
CHINESE_SPHINX_CONFIG = {"togglebutton_hint": "点击展开", "togglebutton_hint_hide": "点击收起"}


def chinese_config(path):
    """Write the Chinese edition's configuration (`_config.yml`, translated) to `path`."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["title"], config["author"] = CHINESE["title"], CHINESE["author"]
    sphinx = config["sphinx"]
    sphinx["config"].update(CHINESE_SPHINX_CONFIG, language=CHINESE["language"])
    # Jupyter Book finds local extensions relative to the configuration file.
    sphinx["local_extensions"] = {name: str(ROOT / folder)
                                  for name, folder in sphinx["local_extensions"].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


def jupyter_book(output, flags, *options, echo=False):
    """Run `jupyter-book build` on the repository; return (exit status, log)."""
    process = subprocess.Popen(
        [sys.executable, "-c", JUPYTER_BOOK, "build", str(ROOT), "--path-output",
         str(output), *options, *flags],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    return process.wait(), "".join(lines)


def build(output=ROOT, strict=False, echo=False):
    """Build both editions into `output`/_build/html; return (exit status, log).

    `echo` also prints the builds' output as it comes.
    """
    output = pathlib.Path(output).resolve()
    flags = ["-W", "-n", "--keep-going"] if strict else []
    english_status, english_log = jupyter_book(output, flags, echo=echo)
    chinese = output / "_build" / "zh"
    config = chinese_config(chinese / "_config.yml")
    chinese_status, chinese_log = jupyter_book(chinese, flags, "--config", str(config),
                                               echo=echo)
    site = output / "_build" / "html"
    folder = site / EDITIONS[CHINESE["language"]][0]
    if (chinese / "_build" / "html").exists():
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(chinese / "_build" / "html", folder)
    log = f"English edition:\n{english_log}\nChinese edition:\n{chinese_log}"
    return english_status or chinese_status, log


def main(argv):
    strict = "--strict" in argv
    folders = [a for a in argv if a != "--strict"]
    output = pathlib.Path(folders[0] if folders else ROOT).resolve()
    status, _ = build(output, strict, echo=True)
    print(f"The site: {output / '_build' / 'html'} (English at its root, Chinese under zh/).")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
